"""Decoupled contrastive loss (DCL, Yeh et al., 2022): NT-Xent without the positive pair in its denominator."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from easyssl.runtime import distributed


def negative_mises_fisher_weights(z0: torch.Tensor, z1: torch.Tensor, sigma: float = 0.5) -> torch.Tensor:
    """DCLW's weight of each positive pair: ``2 - N softmax(<z0_i, z1_i> / sigma)`` over the batch, so pairs whose views
    already agree count less than 1 and pairs that disagree more (the paper's negative von Mises-Fisher weighting)."""
    similarity = (z0 * z1).sum(dim=1) / sigma
    return 2 - z0.shape[0] * torch.softmax(similarity, dim=0)


class DCLLoss(nn.Module):
    """Contrastive loss between two batches of projections ``z0`` and ``z1`` whose denominator holds the negatives only.

    NT-Xent's denominator also holds the positive pair, which couples the two: when the
    two views already agree, the positive dominates the denominator and the push from the
    negatives fades, so small batches learn slowly (Yeh et al., 2022, "Decoupled Contrastive
    Learning"). DCL removes it::

        l(i) = -sim(z_i, z_j) / t + log( sum_{k != i, j} exp(sim(z_i, z_k) / t) )

    averaged over the ``2N`` samples (each view's sample against the other view's positive
    and the ``2N - 2`` other samples of the batch), with ``sim`` the cosine similarity. This is
    the form of the paper's code and of LightlySSL's ``DCLLoss`` (one log-sum-exp over all negatives).

    Args:
        temperature: Softmax temperature ``t``; must be positive. 0.1, the paper's value.
        weight_fn: ``weight_fn(z0, z1) -> (N,)`` weights of the positive terms (normalised
            projections in); :func:`negative_mises_fisher_weights` makes this DCLW.
        gather_distributed: Under ``torch.distributed``, gather the projections of all
            processes so every sample sees the negatives of the global batch.

    Example:
        >>> loss_fn = DCLLoss(temperature=0.1)
        >>> loss = loss_fn(torch.randn(8, 128), torch.randn(8, 128))
    """

    def __init__(
        self, temperature: float = 0.1, weight_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.weight_fn = weight_fn
        self.gather_distributed = gather_distributed

    def forward(self, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        """Return the mean DCL loss of the two views (each of shape ``(N, D)``), symmetric in them."""
        if z0.shape != z1.shape or z0.dim() != 2:
            raise ValueError(f"z0 and z1 must both be (N, D) with the same shape, got {tuple(z0.shape)} and {tuple(z1.shape)}")
        n = z0.shape[0]
        if n < 2:
            raise ValueError(f"DCLLoss needs at least 2 samples per batch (a sample's negatives are the others), got {n}")
        z0 = F.normalize(z0.float(), dim=1)
        z1 = F.normalize(z1.float(), dim=1)
        if self.gather_distributed and distributed.is_distributed():
            z0_all, z1_all = torch.cat(distributed.gather(z0), 0), torch.cat(distributed.gather(z1), 0)
            diag = distributed.eye_rank(n, device=z0.device)
        else:
            z0_all, z1_all = z0, z1
            diag = torch.eye(n, dtype=torch.bool, device=z0.device)
        return 0.5 * (self._one_way(z0, z1, z0_all, z1_all, diag) + self._one_way(z1, z0, z1_all, z0_all, diag))

    def _one_way(self, a: torch.Tensor, b: torch.Tensor, a_all: torch.Tensor, b_all: torch.Tensor, diag: torch.Tensor) -> torch.Tensor:
        """The loss of the samples of ``a``: positives in ``b``, negatives in ``a_all`` and ``b_all`` but themselves."""
        n = a.shape[0]
        sim_aa = a @ a_all.T / self.temperature
        sim_ab = a @ b_all.T / self.temperature
        positive = -sim_ab[diag]
        if self.weight_fn is not None:
            positive = positive * self.weight_fn(a, b)
        negatives = torch.cat([sim_aa[~diag].view(n, -1), sim_ab[~diag].view(n, -1)], dim=1)
        return (positive + torch.logsumexp(negatives, dim=1)).mean()


class DCLWLoss(DCLLoss):
    """:class:`DCLLoss` with the positive pairs weighted by :func:`negative_mises_fisher_weights` (DCLW, the paper's
    weighted form: hard positives count more).

    Args:
        temperature: Softmax temperature; 0.1, the paper's value.
        sigma: Scale of the weighting; 0.5, the paper's value.
        gather_distributed: As for :class:`DCLLoss`.
    """

    def __init__(self, temperature: float = 0.1, sigma: float = 0.5, gather_distributed: bool = False) -> None:
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        super().__init__(temperature, weight_fn=lambda z0, z1: negative_mises_fisher_weights(z0, z1, sigma), gather_distributed=gather_distributed)
        self.sigma = float(sigma)
