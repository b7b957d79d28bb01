"""The i-Mix screen hook (``examples/benchmarks/imix_hook.py``) mixes what it says, aims each mixed anchor at its two
sources in the drawn proportions, and leaves SimCLR's loss as it was when its weight is 0."""

from __future__ import annotations

import torch

from screen_hook_fixtures import images, simclrs_loss, small_simclr  # noqa: F401 (pytest fixtures; first: it puts the hooks on the path)

import imix_hook

from easyssl.transforms.batched import batch_two_view_augment


def test_mix_is_a_convex_mix_with_a_permutation():
    torch.manual_seed(0)
    x = torch.randn(64, 3, 8, 8)
    mixed, partner, lam = imix_hook.mix(x, alpha=1.0)
    assert sorted(partner.tolist()) == list(range(64))
    assert (lam >= 0.5).all() and (lam <= 1).all() and lam.std() > 0.05  # folded, and drawn per image
    expected = lam.view(-1, 1, 1, 1) * x + (1 - lam.view(-1, 1, 1, 1)) * x[partner]
    assert torch.allclose(mixed, expected, atol=1e-6)


def test_loss_is_lowest_where_the_anchor_points_at_both_sources_in_proportion():
    torch.manual_seed(0)
    keys = torch.nn.functional.normalize(torch.randn(32, 64), dim=1)  # nearly orthogonal in 64 dimensions
    partner = torch.roll(torch.arange(32), 1)
    lam = torch.full((32,), 0.7)
    # anchors between their own key and their partner's, in the proportion of lam
    anchors = 0.7 * keys + 0.3 * keys[partner]
    right = imix_hook.imix_loss(anchors, keys, partner, lam, temperature=0.2)
    wrong_partner = imix_hook.imix_loss(anchors, keys, torch.roll(torch.arange(32), 2), lam, temperature=0.2)
    own_only = imix_hook.imix_loss(keys, keys, partner, lam, temperature=0.2)  # ignores the partner
    assert right < wrong_partner and right < own_only
    # with lam 1 it is plain cross-entropy towards the own key
    ce = torch.nn.functional.cross_entropy(anchors @ keys.T / 0.2 / anchors.norm(dim=1, keepdim=True), torch.arange(32))
    assert torch.allclose(imix_hook.imix_loss(anchors, keys, partner, torch.ones(32), 0.2), ce, atol=1e-5)


def test_without_its_term_the_loss_is_simclrs(simclrs_loss, small_simclr, images):
    from easyssl.methods import simclr

    imix_hook.use_imix(0.0)
    model = small_simclr()
    views = batch_two_view_augment(input_size=20, min_scale=0.25)(images)
    criterion = simclr.NTXentLoss(0.2)
    torch.manual_seed(1)  # the same quarter turns in both
    expected = simclrs_loss(model, views, criterion, None)
    torch.manual_seed(1)
    assert torch.allclose(model.training_loss(views, criterion, None), expected, rtol=1e-6, atol=1e-6)


def test_its_term_trains_the_backbone(simclrs_loss, small_simclr, images):
    from easyssl.methods import simclr

    imix_hook.use_imix(1.0)
    model = small_simclr()
    views = batch_two_view_augment(input_size=20, min_scale=0.25)(images)
    criterion = simclr.NTXentLoss(0.2)
    torch.manual_seed(1)
    with_imix = model.training_loss(views, criterion, None)
    torch.manual_seed(1)
    plain = simclrs_loss(model, views, criterion, None)
    assert with_imix > plain + 0.5  # an N-pair loss over 16 keys at the start of training: about log(16) more
    with_imix.backward()
    assert model.backbone.parameters().__next__().grad.abs().sum() > 0
