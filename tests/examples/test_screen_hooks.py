"""The tuning screen's loss and augmentation hooks (``examples/benchmarks/screen_hooks.py``) compute what their figures
in the README's tuning notes say they do."""

from __future__ import annotations

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "benchmarks"))

import screen_hooks  # noqa: E402

from easyssl.loss import NTXentLoss  # noqa: E402


@pytest.fixture
def projections():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(32, 16, generator=generator), torch.randn(32, 16, generator=generator)


def test_debiased_loss_without_correction_is_nt_xent(projections):
    z0, z1 = projections
    expected = NTXentLoss(temperature=0.2)(z0, z1)
    assert torch.allclose(screen_hooks.debiased_nt_xent(z0, z1, 0.2), expected, atol=1e-5)


def test_hard_negatives_raise_the_loss_and_the_debiasing_lowers_it(projections):
    z0, noise = projections
    z1 = z0 + 0.5 * noise  # positives more alike than negatives, as in training
    plain = screen_hooks.debiased_nt_xent(z0, z1, 0.2)
    # weights growing with the similarity put more mass on the larger terms: the weighted sum is larger
    assert screen_hooks.debiased_nt_xent(z0, z1, 0.2, beta=1.0) > plain + 1e-3
    # with the positive above the mean negative, removing a share of positive-like terms shrinks the denominator
    assert screen_hooks.debiased_nt_xent(z0, z1, 0.2, tau_plus=0.1) < plain - 1e-3


def test_hard_negative_weights_are_not_trained(projections):
    z0, z1 = (z.clone().requires_grad_(True) for z in projections)
    screen_hooks.debiased_nt_xent(z0, z1, 0.2, beta=1.0).backward()
    assert z0.grad is not None and torch.isfinite(z0.grad).all()


def test_random_erasing_blanks_one_rectangle_in_about_the_asked_share_of_images():
    torch.manual_seed(0)
    erased = screen_hooks.erase_rectangles(torch.ones(2000, 3, 20, 20), probability=0.5)
    blank = (erased == 0).float().mean(dim=(1, 2, 3))
    assert 0.45 < (blank > 0).float().mean() < 0.55
    assert blank.max() <= 0.25  # at most a fifth of the area, up to the rounding of the sides
    hit = erased[blank > 0][0, 0] == 0  # one image's blanked pixels form a rectangle
    rows, cols = hit.any(1).nonzero().flatten(), hit.any(0).nonzero().flatten()
    assert hit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
    assert hit.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
