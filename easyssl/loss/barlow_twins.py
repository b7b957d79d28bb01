"""Barlow Twins loss: redundancy reduction between two views (Zbontar et al., 2021)."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from easyssl.runtime import distributed


class _AllReduceSum(torch.autograd.Function):
    """Sum a tensor over all processes, keeping the autograd graph.

    Every rank computes the loss from the same reduced tensor, so the backward sums the
    incoming gradients over ranks too (as :func:`easyssl.distributed.gather` does); DDP's
    averaging then yields the gradient of the global loss.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def _all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(tensor) if distributed.is_distributed() else tensor


class BarlowTwinsLoss(nn.Module):
    """Barlow Twins loss between two batches of projections ``z_a`` and ``z_b`` of shape ``(N, D)``.

    Each view is standardised along the batch (mean 0, standard deviation 1 per feature,
    like the paper's non-affine batch norm), then the ``D x D`` cross-correlation matrix is
    pushed towards the identity::

        z_norm = (z - mean_batch(z)) / sqrt(var_batch(z) + 1e-5)     (biased variance)
        c      = z_a_norm.T @ z_b_norm / N
        loss   = sum_i (1 - c_ii)^2 + lambda * sum_{i != j} c_ij^2

    Collapsed (constant) features are standardised to 0 rather than NaN, giving ``c = 0``.

    Args:
        lambda_param: Weight ``lambda`` of the redundancy-reduction (off-diagonal) term;
            must be >= 0. The paper uses 5e-3.
        gather_distributed: Under ``torch.distributed``, use the global batch: the batch
            statistics and the cross-correlation are summed over all processes and divided
            by the global batch size, as in the official implementation (synchronised batch
            norm followed by an ``all_reduce`` of ``c``).

    Example:
        >>> loss_fn = BarlowTwinsLoss()
        >>> loss = loss_fn(torch.randn(8, 128), torch.randn(8, 128))
    """

    #: Added to the variance before the square root, as in ``nn.BatchNorm1d``.
    norm_eps: float = 1e-5

    def __init__(self, lambda_param: float = 5e-3, gather_distributed: bool = False) -> None:
        super().__init__()
        if lambda_param < 0:
            raise ValueError(f"lambda_param must be >= 0, got {lambda_param}")
        self.lambda_param = float(lambda_param)
        self.gather_distributed = gather_distributed

    def _standardise(self, z: torch.Tensor, n_total: int, gathered: bool) -> torch.Tensor:
        total = z.sum(dim=0)
        if gathered:
            total = _all_reduce_sum(total)
        centred = z - total / n_total
        sq = (centred * centred).sum(dim=0)
        if gathered:
            sq = _all_reduce_sum(sq)
        return centred / torch.sqrt(sq / n_total + self.norm_eps)

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """Return the Barlow Twins loss of the two views as a float32 scalar."""
        if z_a.dim() != 2 or z_a.shape != z_b.shape:
            raise ValueError(
                f"z_a and z_b must both be (N, D) with the same shape, got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
            )
        gathered = self.gather_distributed and distributed.is_distributed()
        n_total = z_a.shape[0] * (distributed.world_size() if gathered else 1)
        if n_total < 2:
            raise ValueError(f"z_a and z_b need a batch size of at least 2, got {n_total}")

        with torch.autocast(device_type=z_a.device.type, enabled=False):
            z_a_norm = self._standardise(z_a.float(), n_total, gathered)
            z_b_norm = self._standardise(z_b.float(), n_total, gathered)
            c = z_a_norm.T @ z_b_norm
            if gathered:
                c = _all_reduce_sum(c)
            c = c / n_total
            d = c.shape[0]
            on_diag = (1 - torch.diagonal(c)).pow(2).sum()
            off_diag = c.flatten()[:-1].view(d - 1, d + 1)[:, 1:].pow(2).sum()
            return on_diag + self.lambda_param * off_diag
