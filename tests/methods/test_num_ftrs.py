"""LightlySSL's ``num_ftrs`` and backbones without ``num_features`` (issue 14 item 3)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import easyssl.models as models
from easyssl.nn.base import backbone_num_features


def tiny_backbone() -> nn.Module:
    """A backbone of the user's own without ``num_features``: (N, 16, 1, 1) maps, as a ResNet without its fc."""
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))


@pytest.mark.parametrize("cls", [models.SimCLR, models.MoCo, models.BYOL, models.SimSiam, models.BarlowTwins, models.NNCLR])
@pytest.mark.parametrize("given", [{"num_ftrs": 16}, {}])
def test_lightly_models_take_num_ftrs_or_find_the_size(cls, given):
    net = tiny_backbone()
    model = cls(net, **given)
    assert net.num_features == 16 and model.embed(torch.zeros(2, 3, 8, 8)).shape == (2, 16)
    model.train()
    loss = model.training_loss([torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)], _criterion(cls), models.TrainingProgress())
    assert torch.isfinite(loss)


def _criterion(cls):
    import easyssl

    return easyssl.get_method(cls.method).criterion()


def test_backbone_num_features_prefers_what_is_given_and_keeps_the_module_weights():
    net = tiny_backbone()
    before = [p.clone() for p in net.parameters()]
    assert backbone_num_features(net) == 16 and net.training  # a dry forward in eval mode, mode restored
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert backbone_num_features(tiny_backbone(), 32) == 32
