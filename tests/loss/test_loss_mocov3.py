"""MoCo v3's loss: InfoNCE of queries against the other view's keys, scaled by 2T."""

import math

import pytest
import torch

from easyssl.loss import MoCoV3Loss


def test_mocov3_loss_by_hand():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    k = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    t = 0.5
    # normalised: q = [[1, 0], [0, 1]], k = [[1, 0], [s, s]] with s = 1/sqrt(2)
    s = 1 / math.sqrt(2)
    logits = torch.tensor([[1.0, s], [0.0, s]]) / t
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])) * 2 * t
    assert MoCoV3Loss(temperature=t)(q, k).item() == pytest.approx(expected.item(), rel=1e-6)


def test_mocov3_loss_checks_shapes_and_temperature():
    with pytest.raises(ValueError, match="temperature"):
        MoCoV3Loss(temperature=0)
    with pytest.raises(ValueError, match="same shape"):
        MoCoV3Loss()(torch.randn(4, 8), torch.randn(4, 6))


def test_mocov3_loss_gives_no_gradient_to_the_keys():
    q, k = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8, requires_grad=True)
    MoCoV3Loss()(q, k).backward()
    assert q.grad is not None and k.grad is None
