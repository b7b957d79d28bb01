"""Transfer: hand the pretrained backbone to plain torchvision (classification, detection...).

* :func:`export_backbone` writes the backbone's weights to a file. With
  ``format="torchvision"`` (default) the file is a plain ``state_dict`` that the matching
  torchvision constructor loads with ``strict=True``::

      model = torchvision.models.resnet18()
      model.load_state_dict(torch.load("backbone.pth"))
      model.fc = torch.nn.Linear(model.fc.in_features, num_classes)   # the saved fc is untrained

  It also holds an ``fc.weight``/``fc.bias`` pair, freshly initialised exactly as
  torchvision does, only so that strict loading works: replace ``fc`` by your own head.
  With ``format="easyssl"`` the file holds the backbone's ``state_dict`` and the
  arguments that rebuild it (:func:`load_backbone`), which works for every easyssl
  backbone (any width, ViTs...).
* :func:`torchvision_model` returns the torchvision ResNet with the weights loaded, the
  small-image stem swapped in when the model was trained on small images, and an optional
  new classifier size.

Only width-1 ResNets exist in torchvision. A model trained on images of 64 px or less
uses the small-image stem (a 3x3 stride-1 ``conv1`` and no max-pool); torchvision's
constructors build the 7x7 stem, so before ``load_state_dict`` do::

    model.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = torch.nn.Identity()

(:func:`torchvision_model` does it for you).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from easyssl.inference import load_model
from easyssl.methods import BACKBONE_KEYS, get_method
from easyssl.nn import RESNETS, ResNet, backbone as build_backbone
from easyssl.runtime.checkpoint import safe_load
from easyssl.runtime.files import atomic_save, atomic_write_bytes
from easyssl.tools.safetensors_io import is_safetensors_file, read_safetensors, safetensors_bytes

__all__ = ["export_backbone", "torchvision_model", "load_backbone", "backbone_from_checkpoint"]

#: Value of the ``"format"`` key of files written with ``format="easyssl"``.
BACKBONE_FORMAT = "easyssl-backbone-v1"
_FORMATS = ("torchvision", "easyssl", "safetensors")
_TORCHVISION_NAMES = {name: name.replace("-", "") for name in RESNETS}  # "resnet-18" -> "resnet18"


def backbone_from_checkpoint(checkpoint: Any) -> tuple[nn.Module, dict[str, Any]]:
    """The backbone of an easyssl checkpoint (or model) and the arguments that rebuild it.

    Args:
        checkpoint: Path of a ``.ckpt`` file from :func:`easyssl.train_embedding_model`, an
            :class:`~easyssl.models.SSLModel` (its ``backbone`` is used) or a backbone
            module such as ``easyssl.backbone("resnet-18")``.

    Returns:
        ``(backbone, args)`` where ``easyssl.models.backbone(**args)`` builds a module of the
        same shape (``args`` is ``None``-free; it is ``{}`` when unknown, e.g. for a
        hand-made module that is not an easyssl ResNet).
    """
    if isinstance(checkpoint, (str, os.PathLike)):
        model, config = load_model(checkpoint)
        # The backbone's settings exactly as easyssl.methods.build_model passes them.
        model_cfg = {**get_method(config["method"]).model_defaults, **config["model"]}
        args = {key: model_cfg[key] for key in BACKBONE_KEYS if key in model_cfg}
        args["name"] = args.pop("backbone", "resnet-18")
        args["input_size"] = int(config["collate"]["input_size"])
        return model.backbone.eval(), args
    if isinstance(checkpoint, nn.Module):
        net = checkpoint.backbone if hasattr(checkpoint, "backbone") and isinstance(checkpoint.backbone, nn.Module) else checkpoint
        return net, _resnet_args(net) if isinstance(net, ResNet) else {}
    raise TypeError(
        f"checkpoint must be the path of an easyssl .ckpt file, an easyssl model or a backbone, got {type(checkpoint).__name__}"
    )


def _resnet_args(net: ResNet) -> dict[str, Any]:
    """``backbone(**args)`` arguments of an easyssl :class:`ResNet` built by hand."""
    block = type(net.layer1[0])
    layers = [len(getattr(net, f"layer{i}")) for i in range(1, 5)]
    name = next((n for n, (b, l) in RESNETS.items() if b is block and l == layers), None)
    if name is None:
        return {}
    return {"name": name, "width": net.conv1.out_channels / 64, "small_input": bool(net.small_input), "pooled_stages": net.pooled_stages}


def _torchvision_name(net: nn.Module, args: dict[str, Any]) -> str:
    """torchvision's constructor name for ``net``, or a ValueError explaining why there is none."""
    name = str(args.get("name", ""))
    if not isinstance(net, ResNet) or not args:
        raise ValueError(
            f"torchvision has no model matching the backbone {name or type(net).__name__!r}: only easyssl's "
            "resnet-18/34/50/101/152 export to torchvision; use format='easyssl' (rebuild it with "
            "easyssl.load_backbone)"
        )
    key = next((k for k in _TORCHVISION_NAMES if k.replace("-", "") == name.lower().replace("-", "").replace("_", "")), None)
    if key is None:
        raise ValueError(f"torchvision has no model for backbone {name!r}; use format='easyssl'")
    if net.conv1.out_channels != 64:
        raise ValueError(
            f"this {key} has width {net.conv1.out_channels / 64:g} (first layer: {net.conv1.out_channels} channels); "
            f"torchvision only has width-1 ResNets, so torchvision.models.{_TORCHVISION_NAMES[key]}() cannot hold "
            "these weights. Use format='easyssl' (rebuild with easyssl.load_backbone), or train with "
            "model={'width': 1.0} (easyssl picks width 0.5 on a CPU for small images)"
        )
    if net.conv1.in_channels != 3:
        raise ValueError(f"torchvision's ResNets take 3-channel images, this backbone takes {net.conv1.in_channels}; use format='easyssl'")
    return _TORCHVISION_NAMES[key]


