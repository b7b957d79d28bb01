"""Optimisers and learning-rate schedules for self-supervised training.

``cosine_schedule`` (the momentum encoders' schedule) lives with the momentum helper in
:mod:`easyssl.nn` and is re-exported here.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from easyssl.nn import cosine_schedule

__all__ = ["LARS", "WarmupCosineSchedule", "build_optimizer", "cosine_schedule", "parameter_groups"]


class LARS(torch.optim.Optimizer):
    """LARS: SGD with momentum and a layer-wise trust ratio (You et al., 2017), as used by SimCLR, BYOL and Barlow Twins.

    Biases and normalisation parameters (1-D tensors) get neither weight decay nor the
    trust ratio, as in the papers' reference code.

    Args:
        params: Parameters or parameter groups.
        lr: Learning rate.
        momentum: Momentum factor.
        weight_decay: L2 penalty on weights (not on 1-D parameters).
        trust_coefficient: ``eta`` of the trust ratio ``eta * ||w|| / ||grad + wd * w||``.
        eps: Added to the denominator.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 1e-6,
        trust_coefficient: float = 0.001,
        eps: float = 1e-8,
    ) -> None:
        if lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coefficient=trust_coefficient, eps=eps)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if p.ndim > 1:
                    grad = grad.add(p, alpha=group["weight_decay"])
                    w_norm = torch.linalg.vector_norm(p)
                    g_norm = torch.linalg.vector_norm(grad)
                    trust = torch.where(
                        (w_norm > 0) & (g_norm > 0),
                        group["trust_coefficient"] * w_norm / (g_norm + group["eps"]),
                        torch.ones_like(w_norm),
                    )
                    grad = grad.mul(trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = grad.clone()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(grad)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split trainable parameters into a decayed group (weights) and an undecayed one (biases, norms)."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        (decay if parameter.ndim > 1 else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(
    model: nn.Module,
    name: str = "sgd",
    lr: float = 0.1,
    weight_decay: float = 0.0,
    momentum: float | None = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.Optimizer:
    """Make an optimiser over ``model``'s trainable parameters by name: ``"sgd"``, ``"adamw"`` or ``"lars"``.

    Biases and normalisation parameters get no weight decay. ``momentum`` is used by ``sgd`` and
    ``lars`` (None: 0.9); ``adamw`` ignores it (``betas`` play its part).
    """
    key = name.lower()
    groups = parameter_groups(model, weight_decay)
    momentum = 0.9 if momentum is None else float(momentum)
    if key == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if key == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas))
    if key == "lars":
        return LARS(groups, lr=lr, momentum=momentum)
    raise ValueError(f"unknown optimizer {name!r}; choose one of: sgd, adamw, lars")


class WarmupCosineSchedule:
    """Learning-rate factor as a function of the fraction of training done.

    Linear warm-up from 0 to 1 over the first ``warmup`` fraction, then a cosine decay to
    ``final_factor``. Driven by a fraction rather than a step count, so the same schedule
    fits a step budget or a time budget.

    Example:
        >>> schedule = WarmupCosineSchedule(warmup=0.1)
        >>> schedule(0.05), schedule(0.1), schedule(1.0)
        (0.5, 1.0, 0.0)
    """

    def __init__(self, warmup: float = 0.0, final_factor: float = 0.0, cosine: bool = True) -> None:
        if not 0.0 <= warmup < 1.0:
            raise ValueError(f"warmup must be a fraction of training in [0, 1), got {warmup}")
        self.warmup = warmup
        self.final_factor = final_factor
        self.cosine = cosine

    def __call__(self, fraction: float) -> float:
        fraction = min(max(fraction, 0.0), 1.0)
        if fraction < self.warmup:
            return fraction / self.warmup
        if not self.cosine:
            return 1.0
        progress = (fraction - self.warmup) / max(1e-12, 1.0 - self.warmup)
        return self.final_factor + (1.0 - self.final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
