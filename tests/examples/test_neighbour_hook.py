"""The late nearest-neighbour screen hook (``examples/benchmarks/neighbour_hook.py``) is SimCLR's loss before its start
(and while its queue is empty) and NNCLR's after it, with NNCLR's support set as its queue."""

from __future__ import annotations

import torch

from screen_hook_fixtures import images, simclrs_loss, small_simclr  # noqa: F401 (pytest fixtures; first: it puts the hooks on the path)

import neighbour_hook

from easyssl.nn.base import TrainingProgress
from easyssl.nn.support_set import NNMemoryBankModule
from easyssl.transforms.batched import batch_two_view_augment


def test_simclrs_loss_while_the_queue_is_empty_even_past_the_start(simclrs_loss, small_simclr, images):
    from easyssl.methods import simclr

    neighbour_hook.use_late_neighbours(0.5, queue_size=64)
    model = small_simclr()
    views = batch_two_view_augment(input_size=20, min_scale=0.25)(images)
    criterion = simclr.NTXentLoss(0.2)
    late = TrainingProgress(step=6, max_steps=10)
    weight = model.projection_head.layers[0].weight  # any parameter of the heads: what the step would change

    def loss_and_gradient(loss_fn):
        torch.manual_seed(1)  # the same quarter turns in both
        loss = loss_fn(model, views, criterion, late)
        (gradient,) = torch.autograd.grad(loss, [weight])
        return loss, gradient

    expected, expected_gradient = loss_and_gradient(simclrs_loss)
    # a resumed run's first step: nothing queued, so no neighbour (the support set would hand back z itself, detached:
    # the same loss value, half the gradient)
    loss, gradient = loss_and_gradient(type(model).training_loss)
    assert torch.allclose(loss, expected, rtol=1e-6, atol=1e-6)
    assert torch.allclose(gradient, expected_gradient, rtol=1e-5, atol=1e-6)


def test_simclrs_loss_before_the_start_and_nnclrs_after(simclrs_loss, small_simclr, images):
    from easyssl.methods import simclr

    neighbour_hook.use_late_neighbours(0.5, queue_size=64)
    model = small_simclr()
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
        queue = NNMemoryBankModule(64, z0.shape[1])
        queue.enqueue(z0)  # the step before pushed this batch's first views (train-mode BatchNorm: the same values)
        nnclr = (criterion(queue.nearest_neighbours(z0), z1) + criterion(queue.nearest_neighbours(z1), z0)) / 2
        assert torch.allclose(after, model.add_auxiliary_losses(nnclr, features, turns), rtol=1e-5, atol=1e-5)
