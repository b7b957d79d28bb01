"""Momentum (EMA) encoders: the slowly moving copies used by MoCo, BYOL and DINO.

A momentum encoder is a ``copy.deepcopy`` of the online network made right after the online
network is built, with gradients switched off (so the optimiser never sees it), and updated
after each optimiser step with an exponential moving average of the online weights::

    target = m * target + (1 - m) * online

The copies are ordinary sub-modules, so they are part of the model's ``state_dict``:
checkpoints hold them and resuming restores them. Their batch-norm statistics follow their
own forward passes (as in BYOL's and DINO's reference code).

Example (a plain PyTorch loop)::

    online = nn.Sequential(backbone, head)
    target = momentum_copy(online)
    for step, batch in enumerate(loader):
        ...  # loss.backward(); optimizer.step()
        update_momentum(online, target, m=cosine_schedule(step / total_steps, 0.996, 1.0))
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from easyssl.models.base import TrainingProgress
from easyssl.optim import cosine_schedule


def deactivate_requires_grad(module: nn.Module) -> nn.Module:
    """Switch off gradients of every parameter of ``module`` (in place) and return it."""
    for parameter in module.parameters():
        parameter.requires_grad = False
    return module


def activate_requires_grad(module: nn.Module) -> nn.Module:
    """Switch gradients of every parameter of ``module`` back on (in place) and return it."""
    for parameter in module.parameters():
        parameter.requires_grad = True
    return module


def momentum_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` with gradients off: a momentum (target / teacher) encoder."""
    return deactivate_requires_grad(copy.deepcopy(module))


@torch.no_grad()
def update_momentum(model: nn.Module, ema_model: nn.Module, m: float) -> None:
    """EMA update of ``ema_model``'s parameters in place: ``ema = m * ema + (1 - m) * model``.

    Both modules must have the same architecture (``ema_model`` is a copy of ``model``).
    Buffers (batch-norm statistics) are left alone.

    Args:
        model: The online network (trained by the optimiser).
        ema_model: Its momentum copy.
        m: Momentum in ``[0, 1]``; 1 keeps ``ema_model`` unchanged, 0 copies ``model``.
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {m}")
    ema_params = list(ema_model.parameters())
    params = list(model.parameters())
    if len(ema_params) != len(params):
        raise ValueError("update_momentum needs two modules of the same architecture (ema_model = copy of model)")
    for ema, online in zip(ema_params, params):
        ema.mul_(m).add_(online.detach().to(ema.dtype), alpha=1.0 - m)


def momentum_at(progress: TrainingProgress | float, start: float, end: float = 1.0) -> float:
    """Momentum of a cosine schedule from ``start`` to ``end`` over training (BYOL, DINO, MoCo v3).

    Args:
        progress: A :class:`TrainingProgress` or the fraction of training done.
        start: Momentum at the start of training.
        end: Momentum at the end of training.
    """
    fraction = progress.fraction if isinstance(progress, TrainingProgress) else float(progress)
    return cosine_schedule(fraction, start, end)
