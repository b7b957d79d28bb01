"""MAE's reconstruction loss (He et al., 2022): mean squared error on the masked patches only."""

from __future__ import annotations

import torch
from torch import nn


class MAELoss(nn.MSELoss):
    """Mean squared error between predicted and true pixels of the *masked* patches only.

    With ``norm_pix_loss`` each target patch is first standardised by its own mean and
    variance (the paper's better variant).

    ``forward(pred, target, mask)``: ``pred`` and ``target`` are ``(B, N, patch_dim)``; ``mask``
    is ``(B, N)`` with 1 (or True) where the patch was masked. Without ``mask`` every patch counts.

    Args:
        norm_pix_loss: Standardise each target patch.
        eps: Added to the variance.

    Example:
        >>> loss = MAELoss()(pred, model.patchify(images), mask)
    """

    def __init__(self, norm_pix_loss: bool = True, eps: float = 1e-6) -> None:
        super().__init__(reduction="mean")
        self.norm_pix_loss = norm_pix_loss
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if pred.shape != target.shape:
            raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
        with torch.autocast(device_type=pred.device.type, enabled=False):
            target = target.detach().float()
            if self.norm_pix_loss:
                mean = target.mean(dim=-1, keepdim=True)
                var = target.var(dim=-1, keepdim=True)
                target = (target - mean) / (var + self.eps) ** 0.5
            pred = pred.float()
            if mask is not None:
                if mask.shape != pred.shape[:-1]:
                    raise ValueError(f"mask must have shape {tuple(pred.shape[:-1])}, got {tuple(mask.shape)}")
                keep = mask.bool()
                if not keep.any():
                    raise ValueError("the mask selects no patch: nothing to reconstruct")
                pred, target = pred[keep], target[keep]
            return super().forward(pred, target)
