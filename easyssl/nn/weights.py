"""Starting a backbone from existing weights: ``model={"weights": ...}`` of ``train_embedding_model``.

``weights`` is

* the path of a file: a plain ``state_dict``, a full easyssl checkpoint (its backbone is
  taken), a backbone exported with :func:`easyssl.export_backbone` (either format), or a
  checkpoint of another framework holding a ``state_dict`` / ``model`` dict;
* for ``"torchvision/<name>"`` backbones, one of torchvision's weight names
  (``"IMAGENET1K_V1"``, ``"DEFAULT"``...), read from the torch hub cache (``torch.hub.get_dir()``)
  when it is there. easyssl never downloads: a weight name not in the cache is an error that
  says how to download it yourself.

Files are read with ``torch.load(..., weights_only=True)``: tensors and plain containers only,
never code. The keys must match the backbone's exactly (``strict``), after dropping a prefix:
``weights_prefix="auto"`` strips the usual ones (``backbone.``, ``module.`` of DataParallel/DDP,
``model.``, ``_orig_mod.`` of ``torch.compile``, ``encoder.``) as long as that makes more keys
match, and keeps only the keys under it (a full checkpoint's heads are left out); a string strips
exactly that prefix. A mismatch raises ``ValueError`` listing the missing and unexpected keys;
only the keys of a classifier easyssl removed from a torchvision model (``fc.``...) are
ignored, and said so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlparse

import torch
from torch import nn

from easyssl.nn.external import ExternalBackbone
from easyssl.runtime.checkpoint import CHECKPOINT_FORMAT, safe_load

__all__ = ["WEIGHT_PREFIXES", "WeightsReport", "cached_torchvision_weights", "load_backbone_weights", "read_state_dict"]

#: Prefixes ``weights_prefix="auto"`` may strip, tried in this order.
WEIGHT_PREFIXES = ("backbone.", "module.", "model.", "_orig_mod.", "encoder.")
_SHOWN = 8  # keys named in an error, per list


@dataclass
class WeightsReport:
    """What :func:`load_backbone_weights` did: the source, the tensors loaded, the prefix stripped,
    and the keys left out (outside the prefix, or of a removed classifier)."""

    source: str
    loaded: int
    prefix: str = ""
    ignored: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"loaded {self.loaded} tensors from {self.source}"
        if self.prefix:
            text += f" (prefix {self.prefix!r} stripped)"
        if self.ignored:
            text += f"; ignored {len(self.ignored)} keys ({_names(self.ignored)})"
        return text


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return shown + (f", ... ({len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else "")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, read with ``weights_only=True`` (``.safetensors`` files with the safetensors
    package): a state dict as is; the backbone of an easyssl checkpoint (its ``model`` keys under ``backbone.``);
    the ``state_dict`` of an exported backbone or of a Lightning-style checkpoint; a ``model`` dict of another
    framework's checkpoint."""
    path = os.fspath(path)
    if path.lower().endswith(".safetensors"):  # model hubs' format (timm's weights, export_backbone(format="safetensors"))
        try:
            from safetensors.torch import load_file
        except ImportError as error:
            raise ImportError(f"{path!r} is a .safetensors file: pip install safetensors to read it") from error
        return dict(load_file(path, device="cpu"))
    try:
        obj = safe_load(path, what="weights file")  # torch.load(weights_only=True), with easyssl's own older files allowed
    except Exception as error:  # pickled code, a truncated file, not a torch file
        raise ValueError(
            f"weights file {path!r} cannot be read as tensors (torch.load with weights_only=True): {error}. "
            "Save a plain state dict: torch.save(model.state_dict(), path)"
        ) from error
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT and isinstance(obj.get("model"), dict):
        obj = {k[len("backbone."):]: v for k, v in obj["model"].items() if k.startswith("backbone.")}
    else:
        for key in ("state_dict", "model"):
            if isinstance(obj, dict) and isinstance(obj.get(key), dict) and not isinstance(obj.get(key), torch.Tensor):
                inner = obj[key]
                if inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                    obj = inner
                    break
    if not isinstance(obj, dict):
        raise ValueError(f"weights file {path!r} holds a {type(obj).__name__}, not a state dict")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ValueError(f"weights file {path!r} holds no tensors (keys: {_names(sorted(map(str, obj)))})")
    return tensors


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _auto_prefix(state: dict[str, torch.Tensor], target: set[str]) -> tuple[dict[str, torch.Tensor], str]:
    """The chain of up to three :data:`WEIGHT_PREFIXES` (``"module.backbone."``...) whose stripping makes the most
    keys match ``target`` (the shortest chain among equals; none when nothing improves)."""
    best = (len(target & set(state)), 0, "", state)
    frontier = [("", state)]
    for depth in range(1, 4):
        grown = []
        for chain, keys in frontier:
            for prefix in WEIGHT_PREFIXES:
                stripped = _strip(keys, prefix)
                if stripped:
                    grown.append((chain + prefix, stripped))
                    match = len(target & set(stripped))
                    if match > best[0]:
                        best = (match, depth, chain + prefix, stripped)
        frontier = grown
    return best[3], best[2]