def _torchvision_state_dict(net: ResNet) -> "OrderedDict[str, torch.Tensor]":
    state = OrderedDict((k, v.detach().clone().cpu()) for k, v in net.state_dict().items())
    fc = nn.Linear(net.num_features, 1000)  # torchvision's fc: nn.Linear's default init, 1000 classes
    state["fc.weight"] = fc.weight.detach().clone()
    state["fc.bias"] = fc.bias.detach().clone()
    return state


def export_backbone(checkpoint: Any, path: str | os.PathLike, format: str = "torchvision") -> str:
    """Write the pretrained backbone's weights to ``path`` and return the path.

    Args:
        checkpoint: Path of an easyssl ``.ckpt`` file (or an easyssl model/backbone module).
        path: Output file, e.g. ``"backbone.pth"``; parent folders are created.
        format: ``"torchvision"``: a plain ``state_dict`` for ``torchvision.models.resnet18()``
            (resnet34/50/101/152 likewise) that loads with ``strict=True``; its ``fc`` layer
            is freshly initialised (untrained) and only there so strict loading works.
            Models trained on small images (<= 64 px) have the small-image stem: replace
            ``model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)`` and
            ``model.maxpool = nn.Identity()`` before loading, or use :func:`torchvision_model`.
            ``"easyssl"``: ``{"format", "args", "state_dict", "num_features"}``, for any
            backbone; :func:`load_backbone` rebuilds it (``easyssl.models.backbone(**args)``).
            ``"safetensors"``: the same content as a ``.safetensors`` file (the weights as
            tensors, the rest as JSON metadata), the format model hubs expect; needs the
            ``safetensors`` package (``pip install easyssl[safetensors]``).
            The file is written atomically (temporary file, fsync, rename).

    Raises:
        ValueError: ``format="torchvision"`` for a backbone torchvision does not have
            (width other than 1, ViT...): the message suggests ``format="easyssl"``; or
            an unknown ``format``.
        FileNotFoundError / CheckpointError: ``checkpoint`` is not a readable easyssl checkpoint.

    Example:
        >>> export_backbone("easyssl_runs/x/last.ckpt", "backbone.pth")
        >>> model = torchvision.models.resnet18(); model.load_state_dict(torch.load("backbone.pth"))
    """
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS}, got {format!r}")
    net, args = backbone_from_checkpoint(checkpoint)
    if format == "torchvision":
        _torchvision_name(net, args)
        state: Any = _torchvision_state_dict(net)
    else:  # "easyssl" and "safetensors": the weights and the arguments that rebuild the backbone
        if not args:
            raise ValueError(
                f"cannot tell how to rebuild a {type(net).__name__}: pass an easyssl checkpoint path so the "
                "backbone's name and settings are known"
            )
        state = {
            "format": BACKBONE_FORMAT,
            "args": dict(args),
            "state_dict": OrderedDict((k, v.detach().clone().cpu()) for k, v in net.state_dict().items()),
            "num_features": int(getattr(net, "num_features", 0)),
        }
    if format == "safetensors":
        return atomic_write_bytes(path, safetensors_bytes(state))
    return atomic_save(path, lambda handle: torch.save(state, handle))


