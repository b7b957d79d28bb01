"""Backbones from elsewhere: any ``nn.Module``, timm models by name, torchvision models by name.

``train_embedding_model(..., model={"backbone": X})`` takes for ``X``

* an ``nn.Module`` of your own, mapping ``(N, 3, H, W)`` images to ``(N, D)`` vectors or
  ``(N, C, H, W)`` feature maps (pooled);
* ``"timm/<name>"`` (``"timm/resnet18"``, ``"timm/convnext_tiny"``, ``"timm/vit_small_patch16_224"``),
  with the optional ``timm`` extra (``pip install "easyssl[timm]"``): built with
  ``pretrained=False`` (easyssl never downloads weights) and ``num_classes=0``, which makes
  timm return pooled ``(N, D)`` features, ViTs included;
* ``"torchvision/<name>"`` (``"torchvision/resnet50"``, ``"torchvision/convnext_tiny"``,
  ``"torchvision/efficientnet_b0"``), built with ``weights=None`` and its classifier removed.

Each is wrapped in an :class:`ExternalBackbone`, which pools feature maps and sets
``num_features`` from one forward pass at the training input size
(:func:`easyssl.nn.features.feature_dim`), so every method's heads take the right size.
The wrapped module is ``.model``: the wrapper's weights are its weights under ``model.``.

A checkpoint's config stores the backbone as a name: ``"timm/..."`` and ``"torchvision/..."``
rebuild from it alone; a module of your own is stored as ``"custom:<module>.<Class>"``, a
description that cannot rebuild it, and loading such a checkpoint needs the module again
(``embed_images(folder, checkpoint, backbone=MyNet())``, ``load_model(checkpoint, backbone=MyNet())``).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

import torch
from torch import nn

from easyssl.nn.features import feature_dim, pool_features

__all__ = [
    "CUSTOM_PREFIX",
    "EXTERNAL_PREFIXES",
    "ExternalBackbone",
    "custom_backbone_error",
    "describe_backbone",
    "external_backbone",
    "is_external_name",
    "resumed_backbone",
    "timm_backbone",
    "torchvision_backbone",
]

#: Name prefixes of the libraries whose models easyssl builds by name.
EXTERNAL_PREFIXES = ("timm/", "torchvision/")
#: How a checkpoint's config describes a module of the user's own (which no name can rebuild).
CUSTOM_PREFIX = "custom:"
#: Attributes holding the classifier of torchvision's models (ResNets, RegNets: ``fc``; ConvNeXt,
#: EfficientNet, MobileNet, DenseNet, VGG, MaxViT: ``classifier``; ViT: ``heads``; Swin: ``head``).
TORCHVISION_HEADS = ("fc", "classifier", "heads", "head")


class ExternalBackbone(nn.Module):
    """A module from elsewhere as an easyssl backbone: ``(N, 3, H, W) -> (N, num_features)``.

    Args:
        model: The module; ``(N, C, H, W)`` outputs are average-pooled, ``(N, D)`` outputs used as is.
        input_size: Training input size, for the dry forward that finds ``num_features``.
        name: ``"timm/..."`` or ``"torchvision/..."`` when the module was built by name (the
            checkpoint's config then rebuilds it), None for a module of the user's own.
        num_features: Feature size when known; by default found by :func:`~easyssl.nn.features.feature_dim`.
        dropped_head: Prefixes of the state-dict keys of the classifier removed from ``model``
            (``("fc.",)``): a full model's weights file loads into the headless backbone with
            those keys ignored (see :func:`easyssl.nn.weights.load_backbone_weights`).
    """

    def __init__(
        self,
        model: nn.Module,
        input_size: int = 224,
        name: str | None = None,
        num_features: int | None = None,
        dropped_head: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"a backbone must be an nn.Module, got {type(model).__name__}")
        self.model = model
        self.name = name
        self.input_size = int(input_size)
        self.dropped_head = tuple(dropped_head)
        self.num_features = int(num_features) if num_features else feature_dim(model, self.input_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pool_features(self.model(x))

    def extra_repr(self) -> str:
        return f"name={self.name or describe_backbone(self.model)!r}, num_features={self.num_features}"


def is_external_name(name: Any) -> bool:
    """Whether ``name`` is a backbone built outside easyssl's registry: a module, ``"timm/..."``,
    ``"torchvision/..."`` or a checkpoint's ``"custom:..."`` description."""
    if isinstance(name, nn.Module):
        return True
    return isinstance(name, str) and (name.lower().startswith(EXTERNAL_PREFIXES) or name.startswith(CUSTOM_PREFIX))


def describe_backbone(backbone: Any) -> Any:
    """What a config stores for ``backbone``: a name as is, the name of a by-name :class:`ExternalBackbone`,
    ``"custom:<module>.<Class>"`` for any other module (a description: modules are not saved in configs)."""
    if isinstance(backbone, ExternalBackbone) and backbone.name:
        return backbone.name
    if isinstance(backbone, nn.Module):
        inner = backbone.model if isinstance(backbone, ExternalBackbone) else backbone
        return f"{CUSTOM_PREFIX}{type(inner).__module__}.{type(inner).__qualname__}"
    return backbone


def custom_backbone_error(description: str) -> ValueError:
    """The error of a checkpoint whose backbone was a module of the user's own: it says what to pass."""
    return ValueError(
        f"this model was trained with a backbone module of your own ({description}), which a checkpoint cannot rebuild "
        "by name: pass the module (freshly built, the weights come from the checkpoint): "
        "embed_images(folder, checkpoint, backbone=module), load_model(checkpoint, backbone=module), "
        "or resume with train_embedding_model(..., resume=True, model={'backbone': module})"
    )


def external_backbone(name: Any, width: float = 1.0, input_size: int | None = None, **kwargs: Any) -> ExternalBackbone:
    """Build (or wrap) a backbone from outside easyssl's registry: see the module's docstring.

    ``width`` must be 1 (it is a multiplier of easyssl's own ResNets and ViTs); ``small_input``
    means nothing to these models and is ignored.
    """
    kwargs.pop("small_input", None)
    if width not in (None, 1, 1.0, "auto"):
        raise ValueError(f"model width={width!r} applies to easyssl's own backbones (resnet-18, vit-small...), not to {describe_backbone(name)!r}")
    size = int(input_size or 224)
    if isinstance(name, ExternalBackbone):
        return name
    if isinstance(name, nn.Module):
        return ExternalBackbone(name, size)
    if name.startswith(CUSTOM_PREFIX):
        raise custom_backbone_error(name)
    library, _, arch = name.partition("/")
    if library.lower() == "timm":
        return timm_backbone(arch, size, **kwargs)
    return torchvision_backbone(arch, size, **kwargs)


def similar_names(name: str, names: list[str], listing: str) -> str:
    """``"; similar names: a, b"`` (spelled alike, or containing ``name``), else a pointer to ``listing``."""
    key = name.lower()
    close = difflib.get_close_matches(key, names, n=5, cutoff=0.6)
    close += [n for n in names if key in n and n not in close][: 8 - len(close)]
    return f"; similar names: {', '.join(close)}" if close else f"; see {listing}"


def import_timm() -> Any:
    """timm, imported only when a ``"timm/..."`` name is used (an optional extra)."""
    try:
        return importlib.import_module("timm")
    except ImportError as error:
        raise ImportError('"timm/..." backbones need timm: pip install "easyssl[timm]" (or pip install timm)') from error


def timm_backbone(arch: str, input_size: int = 224, **kwargs: Any) -> ExternalBackbone:
    """timm's ``arch`` with ``pretrained=False`` and ``num_classes=0`` (pooled ``(N, D)`` features), wrapped.

    Models that take an image size (ViTs) are built for ``input_size``, with ``dynamic_img_size=True``
    so that the smaller local views of DINO and SwaV go through them too. To start from weights,
    pass ``model={"weights": "file.pth"}`` (easyssl never downloads).
    """
    timm = import_timm()
    if kwargs.pop("pretrained", False):
        raise ValueError("easyssl never downloads weights: build timm models with pretrained=False and pass model={'weights': 'path/to/file'}")
    if not timm.is_model(arch):
        raise ValueError(f"unknown timm model {arch!r}{similar_names(arch, timm.list_models(), 'timm.list_models()')}")
    kwargs = {"num_classes": 0, **kwargs}
    try:  # ViTs: built for the input size, and taking other sizes too (multi-crop methods' smaller local views)
        model = timm.create_model(arch, pretrained=False, img_size=input_size, dynamic_img_size=True, **kwargs)
    except TypeError:  # a model without an image size (convolutional networks)
        model = timm.create_model(arch, pretrained=False, **kwargs)
    return ExternalBackbone(model, input_size, name=f"timm/{arch}")


def torchvision_backbone(arch: str, input_size: int = 224, **kwargs: Any) -> ExternalBackbone:
    """torchvision's ``arch`` built with ``weights=None``, its classifier replaced by ``nn.Identity``, wrapped.

    torchvision's ViTs (``vit_b_16``...) are built for ``input_size`` (a multiple of their patch size).
    Weights: ``model={"weights": "IMAGENET1K_V1"}`` from the torch hub cache, or a file (see
    :func:`easyssl.nn.weights.load_backbone_weights`).
    """
    from torchvision import models  # torchvision is a dependency; imported here to keep nn's import light

    if kwargs.pop("weights", None) is not None:
        raise ValueError("pass torchvision weights as model={'weights': 'IMAGENET1K_V1'}; easyssl loads them from the hub cache only")
    if arch.lower() not in models.list_models():
        raise ValueError(f"unknown torchvision model {arch!r}{similar_names(arch, models.list_models(), 'torchvision.models.list_models()')}")
    arch = arch.lower()
    if arch.startswith("vit_"):
        kwargs.setdefault("image_size", input_size)
    if arch in ("inception_v3", "googlenet"):
        kwargs.setdefault("aux_logits", False)  # their auxiliary outputs are not features
        kwargs.setdefault("init_weights", True)
    try:
        model = models.get_model(arch, weights=None, **kwargs)
    except (AssertionError, ValueError) as error:
        raise ValueError(f"torchvision/{arch} cannot be built for {input_size} px inputs: {error}") from error
    dropped = remove_classifier(model)
    return ExternalBackbone(model, input_size, name=f"torchvision/{arch}", dropped_head=dropped)


def remove_classifier(model: nn.Module) -> tuple[str, ...]:
    """Replace the classifier of a torchvision model by ``nn.Identity`` (in place); returns the state-dict
    prefixes of what was removed.

    A ``Linear`` head goes whole; in a ``Sequential`` head the last ``Linear`` goes (ConvNeXt keeps its
    LayerNorm, MobileNetV3 and VGG their hidden layers, whose outputs are the usual features); a head
    without a ``Linear`` (SqueezeNet's convolution) becomes the average pool that ended it.
    """
    for attr in TORCHVISION_HEADS:
        head = getattr(model, attr, None)
        if not isinstance(head, nn.Module) or isinstance(head, nn.Identity):
            continue
        if isinstance(head, nn.Sequential):
            linear = [child for child, layer in head.named_children() if isinstance(layer, nn.Linear)]
            if linear:  # by name: ViT's head is Sequential(OrderedDict(head=Linear))
                setattr(head, linear[-1], nn.Identity())
                return (f"{attr}.{linear[-1]}.",)
            setattr(model, attr, nn.AdaptiveAvgPool2d(1))  # SqueezeNet: its forward flattens what the head returns
            return (f"{attr}.",)
        setattr(model, attr, nn.Identity())
        return (f"{attr}.",)
    return ()


def resumed_backbone(saved: Any, given: Any) -> Any:
    """The backbone a resumed run rebuilds: the checkpoint's, except that a module passed again
    (``model={"backbone": module}``) stands in for the checkpoint's ``"custom:..."`` description."""
    if isinstance(given, nn.Module) and isinstance(saved, str) and saved.startswith(CUSTOM_PREFIX):
        return given
    return saved
