"""The tuning screen's loss and augmentation hooks (``examples/benchmarks/screen_hooks.py``) compute what their figures
in docs/tuning_notes.md say they do."""

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


def _hard_negative_loss(z0, z1, t, beta, detach):
    """Robinson et al.'s loss written out for two views, the weights' gradient kept or not."""
    n = z0.shape[0]
    out = torch.nn.functional.normalize(torch.cat([z0, z1]), dim=1)
    logits = out @ out.T / t
    positive = torch.cat([(out[:n] * out[n:]).sum(1), (out[n:] * out[:n]).sum(1)]) / t
    keep = ~torch.eye(2 * n, dtype=torch.bool)
    keep[torch.arange(n), torch.arange(n) + n] = keep[torch.arange(n) + n, torch.arange(n)] = False
    negative = logits[keep].view(2 * n, -1)
    weights = torch.softmax(beta * (negative.detach() if detach else negative), dim=1) * negative.shape[1]
    return (torch.log(positive.exp() + (weights * negative.exp()).sum(1)) - positive).mean()


def test_hard_negative_weights_are_not_trained(projections):
    def gradient(loss_fn):
        z0, z1 = (z.clone().requires_grad_(True) for z in projections)
        loss_fn(z0, z1).backward()
        return z0.grad

    ours = gradient(lambda a, b: screen_hooks.debiased_nt_xent(a, b, 0.2, beta=1.0))
    assert torch.allclose(ours, gradient(lambda a, b: _hard_negative_loss(a, b, 0.2, 1.0, detach=True)), atol=1e-5)
    assert not torch.allclose(ours, gradient(lambda a, b: _hard_negative_loss(a, b, 0.2, 1.0, detach=False)), atol=1e-4)


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