def load_backbone(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a backbone saved with ``export_backbone(..., format="easyssl")`` or ``format="safetensors"`` (in eval mode).

    The file is read without running any code from it (``torch.load(..., weights_only=True)``,
    or safetensors, which holds only tensors): a file that asks for anything else is refused
    with :class:`~easyssl.runtime.checkpoint.CheckpointError`.

    Example:
        >>> net = load_backbone("backbone.pt")      # maps (B, 3, H, W) -> (B, net.num_features)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"backbone file {path!r} does not exist")
    if is_safetensors_file(path):
        state = read_safetensors(path, map_location)
    else:
        state = safe_load(path, map_location, what="backbone file")  # never runs code from the file
    if not isinstance(state, dict) or state.get("format") != BACKBONE_FORMAT:
        raise ValueError(
            f"{path!r} was not written by export_backbone(..., format='easyssl'); a torchvision-format file "
            "loads with torchvision.models.resnet18().load_state_dict(torch.load(path))"
        )
    net = build_backbone(**state["args"])
    net.load_state_dict(state["state_dict"])
    return net.eval()


def torchvision_model(checkpoint: Any, num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """The torchvision ResNet (``torchvision.models.resnet18`` ...) holding the pretrained weights.

    The small-image stem (3x3 ``conv1``, no max-pool) is swapped in when the model was
    trained with it, so the result computes exactly the easyssl backbone's features
    (before ``fc``).

    Args:
        checkpoint: Path of an easyssl ``.ckpt`` file (or an easyssl model/backbone module).
        num_classes: Size of a new, untrained ``fc`` classifier (default: torchvision's 1000,
            also untrained). Use ``model.fc = nn.Identity()`` to get the features.
        **kwargs: Passed to the torchvision constructor, e.g.
            ``norm_layer=torchvision.ops.misc.FrozenBatchNorm2d`` for detection.

    Returns:
        The torchvision model, in eval mode.

    Raises:
        ValueError: The backbone has no torchvision counterpart (width other than 1, ViT...).
    """
    import torchvision

    net, args = backbone_from_checkpoint(checkpoint)
    name = _torchvision_name(net, args)
    model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes or 1000, **kwargs)
    if net.small_input:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    state = _torchvision_state_dict(net)
    if num_classes is not None and num_classes != 1000:
        del state["fc.weight"], state["fc.bias"]  # keep the new classifier's fresh weights
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or set(missing) - {"fc.weight", "fc.bias"}:
            raise RuntimeError(f"weights do not fit torchvision's {name}: missing {missing}, unexpected {unexpected}")
    else:
        model.load_state_dict(state)
    return model.eval()
