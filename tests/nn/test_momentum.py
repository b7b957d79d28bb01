"""The momentum-encoder helper, written once in easyssl.nn.momentum and shared by MoCo, MoCo v3, BYOL and DINO."""

from __future__ import annotations

import math

import pytest
import torch

from easyssl.nn import (
    MomentumSSLModel,
    TrainingProgress,
    backbone,
    cosine_schedule,
    deactivate_requires_grad,
    momentum_at,
    momentum_copy,
    update_momentum,
)
from easyssl.methods.byol import BYOL
from easyssl.methods.dino import DINO
from easyssl.methods.moco import MoCo
from easyssl.methods.mocov3 import MoCoV3


def _progress(step: int, max_steps: int) -> TrainingProgress:
    return TrainingProgress(epoch=0, max_epochs=1, step=step, max_steps=max_steps)


def test_update_momentum_is_the_ema_formula():
    torch.manual_seed(0)
    online, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    deactivate_requires_grad(target)
    for m in (0.9, 0.0, 1.0):
        expected = [m * t + (1 - m) * o for t, o in zip(target.parameters(), online.parameters())]
        update_momentum(online, target, m)
        for got, want in zip(target.parameters(), expected):
            assert torch.allclose(got, want, atol=1e-7)
            assert not got.requires_grad
    assert all(torch.equal(t, o) for t, o in zip(target.parameters(), online.parameters()))  # m = 0 copied, m = 1 kept
    copy = momentum_copy(online)
    assert all(not p.requires_grad for p in copy.parameters()) and all(p.requires_grad for p in online.parameters())
    with pytest.raises(ValueError):
        update_momentum(online, target, 1.5)
    with pytest.raises(ValueError, match="same architecture"):
        update_momentum(online, torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 2)), 0.5)


def test_update_momentum_leaves_buffers_alone():
    online, target = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    online.running_mean.fill_(5.0)
    update_momentum(online, target, 0.5)
    assert torch.equal(target.running_mean, torch.zeros(3))


def test_cosine_schedule_and_momentum_at():
    assert cosine_schedule(0.0, 0.99, 1.0) == pytest.approx(0.99)
    assert cosine_schedule(1.0, 0.99, 1.0) == pytest.approx(1.0)
    assert cosine_schedule(0.5, 0.0, 1.0) == pytest.approx(0.5)
    assert cosine_schedule(-1.0, 0.9, 1.0) == pytest.approx(0.9) and cosine_schedule(2.0, 0.9, 1.0) == pytest.approx(1.0)
    assert momentum_at(_progress(30, 100), 0.996) == pytest.approx(momentum_at(0.3, 0.996))


MOMENTUM_MODELS = {
    "moco": (lambda b: MoCo(b, hidden_dim=32, out_dim=16), [("backbone", "backbone_momentum"), ("projection_head", "projection_head_momentum")], 0.996),
    "mocov3": (lambda b: MoCoV3(b, hidden_dim=32, out_dim=16), [("backbone", "backbone_momentum"), ("projection_head", "projection_head_momentum")], 0.99),
    "byol": (lambda b: BYOL(b, hidden_dim=32, out_dim=16), [("backbone", "backbone_momentum"), ("projection_head", "projection_head_momentum")], 0.99),
    "dino": (lambda b: DINO(b, hidden_dim=32, bottleneck_dim=16, output_dim=32), [("backbone", "teacher_backbone"), ("head", "teacher_head")], 0.996),
}


@pytest.mark.parametrize("name", list(MOMENTUM_MODELS))
def test_momentum_encoder_after_a_step(name):
    torch.manual_seed(0)
    build, pairs, start = MOMENTUM_MODELS[name]
    model = build(backbone("resnet-18", width=0.125, input_size=32))
    assert isinstance(model, MomentumSSLModel) and list(model.momentum_pairs) == pairs
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    for online_name, target_name in pairs:
        target = getattr(model, target_name)
        assert all(id(p) not in trainable for p in target.parameters()), "momentum encoder must not be optimised"
        assert any(key.startswith(target_name + ".") for key in model.state_dict()), "checkpoints must hold it"
    # Move the online network away from its copy, as an optimiser step would.
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    old = {target: [p.clone() for p in getattr(model, target).parameters()] for _, target in pairs}
    m = 1.0 - (1.0 - start) * (math.cos(math.pi * 0.3) + 1) / 2  # cosine schedule start -> 1 at 30% of training
    model.on_after_step(_progress(step=30, max_steps=100))
    for online_name, target_name in pairs:
        for new, before, online in zip(getattr(model, target_name).parameters(), old[target_name], getattr(model, online_name).parameters()):
            assert torch.allclose(new, m * before + (1 - m) * online, atol=1e-6)


def test_forward_momentum_runs_the_copies_without_gradient():
    torch.manual_seed(0)
    model = BYOL(backbone("resnet-18", width=0.125, input_size=32), hidden_dim=32, out_dim=16)
    x = torch.randn(2, 3, 32, 32)
    out = model.forward_target(x)
    assert out.shape == (2, 16) and not out.requires_grad
    model.eval()
    expected = model.projection_head_momentum(model.backbone_momentum(x))
    assert torch.allclose(model.forward_momentum(x), expected)
