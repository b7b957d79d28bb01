"""Feature decorrelation: a penalty on the correlations between the features of one batch."""

from __future__ import annotations

import torch
from torch import nn


class CorrelationPenalty(nn.Module):
    """How redundant the features ``(N, D)`` of one batch are: the sum of the squared off-diagonal entries of their
    correlation matrix over the batch, divided by ``D``.

    Each feature is centred and scaled to unit standard deviation along the batch first, so the penalty asks
    nothing of the features' mean or scale (a ReLU network's pooled features are all positive, and their
    scales differ from stage to stage); it only asks that they do not vary together. It is Barlow Twins'
    redundancy term (Zbontar et al., 2021) on the auto-correlation of one batch, as in the covariance term of
    VICReg (Bardes et al., 2022) with the features standardised, added to another method's loss. Contrastive
    features trained through a projection head collapse onto a few directions (Jing et al., 2022, "Understanding
    dimensional collapse in contrastive self-supervised learning"); this keeps more directions alive in the
    features themselves. Computed in float32; features of a batch in which one is constant count it as
    uncorrelated (``eps`` in the scale). With independent features the penalty is about ``(D - 1) / (N - 1)``,
    not 0: the sampling noise of a correlation over ``N`` images.

    Example::

        penalty = CorrelationPenalty()
        loss = criterion(z0, z1) + 0.1 * penalty(features)
    """

    def __init__(self, eps: float = 1e-4) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 2 or features.shape[0] < 2:
            raise ValueError(f"CorrelationPenalty needs features of shape (N, D) with N >= 2, got {tuple(features.shape)}")
        h = features.float()
        h = (h - h.mean(dim=0)) / (h.std(dim=0) + self.eps)
        corr = h.T @ h / (h.shape[0] - 1)
        off_diagonal = corr - torch.diag(corr.diagonal())
        return off_diagonal.pow(2).sum() / corr.shape[0]
