"""Heads by role: projection MLPs, prediction MLPs and prototypes keep their papers' layouts."""

import pytest
import torch

from easyssl.nn import (
    BYOLPredictionHead,
    DINOProjectionHead,
    MoCoProjectionHead,
    SimCLRProjectionHead,
    SimSiamProjectionHead,
    SwaVPrototypes,
    layer_dims,
)


def _linears(head):
    return [(m.in_features, m.out_features) for m in head.modules() if isinstance(m, torch.nn.Linear)]


def test_simclr_projection_head_layers():
    head = SimCLRProjectionHead(64, 32, 16, num_layers=3)
    assert _linears(head) == [(64, 32), (32, 32), (32, 16)]
    assert head(torch.randn(4, 64)).shape == (4, 16)


def test_moco_v2_and_v3_heads():
    v2 = MoCoProjectionHead(64, 32, 16, num_layers=2)
    assert _linears(v2) == [(64, 32), (32, 16)] and not any(isinstance(m, torch.nn.BatchNorm1d) for m in v2.modules())
    v3 = MoCoProjectionHead(64, 32, 16, num_layers=3, batch_norm=True)
    norms = [m for m in v3.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 3 and norms[-1].affine is False  # the last BN has no affine parameters


def test_simsiam_projection_ends_in_batch_norm_and_prediction_is_a_bottleneck():
    head = SimSiamProjectionHead(64, 32, 16)
    assert isinstance(head.layers[-1], torch.nn.BatchNorm1d) and head.layers[-1].affine is False
    assert _linears(BYOLPredictionHead(16, 8, 16)) == [(16, 8), (8, 16)]


def test_layer_dims_checks_the_depth():
    assert layer_dims(8, 4, 2, 3) == [8, 4, 4, 2]
    with pytest.raises(ValueError, match="num_layers"):
        layer_dims(8, 4, 2, 0)


def test_prototypes_are_unit_vectors_and_freeze():
    prototypes = SwaVPrototypes(8, 5)
    assert torch.allclose(prototypes.layer.weight.norm(dim=1), torch.ones(5))
    prototypes(torch.randn(3, 8), frozen=True).sum().backward()
    assert torch.count_nonzero(prototypes.layer.weight.grad) == 0


def test_dino_head_last_layer_is_weight_normalised():
    head = DINOProjectionHead(16, 32, 8, 10)
    assert torch.allclose(head.last_layer_weight().norm(dim=1), torch.ones(10), atol=1e-5)
    assert not head.weight_g.requires_grad  # norm_last_layer: the gain is fixed at 1
    assert head(torch.randn(4, 16)).shape == (4, 10)
