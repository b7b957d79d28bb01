"""Prototype layers: learnt unit vectors that projections are scored against (SwaV's prototypes, DINO's last layer)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def frozen_parameter(parameter: torch.Tensor, frozen: bool) -> torch.Tensor:
    """``parameter`` itself, or (``frozen``) a copy whose gradient is exactly zero.

    ``p.detach() + 0 * p`` keeps the parameter in the autograd graph, so distributed data
    parallel still sees a (zero) gradient for it, while the optimiser gets nothing to follow.
    """
    return parameter.detach() + 0.0 * parameter if frozen else parameter


class SwaVPrototypes(nn.Module):
    """SwaV's prototypes: a bias-free linear layer whose rows (the prototypes) are unit vectors.

    ``forward(x)`` returns the scores ``x @ prototypes.T``; with L2-normalised ``x`` these are
    cosine similarities. Call :meth:`normalize` after every optimiser step (the SwaV model does
    it in ``on_after_step``). ``forward(x, frozen=True)`` stops the prototypes' gradient, as
    during the first epoch of the paper.

    Args:
        input_dim: Size of the projections.
        n_prototypes: Number of prototypes (3000 in the paper).
    """

    def __init__(self, input_dim: int = 128, n_prototypes: int = 3000) -> None:
        super().__init__()
        if n_prototypes < 1:
            raise ValueError(f"n_prototypes must be >= 1, got {n_prototypes}")
        self.layer = nn.Linear(input_dim, n_prototypes, bias=False)
        self.normalize()

    @torch.no_grad()
    def normalize(self) -> None:
        """L2-normalise every prototype (row of the weight), in place."""
        self.layer.weight.copy_(F.normalize(self.layer.weight, dim=1))

    def forward(self, x: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        return F.linear(x, frozen_parameter(self.layer.weight, frozen))
