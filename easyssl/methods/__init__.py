"""The SSL methods: for each name, how to build its model, loss and views, with the paper's defaults.

``train_embedding_model(method="byol")`` and ``easyssl train --method byol`` look the method
up in :data:`METHODS`; checkpoints store the method's name and the model settings, so
:func:`build_model` rebuilds any checkpoint's model. Each method is one module,
``easyssl/methods/<name>.py``, holding its model class and ``METHOD``: a :class:`Method` whose
``model_defaults``, ``criterion_defaults``, ``collate_defaults`` and ``optimizer_defaults``
become the ``model``, ``criterion``, ``collate`` and ``optimizer`` sections of
``train_embedding_model``'s config (see ``easyssl.default_config("byol")``). The defaults are
the papers', scaled for small setups.

Optimisers: the papers train with batches of 1024-4096 (LARS, or AdamW for ViTs). easyssl
defaults to what trains at the batch sizes of a single machine (64-256): SGD with momentum,
``base_lr`` 0.05-0.06 per 256 images and weight decay 5e-4 for most ResNet methods (the
settings of LightlySSL's CIFAR-10 benchmarks); LARS with the papers' ``base_lr`` 0.2 for
Barlow Twins and VICReg, whose losses are sums over thousands of dimensions (with plain SGD
Barlow Twins' loss stalls and VICReg's diverges); AdamW for DINO and MAE. For a ViT backbone
with the other methods, pass ``optimizer={"name": "adamw", "base_lr": 1.5e-4, "weight_decay": 0.1}``.
Only SGD and LARS have a ``momentum`` key.

Small datasets: MoCo's queue (``criterion={"memory_bank_size": 4096}``) should be well below
the number of images, or it fills with stale copies of the positives; lower it for a few
hundred images.

DINO's teacher temperature defaults to the reference code's constant 0.04 (a warmer teacher
risks collapse in short runs); the paper's 0.04 -> 0.07 warm-up over 30 epochs is
``criterion={"teacher_temp": 0.07}``, compressed into the first 30% of shorter runs (see
:class:`easyssl.methods.dino.DINO`). Early in training DINO's loss sits near
``log(output_dim)`` while the teacher is still uniform; LightlySSL's implementation behaves the same.

Distributed training: every loss that can use the global batch (``gather_distributed``, SwaV's
``sinkhorn_gather_distributed``) has that key as ``"auto"`` in its ``criterion_defaults``; the
config turns it on when training is distributed.

Adding a method: write ``easyssl/methods/<name>.py`` with its model and ``METHOD``, and add one
line to :data:`METHODS`; or, from outside the package, :func:`register_method`.
"""

from __future__ import annotations

from typing import Any

from easyssl.methods import barlowtwins, byol, dino, mae, moco, mocov3, nnclr, simclr, simsiam, swav, vicreg
from easyssl.methods.base import BACKBONE_KEYS, EMBEDDING_KEYS, WEIGHTS_KEYS, Method
from easyssl.nn.backbones import backbone as build_backbone
from easyssl.nn.base import SSLModel
from easyssl.nn.weights import load_backbone_weights
from easyssl.runtime.log import logger
from easyssl.runtime.suggest import METHOD_ALIASES, did_you_mean

#: The methods by name, one line each.
METHODS: dict[str, Method] = {
    "simclr": simclr.METHOD,
    "moco": moco.METHOD,
    "mocov3": mocov3.METHOD,
    "byol": byol.METHOD,
    "simsiam": simsiam.METHOD,
    "barlowtwins": barlowtwins.METHOD,
    "vicreg": vicreg.METHOD,
    "dino": dino.METHOD,
    "swav": swav.METHOD,
    "nnclr": nnclr.METHOD,
    "mae": mae.METHOD,
}


def register_method(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS` (replacing one of the same name) and return it."""
    METHODS[method.name.lower()] = method
    return method


def available_methods() -> list[str]:
    """Names of the methods, sorted."""
    return sorted(METHODS)


def get_method(name: str) -> Method:
    """Look a method up by name (case-insensitive, ``-`` and ``_`` ignored); the error lists the valid names."""
    key = str(name).lower().replace("-", "").replace("_", "")
    for known, method in METHODS.items():
        if known.replace("-", "").replace("_", "") == key:
            return method
    hint = did_you_mean(str(name), sorted(METHODS), METHOD_ALIASES)
    raise ValueError(f"unknown method {name!r}{hint}; choose one of: {', '.join(sorted(METHODS))}")


def build_model(method: str | Method, model_config: dict[str, Any], input_size: int | None = None, load_weights: bool = False) -> SSLModel:
    """Build ``method``'s model from a model config (backbone keys plus the method's head keys).

    ``load_weights``: start the backbone from ``model_config["weights"]`` (before the heads and
    momentum copies are made from it); off when a checkpoint's weights replace them anyway.
    """
    spec = method if isinstance(method, Method) else get_method(method)
    config = {**spec.model_defaults, **model_config}
    backbone_kwargs = {k: config.pop(k) for k in BACKBONE_KEYS if k in config}
    weights, prefix = (config.pop(k, None) for k in WEIGHTS_KEYS)
    views = config.pop(EMBEDDING_KEYS[0], None)
    name = backbone_kwargs.pop("backbone", "resnet-18")
    net = build_backbone(name, input_size=input_size, **backbone_kwargs)
    if weights and load_weights:
        logger.info("backbone weights: %s", load_backbone_weights(net, weights, prefix or "auto"))
    model = spec.model(net, **config)
    if views is not None and views != "auto":  # "auto" before the config is resolved: the image alone
        model.embedding_views = views
    return model


__all__ = ["BACKBONE_KEYS", "EMBEDDING_KEYS", "WEIGHTS_KEYS", "METHODS", "Method", "available_methods", "build_model", "get_method", "register_method"]
