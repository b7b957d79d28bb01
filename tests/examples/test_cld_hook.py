"""The CLD screen hook (``examples/benchmarks/cld_hook.py``) clusters what it is given, scores a view by the other view's
clusters, and leaves SimCLR's loss as it was when its weight is 0."""

from __future__ import annotations

import torch

from screen_hook_fixtures import images, simclrs_loss, small_simclr  # noqa: F401 (pytest fixtures; first: it puts the hooks on the path)

import cld_hook

from easyssl.transforms.batched import batch_two_view_augment


def _blobs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Four tight, well separated groups of 8 points in 16 dimensions, shuffled: ``(points, group)``."""
    generator = torch.Generator().manual_seed(seed)
    centres = 10 * torch.eye(16)[:4]
    group = torch.arange(4).repeat_interleave(8)
    points = centres[group] + 0.1 * torch.randn(32, 16, generator=generator)
    order = torch.randperm(32, generator=generator)
    return points[order], group[order]


def test_kmeans_ends_at_a_fixed_point_of_lloyds_rounds():
    points, _ = _blobs()
    torch.manual_seed(3)
    for _ in range(5):  # several random starts
        labels, centroids = cld_hook.batch_kmeans(points, clusters=4, iterations=20)
        assert set(labels.tolist()) <= set(range(4))
        for c in set(labels.tolist()):  # each centroid is the mean of its points
            assert torch.allclose(centroids[c], points[labels == c].mean(0), atol=1e-5)
        # and each point is in the cluster of its nearest centroid: converged
        assert torch.equal(labels, torch.cdist(points, centroids).argmin(dim=1))


def test_centroids_carry_the_gradient_and_labels_do_not():
    points, _ = _blobs()
    points.requires_grad_(True)
    labels, centroids = cld_hook.batch_kmeans(points, clusters=4)
    assert labels.dtype == torch.long and not labels.requires_grad
    centroids.sum().backward()
    counts = torch.bincount(labels, minlength=4).float()
    assert torch.allclose(points.grad, (1 / counts[labels])[:, None].expand_as(points))  # each point in its cluster's mean


def test_an_empty_cluster_is_the_zero_vector():
    points = torch.tensor([[1.0, 2.0]]).repeat(4, 1)  # three starts at one place: every point goes to the first
    labels, centroids = cld_hook.batch_kmeans(points, clusters=3, iterations=3)
    assert labels.tolist() == [0, 0, 0, 0]
    assert torch.equal(centroids[0], torch.tensor([1.0, 2.0]))
    assert torch.equal(centroids[1:], torch.zeros(2, 2))


def test_loss_is_low_when_views_agree_on_groups_and_high_when_they_do_not():
    torch.manual_seed(0)
    points, _ = _blobs()
    agree = cld_hook.cld_loss(points, points + 0.05 * torch.randn_like(points), clusters=4, temperature=0.2)
    disagree = cld_hook.cld_loss(points, points[torch.randperm(32)], clusters=4, temperature=0.2)
    assert agree < 0.1 < 1.0 < disagree


def test_without_its_term_the_loss_is_simclrs(simclrs_loss, small_simclr, images):
    from easyssl.methods import simclr

    cld_hook.use_cld(0.0)
    model = small_simclr()
    views = batch_two_view_augment(input_size=20, min_scale=0.25)(images)
    criterion = simclr.NTXentLoss(0.2)
    torch.manual_seed(1)  # the same quarter turns in both
    expected = simclrs_loss(model, views, criterion, None)
    torch.manual_seed(1)
    assert torch.allclose(model.training_loss(views, criterion, None), expected, rtol=1e-6, atol=1e-6)


def test_its_term_trains_the_group_head_and_the_backbone(simclrs_loss, small_simclr, images):
    from easyssl.methods import simclr

    cld_hook.use_cld(1.0, clusters=4)
    model = small_simclr()
    assert any(name.startswith("group_head.") for name, _ in model.named_parameters())  # the optimiser will see it
    views = batch_two_view_augment(input_size=20, min_scale=0.25)(images)
    criterion = simclr.NTXentLoss(0.2)
    torch.manual_seed(1)
    with_cld = model.training_loss(views, criterion, None)
    torch.manual_seed(1)
    plain = simclrs_loss(model, views, criterion, None)
    assert with_cld > plain + 0.1  # four clusters at the start of training: a cross-entropy of order log(4)
    with_cld.backward()
    assert model.group_head.weight.grad.abs().sum() > 0
    assert model.backbone.parameters().__next__().grad.abs().sum() > 0
