"""Helpers of the multi-crop methods (SwaV, DINO): batched forward passes over views of mixed sizes, early freezing."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from easyssl.nn.base import TrainingProgress


def forward_grouped(fn: Callable[[torch.Tensor], torch.Tensor], views: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``[fn(v) for v in views]``, but with one call per run of consecutive views of the same size
    (concatenated into one batch: faster, and batch norm sees them together, as in the papers' code)."""
    outputs: list[torch.Tensor] = []
    start = 0
    while start < len(views):
        end = start + 1
        while end < len(views) and views[end].shape[1:] == views[start].shape[1:]:
            end += 1
        group = views[start:end]
        outputs += list(fn(torch.cat(list(group)) if len(group) > 1 else group[0]).chunk(len(group)))
        start = end
    return outputs


def frozen_at(progress: TrainingProgress, fraction: float) -> bool:
    """True during the first ``fraction`` of training, but never longer than the first epoch."""
    if fraction <= 0:
        return False
    steps = min(fraction * progress.max_steps, progress.max_steps / max(1, progress.max_epochs))
    return progress.step < steps
