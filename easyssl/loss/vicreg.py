"""VICReg loss: variance-invariance-covariance regularisation (Bardes, Ponce & LeCun, 2022)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from easyssl.runtime import distributed


class VICRegLoss(nn.Module):
    """VICReg loss between two batches of projections ``z_a`` and ``z_b`` of shape ``(N, D)``.

    Follows the official implementation (facebookresearch/vicreg)::

        invariance = mean((z_a - z_b)^2)
        std(z)     = sqrt(var_batch(z) + eps)                   (unbiased variance, per feature)
        variance   = mean_d relu(1 - std(z_a)) / 2 + mean_d relu(1 - std(z_b)) / 2
        cov(z)     = (z - mean(z)).T @ (z - mean(z)) / (N - 1)
        covariance = sum_{i != j} cov(z_a)_ij^2 / D + sum_{i != j} cov(z_b)_ij^2 / D
        loss       = lambda * invariance + mu * variance + nu * covariance

    For collapsed (constant) outputs the variance term is ``1 - sqrt(eps)`` and the
    covariance term 0.

    Args:
        lambda_param: Weight of the invariance term; must be >= 0.
        mu_param: Weight of the variance term; must be >= 0.
        nu_param: Weight of the covariance term; must be >= 0.
        gather_distributed: Under ``torch.distributed``, compute the variance and
            covariance terms on the projections gathered from all processes (the
            invariance term stays local, as in the official code).
        eps: Added to the variance before the square root; must be > 0.

    Example:
        >>> loss_fn = VICRegLoss()
        >>> loss = loss_fn(torch.randn(8, 128), torch.randn(8, 128))
    """

    def __init__(
        self,
        lambda_param: float = 25.0,
        mu_param: float = 25.0,
        nu_param: float = 1.0,
        gather_distributed: bool = False,
        eps: float = 1e-4,
    ) -> None:
        super().__init__()
        for name, value in (("lambda_param", lambda_param), ("mu_param", mu_param), ("nu_param", nu_param)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.lambda_param = float(lambda_param)
        self.mu_param = float(mu_param)
        self.nu_param = float(nu_param)
        self.gather_distributed = gather_distributed
        self.eps = float(eps)

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """Return the VICReg loss of the two views as a float32 scalar."""
        if z_a.dim() != 2 or z_a.shape != z_b.shape:
            raise ValueError(
                f"z_a and z_b must both be (N, D) with the same shape, got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
            )
        with torch.autocast(device_type=z_a.device.type, enabled=False):
            z_a, z_b = z_a.float(), z_b.float()
            inv_loss = F.mse_loss(z_a, z_b)
            if self.gather_distributed and distributed.is_distributed():
                z_a = torch.cat(distributed.gather(z_a), dim=0)
                z_b = torch.cat(distributed.gather(z_b), dim=0)
            if z_a.shape[0] < 2:
                raise ValueError(f"z_a and z_b need a batch size of at least 2, got {z_a.shape[0]}")
            return (
                self.lambda_param * inv_loss
                + self.mu_param * (self._variance(z_a) + self._variance(z_b)) / 2
                + self.nu_param * (self._covariance(z_a) + self._covariance(z_b))
            )

    def _variance(self, z: torch.Tensor) -> torch.Tensor:
        std = torch.sqrt(z.var(dim=0) + self.eps)
        return F.relu(1 - std).mean()

    @staticmethod
    def _covariance(z: torch.Tensor) -> torch.Tensor:
        n, d = z.shape
        z = z - z.mean(dim=0)
        cov = z.T @ z / (n - 1)
        off_diagonal = cov.flatten()[:-1].view(d - 1, d + 1)[:, 1:]
        return off_diagonal.pow(2).sum() / d
