"""Checking and converting the embedding arrays that every tool takes (numpy arrays or torch tensors).

Shared by :mod:`~easyssl.tools.search`, :mod:`~easyssl.tools.selection` and
:mod:`~easyssl.tools.visualize`; each function raises a ``ValueError`` that names the argument.
"""

from __future__ import annotations

from numbers import Integral
from typing import Optional, Union

import numpy as np
import torch

from easyssl.runtime.device import resolve_device

__all__ = [
    "ArrayLike",
    "DeviceLike",
    "as_matrix",
    "check_chunk_size",
    "check_int",
    "normalize_rows",
    "resolve_device",
    "rows_to_torch",
]

ArrayLike = Union[np.ndarray, torch.Tensor]
DeviceLike = Union[str, torch.device, None]


def as_matrix(x: object, name: str) -> ArrayLike:
    """Validate that ``x`` is a non-empty real 2-D array; return it without copying."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.is_complex() or x.dtype == torch.bool:
            raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    else:
        try:
            x = np.asarray(x)
        except Exception as exc:  # ragged lists etc.
            raise ValueError(f"{name} must be a 2-D array of shape (N, D): {exc}") from exc
        if x.dtype.kind not in "fiu":
            raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (N, D), got shape {tuple(x.shape)}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must have at least one row and one column, got shape {tuple(x.shape)}")
    return x


def rows_to_torch(x: ArrayLike, start: int, stop: int, device: torch.device, name: str) -> torch.Tensor:
    """Rows ``start:stop`` of ``x`` as a float32 tensor on ``device`` (checked finite)."""
    if isinstance(x, torch.Tensor):
        t = x[start:stop].to(device=device, dtype=torch.float32)
    else:
        t = torch.from_numpy(np.array(x[start:stop], dtype=np.float32, copy=True)).to(device)
    if not bool(torch.isfinite(t).all()):
        bad = int(start + torch.nonzero(~torch.isfinite(t).all(dim=1))[0, 0])
        raise ValueError(f"{name} contains NaN or infinite values (first in row {bad})")
    return t


def normalize_rows(t: torch.Tensor) -> torch.Tensor:
    """L2-normalise rows; all-zero rows stay zero (so their similarities are 0)."""
    norms = torch.linalg.vector_norm(t, dim=1, keepdim=True)
    return t / torch.where(norms > 0, norms, torch.ones_like(norms))


def check_int(value: object, name: str, low: int, high: int, what: str = "") -> int:
    """``value`` as an int in ``[low, high]``, or a ValueError saying what is allowed (``what`` explains ``high``)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer between {low} and {high}{what}, got {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}{what}, got {value}")
    return value


def check_chunk_size(chunk_size: object) -> Optional[int]:
    """A positive int or None (the tool picks its chunks)."""
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, Integral) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return int(chunk_size)
