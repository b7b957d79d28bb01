"""The registry of SSL methods: for each name, how to build its model, loss and views, with the paper's defaults.

``train_embedding_model(method="byol")`` and ``easyssl train --method byol`` look the
method up here; checkpoints store the method's name and the model settings, so
:func:`build_model` rebuilds any checkpoint's model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from easyssl.models.backbones import backbone as build_backbone
from easyssl.models.base import SSLModel

#: Model-config keys that configure the backbone rather than the method's heads.
BACKBONE_KEYS = ("backbone", "width", "small_input")


@dataclass
class Method:
    """How to build one SSL method.

    Attributes:
        name: The method's name (``"simclr"``).
        model: ``model(backbone, **model_kwargs) -> SSLModel``.
        criterion: ``criterion(**criterion_kwargs) -> nn.Module``.
        transform: ``transform(input_size=..., normalize=..., **collate_kwargs)`` -> the
            per-image view transform (returns a list of views).
        model_defaults: Default keyword arguments of ``model`` (heads' sizes...).
        criterion_defaults: Default keyword arguments of ``criterion``.
        collate_defaults: Default keyword arguments of ``transform`` (besides input_size, normalize).
        optimizer_defaults: ``name``, ``base_lr`` (learning rate for a batch of 256, scaled
            linearly with the batch size), ``weight_decay``, ``momentum``, ``warmup``.
        batch_transform: Optional ``batch_transform(input_size=..., normalize=..., **collate_kwargs)``
            returning a module that makes the views from a ``uint8`` batch on the device (fast path).
        description: One line for ``--help`` and docs.
    """

    name: str
    model: Callable[..., SSLModel]
    criterion: Callable[..., nn.Module]
    transform: Callable[..., Callable]
    model_defaults: dict[str, Any] = field(default_factory=dict)
    criterion_defaults: dict[str, Any] = field(default_factory=dict)
    collate_defaults: dict[str, Any] = field(default_factory=dict)
    optimizer_defaults: dict[str, Any] = field(default_factory=dict)
    batch_transform: Callable[..., Callable] | None = None
    description: str = ""


_METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add ``method`` to the registry (replacing one of the same name) and return it."""
    _METHODS[method.name.lower()] = method
    return method


def available_methods() -> list[str]:
    """Names of the registered methods, sorted."""
    _load_builtin_methods()
    return sorted(_METHODS)


def get_method(name: str) -> Method:
    """Look a method up by name (case-insensitive); the error lists the valid names."""
    _load_builtin_methods()
    key = str(name).lower().replace("-", "").replace("_", "")
    for known, method in _METHODS.items():
        if known.replace("-", "").replace("_", "") == key:
            return method
    raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(sorted(_METHODS))}")


def build_model(method: str | Method, model_config: dict[str, Any], input_size: int | None = None) -> SSLModel:
    """Build ``method``'s model from a model config (backbone keys plus the method's head keys)."""
    spec = method if isinstance(method, Method) else get_method(method)
    config = {**spec.model_defaults, **model_config}
    backbone_kwargs = {k: config.pop(k) for k in BACKBONE_KEYS if k in config}
    name = backbone_kwargs.pop("backbone", "resnet-18")
    net = build_backbone(name, input_size=input_size, **backbone_kwargs)
    return spec.model(net, **config)


_BUILTINS_LOADED = False


def _load_builtin_methods() -> None:
    """Import the modules that register the built-in methods (once)."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from easyssl.loss import NTXentLoss
    from easyssl.models.simclr import SimCLR
    from easyssl.transforms.simclr import SimCLRTransform

    register_method(
        Method(
            name="simclr",
            model=SimCLR,
            criterion=NTXentLoss,
            transform=SimCLRTransform,
            model_defaults={"out_dim": 128, "hidden_dim": None, "num_layers": 2},
            criterion_defaults={"temperature": 0.2, "memory_bank_size": 0},
            collate_defaults=dict(
                cj_prob=0.8, cj_strength=0.5, cj_bright=0.8, cj_contrast=0.8, cj_sat=0.8, cj_hue=0.2, min_scale=0.08,
                random_gray_scale=0.2, gaussian_blur=0.5, kernel_size=None, sigmas=(0.1, 2.0), vf_prob=0.0, hf_prob=0.5,
                rr_prob=0.0, rr_degrees=None,
            ),
            optimizer_defaults={"name": "sgd", "base_lr": 0.5, "weight_decay": 5e-4, "momentum": 0.9, "warmup": 0.02},
            description="SimCLR (Chen et al. 2020): contrastive NT-Xent loss between two augmented views",
        )
    )
    try:  # methods added by easyssl.methods_zoo register themselves on import
        import easyssl.methods_zoo  # noqa: F401
    except ModuleNotFoundError as error:
        if error.name != "easyssl.methods_zoo":
            raise
    from easyssl.transforms.batched import batched_like

    for method in _METHODS.values():  # the fast path for every method whose views have a batched counterpart
        if method.batch_transform is None:
            try:
                method.batch_transform = batched_like(method.transform)
            except TypeError:
                pass
