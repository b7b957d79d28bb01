"""What a method is: the :class:`Method` record each ``easyssl/methods/<name>.py`` fills in as ``METHOD``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from easyssl.nn.base import SSLModel

#: Model-config keys that configure the backbone rather than the method's heads.
BACKBONE_KEYS = ("backbone", "width", "small_input", "pooled_stages")
#: Model-config keys of the weights a new run starts from (``model={"weights": "file.pth"}``, see
#: :mod:`easyssl.nn.weights`): read when training starts, never when a checkpoint is loaded or resumed.
WEIGHTS_KEYS = ("weights", "weights_prefix")
#: Model-config keys of how the trained model embeds, common to every method: ``embedding_views``, the test-time
#: views its embeddings average (:mod:`easyssl.nn.embedding_views`), set on the model after it is built.
EMBEDDING_KEYS = ("embedding_views",)


@dataclass(frozen=True)
class Method:
    """How to build one SSL method (frozen: nothing changes a method after its module defines it).

    Attributes:
        name: The method's name (``"simclr"``).
        model: ``model(backbone, **model_kwargs) -> SSLModel``.
        criterion: ``criterion(**criterion_kwargs) -> nn.Module``.
        transform: ``transform(input_size=..., normalize=..., **collate_kwargs)`` -> the
            per-image view transform (returns a list of views).
        model_defaults: Default keyword arguments of ``model`` (heads' sizes...).
        criterion_defaults: Default keyword arguments of ``criterion``. A loss that can use the
            global batch under ``torch.distributed`` has its ``gather_distributed`` (SwaV:
            ``sinkhorn_gather_distributed``) here as ``"auto"``: on when training is distributed.
        collate_defaults: Default keyword arguments of ``transform`` (besides input_size, normalize).
        optimizer_defaults: ``name``, ``base_lr`` (learning rate for a batch of 256, scaled
            linearly with the batch size), ``weight_decay``, ``warmup``, and ``momentum`` for
            the optimisers that have one (SGD, LARS; not AdamW).
        batch_transform: ``batch_transform(input_size=..., normalize=..., **collate_kwargs)``
            returning a module that makes the views from a ``uint8`` batch on the device (the
            fast path), or None for a method without one. Built-in methods set it explicitly.
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
