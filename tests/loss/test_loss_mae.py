"""MAE's loss: mean squared error on the masked patches, with per-patch normalised targets."""

import pytest
import torch

from easyssl.loss import MAELoss


def test_mae_loss_by_hand_on_masked_patches_only():
    pred = torch.zeros(1, 2, 3)
    target = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 4.0, 4.0]]])
    mask = torch.tensor([[1, 0]])
    assert MAELoss(norm_pix_loss=False)(pred, target, mask).item() == pytest.approx((1 + 4 + 9) / 3)
    assert MAELoss(norm_pix_loss=False)(pred, target).item() == pytest.approx((1 + 4 + 9 + 48) / 6)
    normalised = (target[0, 0] - 2.0) / (1.0 + 1e-6) ** 0.5  # mean 2, unbiased variance 1
    assert MAELoss()(pred, target, mask).item() == pytest.approx(float((normalised**2).mean()), rel=1e-5)


def test_mae_loss_errors():
    with pytest.raises(ValueError, match="same shape"):
        MAELoss()(torch.zeros(1, 2, 3), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="no patch"):
        MAELoss()(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(1, 2))
