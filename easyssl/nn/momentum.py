"""Momentum (EMA) encoders: the slowly moving copies used by MoCo, MoCo v3, BYOL and DINO, written once.

A momentum encoder is a ``copy.deepcopy`` of the online network made right after the online
network is built, with gradients switched off (so the optimiser never sees it), and updated
after each optimiser step with an exponential moving average of the online weights::

    target = m * target + (1 - m) * online

The copies are ordinary sub-modules, so they are part of the model's ``state_dict``:
checkpoints hold them and resuming restores them. Their batch-norm statistics follow their
own forward passes (as in BYOL's and DINO's reference code).

:class:`MomentumSSLModel` is the one implementation the four methods share: it makes the copies
(:meth:`~MomentumSSLModel.make_momentum_copies`), runs them (:meth:`~MomentumSSLModel.forward_momentum`)
and updates them after every step along a cosine schedule from ``momentum`` to ``momentum_end``.

Example (a plain PyTorch loop)::

    online = nn.Sequential(backbone, head)
    target = momentum_copy(online)
    for step, batch in enumerate(loader):
        ...  # loss.backward(); optimizer.step()
        update_momentum(online, target, m=cosine_schedule(step / total_steps, 0.996, 1.0))
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from easyssl.nn.base import SSLModel, TrainingProgress


def cosine_schedule(fraction: float, start: float, end: float) -> float:
    """Cosine interpolation from ``start`` (fraction 0) to ``end`` (fraction 1), e.g. for momentum schedules."""
    fraction = min(max(fraction, 0.0), 1.0)
    return end - (end - start) * (math.cos(math.pi * fraction) + 1) / 2


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


class MomentumSSLModel(SSLModel):
    """An :class:`SSLModel` with momentum copies of its encoder: the base of MoCo, MoCo v3, BYOL and DINO.

    :attr:`momentum_pairs` names the ``(online, copy)`` sub-modules, encoder first then head; a
    subclass builds its online modules, then calls :meth:`make_momentum_copies`. After every
    optimiser step (:meth:`on_after_step`) each copy follows its online module with the momentum
    of a cosine schedule from ``momentum`` to ``momentum_end`` over training.
    """

    #: ``(online, momentum copy)`` attribute names: the backbone's pair, then the head's.
    momentum_pairs: tuple[tuple[str, str], ...] = (("backbone", "backbone_momentum"), ("projection_head", "projection_head_momentum"))

    def make_momentum_copies(self, momentum: float, momentum_end: float = 1.0) -> None:
        """Copy every online module of :attr:`momentum_pairs` (gradients off) and set the schedule's ends."""
        for online, target in self.momentum_pairs:
            setattr(self, target, momentum_copy(getattr(self, online)))
        self.momentum = momentum
        self.momentum_end = momentum_end

    @torch.no_grad()
    def forward_momentum(self, x: torch.Tensor) -> torch.Tensor:
        """The momentum copies' output (encoder, flattened, then head) ``(B, out_dim)``, without gradient."""
        (_, encoder), (_, head) = self.momentum_pairs
        return getattr(self, head)(torch.flatten(getattr(self, encoder)(x), start_dim=1))

    def update_momentum(self, progress: TrainingProgress | float) -> float:
        """EMA step of every momentum copy at this point of training; returns the momentum used."""
        m = momentum_at(progress, self.momentum, self.momentum_end)
        for online, target in self.momentum_pairs:
            update_momentum(getattr(self, online), getattr(self, target), m)
        return m

    def on_after_step(self, progress: TrainingProgress) -> None:
        self.update_momentum(progress)
