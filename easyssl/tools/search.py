"""Exact cosine similarity search over embeddings (near-duplicates: :mod:`easyssl.tools.duplicates`).

Embeddings are float arrays of shape ``(N, D)`` (numpy arrays or torch
tensors), one row per image. Everything here is *exact* (no approximate
index) and memory-bounded: queries and database are both processed in chunks,
so even a 1,000,000 x 512 database never produces more than roughly
``chunk_size x chunk_size`` similarity scores at once.

Example:
    >>> import numpy as np
    >>> from easyssl import nearest_neighbors
    >>> emb = np.random.default_rng(0).normal(size=(1000, 128)).astype("float32")
    >>> idx, sim = nearest_neighbors(emb, emb[:5], k=3)
    >>> idx[:, 0].tolist()  # every query finds itself first
    [0, 1, 2, 3, 4]
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch

from easyssl.tools.arrays import (
    ArrayLike,
    DeviceLike,
    as_matrix,
    check_chunk_size,
    check_int,
    drop_rows,
    matching_rows,
    normalize_rows,
    own_rows,
    resolve_device,
    rows_to_torch,
)

__all__ = ["nearest_neighbors"]

#: Memory budget (bytes) for one block of float32 similarity scores when
#: ``chunk_size`` is not given (~256 MB, i.e. an 8192 x 8192 block).
SCORE_BUDGET_BYTES = 256 * 1024 * 1024
#: With ``use_faiss=None``, faiss is used automatically above this many rows.
FAISS_AUTO_MIN_ROWS = 100_000
#: The normalised database is kept on the device between query chunks when it
#: is at most this large; larger databases are re-normalised chunk by chunk.
_DB_CACHE_BYTES = 1024 * 1024 * 1024

_FAISS_HINT = 'pip install faiss-cpu  (or: pip install "easyssl[faiss]")'


def _pick_chunks(num_queries: int, num_db: int, chunk_size: Optional[int]) -> tuple[int, int]:
    """(query_chunk, database_chunk) such that one score block fits the budget."""
    if chunk_size is not None:
        return min(chunk_size, num_queries), min(chunk_size, num_db)
    budget = SCORE_BUDGET_BYTES // 4  # float32 scores
    q_chunk = min(num_queries, math.isqrt(budget))
    db_chunk = min(num_db, max(1, budget // q_chunk))
    return q_chunk, db_chunk


def _faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- #
# Torch search
# --------------------------------------------------------------------------- #
def _score_block(queries: torch.Tensor, database: torch.Tensor) -> torch.Tensor:
    """Cosine scores of one (query chunk, database chunk) block (rows pre-normalised)."""
    return queries @ database.T


def _sort_candidates(vals: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row by decreasing value, ties by increasing index (indices unique per row)."""
    idx, perm = torch.sort(idx, dim=1)
    vals = vals.gather(1, perm)
    vals, perm = torch.sort(vals, dim=1, descending=True, stable=True)
    return vals, idx.gather(1, perm)


