"""Backbones as ``.safetensors`` files: tensors and a JSON header, nothing that could run code when loaded.

Model hubs expect this format, and it cannot hold code at all, so it is the safest way to
share weights. The ``safetensors`` package is an optional extra
(``pip install easyssl[safetensors]``), imported only when such a file is written or read.
A file holds the backbone's ``state_dict``; its metadata (strings only, as the format
requires) hold easyssl's ``format`` marker, the ``args`` that rebuild the backbone (as JSON)
and ``num_features``.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

import torch

__all__ = ["is_safetensors_file", "read_safetensors", "safetensors_bytes"]


def _module() -> Any:
    try:
        import safetensors.torch
    except ImportError as error:
        raise ImportError(
            "format='safetensors' needs the safetensors package: pip install 'easyssl[safetensors]' (or pip install safetensors)",
            name="safetensors",
        ) from error
    return safetensors.torch


def safetensors_bytes(state: dict[str, Any]) -> bytes:
    """The bytes of a ``.safetensors`` file holding ``state`` (``{"format", "args", "state_dict", "num_features"}``)."""
    tensors = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in state["state_dict"].items()}
    metadata = {"format": str(state["format"]), "args": json.dumps(state["args"]), "num_features": str(int(state["num_features"]))}
    return _module().save(tensors, metadata=metadata)


def is_safetensors_file(path: str | os.PathLike) -> bool:
    """True when ``path`` starts like a safetensors file (an 8-byte header length, then a JSON object)."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= os.path.getsize(path) - 8


def read_safetensors(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The ``{"format", "args", "state_dict", "num_features"}`` dict of a file written by :func:`safetensors_bytes`."""
    module = _module()
    path = os.fspath(path)
    from safetensors import safe_open

    with safe_open(path, framework="pt", device="cpu") as handle:
        metadata = handle.metadata() or {}
    tensors = module.load_file(path, device="cpu")
    device = torch.device(map_location) if isinstance(map_location, str) else map_location
    try:
        args = json.loads(metadata.get("args", "{}"))
    except ValueError as error:
        raise ValueError(f"{path!r} has malformed easyssl metadata (args is not JSON: {error})") from None
    return {
        "format": metadata.get("format"),
        "args": args,
        "state_dict": {name: tensor.to(device) for name, tensor in tensors.items()},
        "num_features": int(metadata.get("num_features", "0") or 0),
    }
