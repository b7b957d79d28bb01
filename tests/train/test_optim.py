import math

import pytest
import torch

from easyssl.train.optim import LARS, WarmupCosineSchedule, build_optimizer, cosine_schedule


def test_warmup_cosine_schedule_values():
    s = WarmupCosineSchedule(warmup=0.1, final_factor=0.0)
    assert s(0.0) == 0.0 and s(0.05) == pytest.approx(0.5) and s(0.1) == pytest.approx(1.0)
    assert s(0.55) == pytest.approx(0.5) and s(1.0) == pytest.approx(0.0) and s(2.0) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="warmup"):
        WarmupCosineSchedule(warmup=1.0)


def test_cosine_momentum_schedule():
    assert cosine_schedule(0.0, 0.996, 1.0) == pytest.approx(0.996)
    assert cosine_schedule(0.5, 0.996, 1.0) == pytest.approx(0.998)
    assert cosine_schedule(1.0, 0.996, 1.0) == pytest.approx(1.0)


def test_lars_step_matches_formula():
    w = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))  # ||w|| = 5
    b = torch.nn.Parameter(torch.tensor([1.0]))
    opt = LARS([w, b], lr=0.1, momentum=0.0, weight_decay=0.0, trust_coefficient=0.001)
    w.grad = torch.tensor([[0.0, 1.0]])  # ||g|| = 1
    b.grad = torch.tensor([2.0])
    opt.step()
    trust = 0.001 * 5 / 1
    assert torch.allclose(w.detach(), torch.tensor([[3.0, 4.0 - 0.1 * trust]]))
    assert torch.allclose(b.detach(), torch.tensor([1.0 - 0.1 * 2.0]))  # 1-D: no trust ratio


def test_build_optimizer_excludes_biases_from_weight_decay():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    opt = build_optimizer(model, "adamw", lr=1e-3, weight_decay=0.1)
    decays = sorted((g["weight_decay"], len(g["params"])) for g in opt.param_groups)
    assert decays == [(0.0, 3), (0.1, 1)]
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        build_optimizer(model, "adam")


def test_momentum_means_nothing_to_adamw_and_none_is_the_default_elsewhere():
    model = torch.nn.Linear(3, 2)
    adamw = build_optimizer(model, "adamw", lr=0.01, momentum=None)
    assert isinstance(adamw, torch.optim.AdamW) and "momentum" not in adamw.defaults
    assert build_optimizer(model, "sgd", momentum=None).defaults["momentum"] == 0.9
    assert build_optimizer(model, "lars", momentum=0.8).defaults["momentum"] == 0.8
