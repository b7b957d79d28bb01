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
    "drop_rows",
    "matching_rows",
    "normalize_rows",
    "own_rows",
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


def matching_rows(database: ArrayLike, queries: ArrayLike, chunk: int = 65536) -> list[list[int]]:
    """For each query, the database rows exactly equal to it (same values in every column).

    How ``nearest_neighbors(emb, emb[[0, 500]], exclude_self=True)`` recognises its queries
    in the index. One pass over the database in chunks: a row can only equal a query when
    its largest value, smallest value and the position of the largest are the query's (exact
    and independent of summation order), and only such rows are compared value by value.
    """
    def rows(x: ArrayLike, s: int, e: int) -> np.ndarray:
        r = x[s:e]
        r = r.detach().cpu().numpy() if isinstance(r, torch.Tensor) else np.asarray(r)
        return r.astype(np.float64) + 0.0  # + 0.0 makes -0.0 equal 0.0

    def keys(x: np.ndarray) -> list[tuple[float, float, int]]:
        return list(zip(x.max(axis=1).tolist(), x.min(axis=1).tolist(), x.argmax(axis=1).tolist()))

    q = rows(queries, 0, queries.shape[0])
    by_key: dict[tuple[float, float, int], list[int]] = {}
    for i, key in enumerate(keys(q)):
        by_key.setdefault(key, []).append(i)
    q_max = np.unique(q.max(axis=1))
    found: list[list[int]] = [[] for _ in range(q.shape[0])]
    for s in range(0, database.shape[0], chunk):
        d = rows(database, s, min(s + chunk, database.shape[0]))
        candidates = np.flatnonzero(np.isin(d.max(axis=1), q_max))
        for r, key in zip(candidates.tolist(), keys(d[candidates])):
            for i in by_key.get(key, ()):
                if np.array_equal(d[r], q[i]):
                    found[i].append(s + r)
    return found


def own_rows(query_indices: object, num_queries: int, num_db: int) -> list[list[int]]:
    """``query_indices`` (one database row per query, -1 for none) as lists of rows to leave out."""
    try:
        values = [int(v) for v in query_indices]  # type: ignore[union-attr]
        ok = all(float(v) == int(v) for v in query_indices)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"query_indices must be a sequence of row numbers, got {query_indices!r}") from None
    if not ok or len(values) != num_queries:
        raise ValueError(f"query_indices must hold one integer row number per query ({num_queries}), got {len(values)} values")
    bad = [v for v in values if not -1 <= v < num_db]
    if bad:
        raise ValueError(f"query_indices must be rows 0..{num_db - 1} of the embeddings (or -1: not in them), got {bad[0]}")
    return [[v] if v >= 0 else [] for v in values]


def drop_rows(idx: np.ndarray, sim: np.ndarray, excluded: list[list[int]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` results of each row of a search that asked for a few extra, without the rows ``excluded[i]``."""
    out_idx = np.empty((idx.shape[0], k), dtype=idx.dtype)
    out_sim = np.empty((idx.shape[0], k), dtype=sim.dtype)
    for i, rows in enumerate(excluded):
        keep = ~np.isin(idx[i], rows) if rows else np.ones(idx.shape[1], dtype=bool)
        out_idx[i], out_sim[i] = idx[i][keep][:k], sim[i][keep][:k]
    return out_idx, out_sim
