"""The late nearest-neighbour screen hook (``examples/benchmarks/neighbour_hook.py``) keeps the last projections, finds
each query's nearest one, and is SimCLR's loss before its start and NNCLR's after it."""

from __future__ import annotations

import os
import sys

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "benchmarks"))

import neighbour_hook  # noqa: E402

from easyssl.nn.base import TrainingProgress  # noqa: E402
from easyssl.transforms.batched import batch_two_view_augment  # noqa: E402


@pytest.fixture
def images():
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (16, 3, 28, 28), dtype=torch.uint8, generator=generator)


def test_queue_keeps_the_last_items_normalised_and_finds_the_nearest():
    queue = neighbour_hook.ProjectionQueue(size=5)
    queue.push(torch.eye(8)[:3] * 3)
    queue.push(torch.eye(8)[3:7] * 2)
    assert queue.items.shape == (5, 8)
    assert torch.allclose(queue.items, torch.eye(8)[2:7])  # the first two fell out; each of unit length
    query = torch.eye(8)[[6, 2]] + 0.1 * torch.eye(8)[[0, 1]]  # near items 6 and 2; 0 and 1 are gone
    assert torch.equal(queue.nearest(query), torch.eye(8)[[6, 2]])
    z = torch.randn(3, 8, requires_grad=True)
    assert not queue.nearest(z).requires_grad  # the neighbour is a target, no gradient into the queue


def _model():
    from easyssl.methods import simclr
    from easyssl.models import backbone

    torch.manual_seed(0)
    return simclr.SimCLR(backbone("resnet-18", width=0.25, input_size=20), rotation_weight=0.4, decorrelation_weight=0.1, feature_norm=True)


def test_simclrs_loss_before_the_start_and_nnclrs_after(monkeypatch, images):
    from easyssl.methods import simclr

    monkeypatch.setattr(simclr.SimCLR, "training_loss", simclr.SimCLR.training_loss)  # put back after the test
    simclrs_loss = simclr.SimCLR.training_loss
    neighbour_hook.use_late_neighbours(0.5, queue_size=64)
    model = _model()
    views = batch_two_view_augment(input_size=20, min_scale=0.25)(images)
    criterion = simclr.NTXentLoss(0.2)
    early, late = TrainingProgress(step=1, max_steps=10), TrainingProgress(step=6, max_steps=10)
    torch.manual_seed(1)  # the same quarter turns in both
    expected = simclrs_loss(model, views, criterion, early)
    torch.manual_seed(1)
    assert torch.allclose(model.training_loss(views, criterion, early), expected, rtol=1e-6, atol=1e-6)  # and fills the queue
    torch.manual_seed(1)
    after = model.training_loss(views, criterion, late)
    # the queue holds the same batch's first views, so each first view's neighbour is (up to BatchNorm noise) itself:
    # NT-Xent of z0 against z1 again, but the second view's neighbour is a first view, so the loss differs from SimCLR's
    assert not torch.allclose(after, expected, atol=1e-4)
    after.backward()
    assert model.backbone.parameters().__next__().grad.abs().sum() > 0
    with torch.no_grad():  # what the hook computed, from its parts
        torch.manual_seed(1)
        both, turns = model.paired_views(views)
        features = model.embed(both)
        z0, z1 = model.projection_head(features).chunk(2, dim=0)
        queue = neighbour_hook.ProjectionQueue(64)
        queue.push(z0)  # the step before pushed this batch's first views (train-mode BatchNorm: the same values)
        nnclr = (criterion(queue.nearest(z0), z1) + criterion(queue.nearest(z1), z0)) / 2
        assert torch.allclose(after, model.add_auxiliary_losses(nnclr, features, turns), rtol=1e-5, atol=1e-5)
