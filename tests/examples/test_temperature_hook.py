"""The temperature-schedule screen hook (``examples/benchmarks/temperature_hook.py``) follows its cosine and trains with
NT-Xent at the temperature of the moment."""

from __future__ import annotations

import math

import torch

from screen_hook_fixtures import images, simclrs_loss  # noqa: F401 (pytest fixtures; first: it puts the hooks on the path)

import temperature_hook

from easyssl.nn.base import TrainingProgress
from easyssl.transforms.batched import batch_two_view_augment


def test_cosine_runs_from_high_to_low_and_back_each_cycle():
    t = temperature_hook.cosine_temperature
    assert math.isclose(t(0.0, 0.1, 1.0, 5), 1.0)
    assert math.isclose(t(0.1, 0.1, 1.0, 5), 0.1)  # half a period of a fifth of training
    assert math.isclose(t(0.2, 0.1, 1.0, 5), 1.0)
    assert math.isclose(t(0.05, 0.1, 1.0, 5), 0.55)
    assert math.isclose(t(0.5, 0.2, 0.6, 1), 0.2)


def test_each_step_uses_the_temperature_of_its_progress(simclrs_loss, images):
    from easyssl.methods import simclr
    from easyssl.models import backbone

    plain = simclrs_loss
    temperature_hook.use_temperature_schedule(0.1, 1.0, 5)
    torch.manual_seed(0)
    model = simclr.SimCLR(backbone("resnet-18", width=0.25, input_size=20))  # no turns: no random draws in the loss
    views = batch_two_view_augment(input_size=20, min_scale=0.25)(images)
    criterion = simclr.NTXentLoss(0.2)
    at_start = model.training_loss(views, criterion, TrainingProgress(step=0, max_steps=100))
    assert criterion.temperature == 1.0
    assert torch.allclose(at_start, plain(model, views, simclr.NTXentLoss(1.0), None), atol=1e-6)
    at_low = model.training_loss(views, criterion, TrainingProgress(step=10, max_steps=100))
    assert math.isclose(criterion.temperature, 0.1)
    assert torch.allclose(at_low, plain(model, views, simclr.NTXentLoss(0.1), None), atol=1e-5)
    assert at_low > at_start  # a sharper softmax over the same untrained similarities
