"""Fixtures of the screen hooks' tests (``examples/benchmarks/*_hook.py``): a batch of images, the small-image SimCLR
of easyssl's defaults, and SimCLR's own methods put back after a hook has replaced them. A test module imports the
fixtures it uses by name (not a ``conftest.py``: tests elsewhere import ``tests/conftest.py`` as ``conftest``, which one
here would shadow); importing this module also puts ``examples/benchmarks`` on the path, where the hooks are."""

from __future__ import annotations

import os
import sys

import pytest
import torch

# the hooks are scripts beside tuning_screen.py, imported by their file names
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "benchmarks"))


@pytest.fixture
def images() -> torch.Tensor:
    """16 random 28 px RGB images, ``uint8`` (a batch as the batched views take it)."""
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (16, 3, 28, 28), dtype=torch.uint8, generator=generator)


@pytest.fixture
def simclrs_loss(monkeypatch):
    """SimCLR's own ``training_loss``; its ``__init__`` and ``training_loss`` are put back after the test, whatever hook
    replaced them."""
    from easyssl.methods import simclr

    monkeypatch.setattr(simclr.SimCLR, "training_loss", simclr.SimCLR.training_loss)
    monkeypatch.setattr(simclr.SimCLR, "__init__", simclr.SimCLR.__init__)
    return simclr.SimCLR.training_loss


@pytest.fixture
def small_simclr():
    """Builds the defaults' SimCLR for 28 px images (ResNet-18 x0.25 at 20 px, rotation prediction 0.4, decorrelation
    0.1, feature BatchNorm) from seed 0, with whatever hooks are in place when called."""
    def build():
        from easyssl.methods import simclr
        from easyssl.models import backbone

        torch.manual_seed(0)
        return simclr.SimCLR(backbone("resnet-18", width=0.25, input_size=20), rotation_weight=0.4, decorrelation_weight=0.1,
                             feature_norm=True)

    return build