def _block_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of each row with ties broken by lower column index."""
    vals, idx = torch.topk(scores, k, dim=1, largest=True, sorted=True)
    # torch.topk picks arbitrarily among values tied with the k-th one. Rows
    # where such ties straddle the cut are redone with a stable full sort.
    ambiguous = (scores >= vals[:, -1:]).sum(dim=1) > k
    if bool(ambiguous.any()):
        rows = torch.nonzero(ambiguous).squeeze(1)
        sv, si = torch.sort(scores[rows], dim=1, descending=True, stable=True)
        vals[rows] = sv[:, :k]
        idx[rows] = si[:, :k]
    return _sort_candidates(vals, idx)


def _search_torch(
    database: ArrayLike,
    queries: ArrayLike,
    k: int,
    exclude_self: bool,
    chunk_size: Optional[int],
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    num_db, num_q = database.shape[0], queries.shape[0]
    q_chunk, db_chunk = _pick_chunks(num_q, num_db, chunk_size)
    db_starts = list(range(0, num_db, db_chunk))

    cached_db: Optional[list[torch.Tensor]] = None
    if num_db * database.shape[1] * 4 <= _DB_CACHE_BYTES:
        cached_db = [
            normalize_rows(rows_to_torch(database, s, min(s + db_chunk, num_db), device, "embeddings"))
            for s in db_starts
        ]

    out_idx = np.empty((num_q, k), dtype=np.int64)
    out_sim = np.empty((num_q, k), dtype=np.float32)
    with torch.no_grad():
        for q0 in range(0, num_q, q_chunk):
            q1 = min(q0 + q_chunk, num_q)
            q = normalize_rows(rows_to_torch(queries, q0, q1, device, "queries"))
            best_val: Optional[torch.Tensor] = None
            best_idx: Optional[torch.Tensor] = None
            for c, d0 in enumerate(db_starts):
                d1 = min(d0 + db_chunk, num_db)
                if cached_db is not None:
                    db = cached_db[c]
                else:
                    db = normalize_rows(rows_to_torch(database, d0, d1, device, "embeddings"))
                scores = _score_block(q, db)
                if exclude_self:
                    lo, hi = max(q0, d0), min(q1, d1)
                    if lo < hi:  # this block contains some (i, i) pairs
                        rows = torch.arange(lo - q0, hi - q0, device=device)
                        scores[rows, rows + (q0 - d0)] = float("-inf")
                vals, idx = _block_topk(scores, min(k, d1 - d0))
                del scores
                idx = idx + d0
                if best_val is None:
                    best_val, best_idx = vals, idx
                else:
                    # Earlier chunks hold lower indices and both lists are sorted
                    # by (-similarity, index), so a stable sort keeps tie order.
                    vals = torch.cat([best_val, vals], dim=1)
                    idx = torch.cat([best_idx, idx], dim=1)
                    vals, perm = torch.sort(vals, dim=1, descending=True, stable=True)
                    best_val = vals[:, :k]
                    best_idx = idx.gather(1, perm[:, :k])
            out_idx[q0:q1] = best_idx.cpu().numpy()
            out_sim[q0:q1] = best_val.cpu().numpy()
    return out_idx, out_sim


# --------------------------------------------------------------------------- #
# faiss search
# --------------------------------------------------------------------------- #
def _normalized_numpy(x: ArrayLike, start: int, stop: int, name: str) -> np.ndarray:
    t = normalize_rows(rows_to_torch(x, start, stop, torch.device("cpu"), name))
    return np.ascontiguousarray(t.numpy(), dtype=np.float32)


def _search_faiss(
    database: ArrayLike,
    queries: ArrayLike,
    k: int,
    exclude_self: bool,
    chunk_size: Optional[int],
) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    num_db, dim = database.shape
    num_q = queries.shape[0]
    q_chunk, db_chunk = _pick_chunks(num_q, num_db, chunk_size)
    index = faiss.IndexFlatIP(dim)
    for s in range(0, num_db, db_chunk):
        index.add(_normalized_numpy(database, s, min(s + db_chunk, num_db), "embeddings"))

    kk = min(k + 1, num_db) if exclude_self else k
    out_idx = np.empty((num_q, k), dtype=np.int64)
    out_sim = np.empty((num_q, k), dtype=np.float32)
    for q0 in range(0, num_q, q_chunk):
        q1 = min(q0 + q_chunk, num_q)
        sims, ids = index.search(_normalized_numpy(queries, q0, q1, "queries"), kk)
        for r in range(q1 - q0):
            row_ids, row_sims = ids[r].astype(np.int64), sims[r].astype(np.float32)
            if exclude_self:
                keep = row_ids != q0 + r
                if keep.all():
                    keep[-1] = False
                row_ids, row_sims = row_ids[keep], row_sims[keep]
            order = np.lexsort((row_ids, -row_sims))  # similarity desc, index asc
            out_idx[q0 + r] = row_ids[order][:k]
            out_sim[q0 + r] = row_sims[order][:k]
    return out_idx, out_sim


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #
def nearest_neighbors(
    embeddings: ArrayLike,
    queries: Optional[ArrayLike],
    k: int = 10,
    *,
    chunk_size: Optional[int] = None,
    device: DeviceLike = None,
    exclude_self: bool = False,
    query_indices: Optional[Sequence[int]] = None,
    use_faiss: Optional[bool] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k-nearest-neighbour search by cosine similarity.

    Rows of both arrays are L2-normalised (all-zero rows get similarity 0 to
    everything, never NaN) and compared with a matrix product in torch.
    Queries *and* database are processed in chunks; a running top-k per query
    is merged across database chunks, so memory stays bounded by about
    ``chunk_size x chunk_size`` float32 scores however large the database is.

    Args:
        embeddings: Database of shape ``(N, D)`` (numpy array or torch tensor).
        queries: Query vectors of shape ``(Q, D)``. ``None`` means "the
            database itself" (all-vs-all search).
        k: Number of neighbours per query, ``1 <= k <= N`` (``N - 1`` with
            ``exclude_self``).
        chunk_size: Rows per query chunk and per database chunk. ``None``
            picks chunks so one score block is ~256 MB.
        device: Torch device for the computation (e.g. ``"cuda"``, ``"cpu"``);
            default CUDA when available, else CPU.
        exclude_self: Leave each query's own row out of its results, so
            ``nearest_neighbors(emb, emb[[0, 500]], k=5, exclude_self=True)`` gives
            five *other* rows. Which row is a query's own: ``query_indices`` when
            given; row ``i`` when ``queries`` is ``None`` or the very ``embeddings``
            object (all-vs-all; identical rows elsewhere stay neighbours); otherwise
            every database row exactly equal to the query (all its values), so an
            exact copy of a query elsewhere in the database is left out too, and a
            query found nowhere keeps all ``k`` neighbours.
        query_indices: With ``exclude_self``, the database row of each query
            (``-1``: not in the database), e.g. ``[0, 500]`` for ``emb[[0, 500]]``;
            faster than the exact-match search on a large database.
        use_faiss: ``True`` forces a faiss ``IndexFlatIP`` on normalised
            float32 vectors (exact too; ties at the k-th place may resolve
            differently); ``False`` forces torch. ``None`` uses faiss when it
            is installed, the database has more than 100,000 rows and the
            computation would run on CPU (torch on a GPU is faster).

    Returns:
        ``(indices, similarities)``: int64 array of shape ``(Q, k)`` with
        database row indices and float32 array ``(Q, k)`` of cosine
        similarities, each row sorted by decreasing similarity with ties
        broken by lower index (deterministic).

    Raises:
        ValueError: Bad shapes, non-finite values, ``k`` out of range, or
            ``query_indices`` of the wrong length or range, or without ``exclude_self``.
        ImportError: ``use_faiss=True`` but faiss is not installed.

    Example:
        >>> emb = np.eye(4, dtype=np.float32)
        >>> emb[3] = [1, 1, 0, 0]
        >>> idx, sim = nearest_neighbors(emb, None, k=2, exclude_self=True)
        >>> idx[0].tolist(), round(float(sim[0, 0]), 3)
        ([3, 1], 0.707)
    """
    all_vs_all = queries is None or queries is embeddings
    embeddings = as_matrix(embeddings, "embeddings")
    queries = embeddings if all_vs_all else as_matrix(queries, "queries")
    num_db, dim = embeddings.shape
    if queries.shape[1] != dim:
        raise ValueError(
            f"queries must have the same dimension as embeddings ({dim}), got shape {tuple(queries.shape)}"
        )
    excluded: Optional[list[list[int]]] = None  # rows to leave out per query, when not simply row i
    if query_indices is not None:
        if not exclude_self:
            raise ValueError("query_indices only says which rows exclude_self=True leaves out: pass exclude_self=True")
        excluded = own_rows(query_indices, queries.shape[0], num_db)
    elif exclude_self and not all_vs_all:
        excluded = matching_rows(embeddings, queries)
    if exclude_self and excluded is None:
        if num_db < 2:
            raise ValueError("exclude_self=True needs at least 2 embeddings, got 1")
        k = check_int(k, "k", 1, num_db - 1, " (the number of embeddings minus one, since exclude_self=True)")
    else:
        most = max((len(r) for r in excluded), default=0) if excluded else 0
        what = " (the number of embeddings)" if not most else f" (the number of embeddings minus the {most} row(s) left out)"
        if num_db - most < 1:
            raise ValueError(f"exclude_self=True leaves no embeddings for a query: all {num_db} rows equal it")
        k = check_int(k, "k", 1, num_db - most, what)
    chunk_size = check_chunk_size(chunk_size)
    if use_faiss not in (None, True, False):
        raise ValueError(f"use_faiss must be True, False or None, got {use_faiss!r}")

    torch_device = resolve_device(device)
    if use_faiss is None:
        use_faiss = num_db > FAISS_AUTO_MIN_ROWS and torch_device.type == "cpu" and _faiss_available()
    if use_faiss and not _faiss_available():
        raise ImportError(f"use_faiss=True requires the faiss package: {_FAISS_HINT}")
    positional = exclude_self and excluded is None
    kk = k if excluded is None else min(num_db, k + max((len(r) for r in excluded), default=0))
    if use_faiss:
        idx, sim = _search_faiss(embeddings, queries, kk, positional, chunk_size)
    else:
        idx, sim = _search_torch(embeddings, queries, kk, positional, chunk_size, torch_device)
    return (idx, sim) if excluded is None else drop_rows(idx, sim, excluded, k)
