"""Defaults shared by several methods, written once.

The view presets live next to their transforms (:data:`easyssl.transforms.SIMCLR_VIEW`,
:data:`~easyssl.transforms.MOCO_V2_VIEW`, :data:`~easyssl.transforms.BYOL_VIEWS`...); this
module holds the optimiser shared by most ResNet methods. Why these optimisers: see
:mod:`easyssl.methods`.
"""

from __future__ import annotations

from typing import Any

#: SGD with momentum, ``base_lr`` 0.06 per 256 images and weight decay 5e-4: the settings of
#: LightlySSL's CIFAR-10 benchmarks, which train at the batch sizes of one machine (64-256).
SGD: dict[str, Any] = {"name": "sgd", "base_lr": 0.06, "weight_decay": 5e-4, "momentum": 0.9, "warmup": 0.02}