def cached_torchvision_weights(arch: str, name: str) -> str:
    """The torch hub cache's file of torchvision's weights ``name`` for ``arch``; ``FileNotFoundError`` when it
    is not there, saying how to download it (easyssl itself never downloads)."""
    from torchvision import models

    try:
        enum = models.get_model_weights(arch)
        weights = enum.DEFAULT if name.upper() == "DEFAULT" else enum[name]
    except (KeyError, ValueError) as error:
        known = ", ".join(w.name for w in models.get_model_weights(arch)) if arch in models.list_models() else ""
        raise ValueError(f"torchvision has no weights {name!r} for {arch!r}" + (f"; it has: {known}, DEFAULT" if known else "")) from error
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(weights.url).path))
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"torchvision weights {arch}.{weights.name} are not in the torch hub cache ({path}); easyssl never downloads. "
            f"Download them once yourself: python -c \"import torchvision; torchvision.models.get_model('{arch}', weights='{weights.name}')\" "
            f"(or torch.hub.download_url_to_file('{weights.url}', '{path}')), or pass model={{'weights': 'path/to/file.pth'}}"
        )
    return path


def load_backbone_weights(net: nn.Module, weights: str | os.PathLike, prefix: str | None = "auto") -> WeightsReport:
    """Load ``weights`` (see the module's docstring) into the backbone ``net``, strictly; returns a :class:`WeightsReport`.

    For an :class:`~easyssl.nn.external.ExternalBackbone` the weights go into the wrapped module
    (keys as timm or torchvision name them; a ``model.`` prefix is stripped by ``"auto"``).

    Raises:
        FileNotFoundError: no such file (nor a torchvision weight name in the cache).
        ValueError: the keys or shapes do not match: the message lists the missing and unexpected keys.
    """
    source = os.fspath(weights)
    torchvision_name = isinstance(net, ExternalBackbone) and (net.name or "").startswith("torchvision/")
    if os.path.isfile(source):
        state = read_state_dict(source)
    elif torchvision_name and not os.path.splitext(source)[1] and os.sep not in source:
        source = cached_torchvision_weights(net.name.split("/", 1)[1], source)  # type: ignore[union-attr]
        state = read_state_dict(source)
    else:
        hint = (" (nor is it a torchvision weight name such as 'IMAGENET1K_V1')" if torchvision_name else
                " (torchvision's weight names such as 'IMAGENET1K_V1' go with model={'backbone': 'torchvision/<name>'})")
        raise FileNotFoundError(f"weights file {source!r} does not exist{hint}")
    target_module = net.model if isinstance(net, ExternalBackbone) else net
    target = set(target_module.state_dict())
    kept = len(state)
    if prefix == "auto":
        state, stripped = _auto_prefix(state, target)
    elif prefix:
        stripped, state = prefix, _strip(state, prefix)
        if not state:
            raise ValueError(f"no key of {source!r} starts with weights_prefix {prefix!r}")
    else:
        stripped = ""
    ignored = [f"(outside {stripped!r}: {kept - len(state)} keys)"] if kept > len(state) else []
    head = tuple(getattr(net, "dropped_head", ()))
    removed = sorted(k for k in state if k not in target and head and k.startswith(head))
    state = {k: v for k, v in state.items() if k not in removed}
    missing, unexpected = sorted(target - set(state)), sorted(set(state) - target)
    if missing or unexpected:
        raise ValueError(
            f"the weights in {source!r} do not match the backbone{f' (after stripping {stripped!r})' if stripped else ''}: "
            f"{len(missing)} missing keys ({_names(missing) or 'none'}), {len(unexpected)} unexpected keys ({_names(unexpected) or 'none'}). "
            "Check that model.backbone is the architecture these weights are for; pass model={'weights_prefix': '<prefix.>'} "
            "to strip a prefix of your own"
        )
    reference = target_module.state_dict()
    shapes = [f"{k} {tuple(v.shape)} vs {tuple(reference[k].shape)}" for k, v in state.items() if v.shape != reference[k].shape]
    if shapes:  # the same architecture at another width, stem or size
        raise ValueError(
            f"the weights in {source!r} do not fit the backbone: {len(shapes)} tensors differ in shape (file vs backbone: "
            f"{_names(shapes)}). Check model.width, model.small_input (the stem) and the input size"
        )
    target_module.load_state_dict(state, strict=True)
    return WeightsReport(source, len(state), stripped, ignored + removed)
