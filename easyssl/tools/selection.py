"""Choosing which images to look at or label next, from their embeddings.

* :func:`select_diverse` -- k-center greedy coreset (Sener & Savarese, 2018):
  a small subset that covers the whole embedding space.
* :func:`uncertainty_scores` -- per-item uncertainty from model predictions.
* :func:`select_for_labeling` -- active learning: trade off uncertainty and
  diversity when picking the next batch to annotate.

Everything is deterministic (ties go to the lowest index) and uses O(N)
extra memory besides the embeddings themselves.

Example:
    >>> import numpy as np
    >>> from easyssl import select_diverse
    >>> emb = np.random.default_rng(0).normal(size=(500, 64)).astype("float32")
    >>> picked = select_diverse(emb, 10)
    >>> picked.shape, len(set(picked.tolist()))
    ((10,), 10)
"""

from __future__ import annotations

from numbers import Real
from typing import Optional, Sequence, Union

import numpy as np
import torch

from easyssl.tools.arrays import (
    ArrayLike,
    DeviceLike,
    as_matrix,
    check_chunk_size,
    check_int,
    normalize_rows,
    resolve_device,
    rows_to_torch,
)

__all__ = ["select_diverse", "uncertainty_scores", "select_for_labeling"]

_METRICS = ("cosine", "euclidean")
_UNCERTAINTY_METHODS = ("entropy", "margin", "least_confidence")
# Elements of temporary (rows x D) or (rows x refs) blocks when chunk_size is None.
_BLOCK_ELEMENTS = 16 * 1024 * 1024


def _load_embeddings(embeddings: ArrayLike, metric: str, device: torch.device) -> torch.Tensor:
    """Whole embedding matrix as float32 on ``device``; rows normalised for cosine."""
    x = as_matrix(embeddings, "embeddings")
    t = rows_to_torch(x, 0, x.shape[0], device, "embeddings")
    return normalize_rows(t) if metric == "cosine" else t


class _Distances:
    """Distances from one row to all rows (cosine: ``1 - cos``; euclidean: squared L2)."""

    def __init__(self, x: torch.Tensor, metric: str, chunk_size: Optional[int]) -> None:
        self.x, self.metric = x, metric
        self.chunk = chunk_size or max(1, _BLOCK_ELEMENTS // max(1, x.shape[1]))

    def to_vector(self, c: torch.Tensor) -> torch.Tensor:
        """Distances from the vector ``c`` to every row."""
        if self.metric == "cosine":
            return (1.0 - self.x @ c).clamp_min_(0.0)
        out = torch.empty(self.x.shape[0], dtype=self.x.dtype, device=self.x.device)
        for s in range(0, self.x.shape[0], self.chunk):
            diff = self.x[s : s + self.chunk] - c
            out[s : s + self.chunk] = (diff * diff).sum(dim=1)
        return out

    def to_row(self, i: int) -> torch.Tensor:
        """Distances from row ``i`` to every row."""
        return self.to_vector(self.x[i])

    def closest_to_mean(self) -> int:
        """Index of the row closest to the mean (lowest index on ties)."""
        return int(torch.argmin(self.to_vector(self.x.mean(dim=0))))


def _check_metric(metric: str) -> str:
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    return metric


def select_diverse(
    embeddings: ArrayLike,
    n: int,
    *,
    seed_index: Optional[int] = None,
    metric: str = "cosine",
    chunk_size: Optional[int] = None,
    device: DeviceLike = None,
) -> np.ndarray:
    """Pick ``n`` items that cover the embedding space (k-center greedy coreset).

    Starting from ``seed_index``, repeatedly adds the item farthest from the
    already selected set (Sener & Savarese, "Active Learning for Convolutional
    Neural Networks: A Core-Set Approach", ICLR 2018). The minimum distance of
    every item to the selected set is updated incrementally, so memory is O(N)
    on top of the embeddings and each step costs one pass over the data.

    Args:
        embeddings: Array of shape ``(N, D)`` (numpy array or torch tensor).
        n: Number of items to select, ``1 <= n <= N``.
        seed_index: First selected item. Default: the item closest to the mean
            embedding (deterministic).
        metric: ``"cosine"`` (``1 - cosine similarity`` of L2-normalised rows)
            or ``"euclidean"``.
        chunk_size: Rows per block for euclidean distances (bounds temporary
            memory); ``None`` picks a ~64 MB block.
        device: Torch device; default CUDA when available, else CPU.

    Returns:
        int64 array of the ``n`` selected row indices, in selection order.
        Ties (equal distances) go to the lowest index.

    Raises:
        ValueError: Bad shapes, ``n`` or ``seed_index`` out of range, or an
            unknown ``metric``.

    Example:
        >>> pts = np.array([[0, 0], [0.1, 0], [10, 0], [9.9, 0], [0, 10]], dtype=np.float32)
        >>> select_diverse(pts, 3, metric="euclidean", seed_index=0).tolist()
        [0, 2, 4]
    """
    _check_metric(metric)
    chunk_size = check_chunk_size(chunk_size)
    torch_device = resolve_device(device)
    x_in = as_matrix(embeddings, "embeddings")
    num = x_in.shape[0]
    n = check_int(n, "n", 1, num, " (the number of embeddings)")
    if seed_index is not None:
        seed_index = check_int(seed_index, "seed_index", 0, num - 1, " (a row index of embeddings)")

    with torch.no_grad():
        x = _load_embeddings(x_in, metric, torch_device)
        dist = _Distances(x, metric, chunk_size)
        current = dist.closest_to_mean() if seed_index is None else seed_index
        selected = [current]
        min_dist = dist.to_row(current)
        min_dist[current] = -1.0  # never pick an item twice
        for _ in range(n - 1):
            current = int(torch.argmax(min_dist))  # first maximum -> lowest index
            selected.append(current)
            torch.minimum(min_dist, dist.to_row(current), out=min_dist)
            min_dist[current] = -1.0
    return np.asarray(selected, dtype=np.int64)


def _as_probabilities(probabilities: object) -> np.ndarray:
    if isinstance(probabilities, torch.Tensor):
        probabilities = probabilities.detach().cpu().numpy()
    try:
        p = np.asarray(probabilities)
    except Exception as exc:
        raise ValueError(f"probabilities must be a 2-D array of shape (N, C): {exc}") from exc
    if p.dtype.kind not in "fiu":
        raise ValueError(f"probabilities must hold real numbers, got dtype {p.dtype}")
    if p.ndim != 2:
        raise ValueError(f"probabilities must be a 2-D array of shape (N, C), got shape {p.shape}")
    if p.shape[1] < 2:
        raise ValueError(f"probabilities must have at least 2 classes (columns), got shape {p.shape}")
    p = p.astype(np.float64)
    if p.size == 0:
        return p
    hint = "; if these are logits, apply softmax first, e.g. torch.softmax(logits, dim=1)"
    finite = np.isfinite(p).all(axis=1)
    if not finite.all():
        raise ValueError(f"probabilities contains NaN or infinite values (first in row {int(np.argmin(finite))})")
    row_min = p.min(axis=1)
    if row_min.min() < -1e-6:
        r = int(np.argmin(row_min))
        raise ValueError(f"probabilities must be non-negative, row {r} has value {row_min[r]:.4g}{hint}")
    sums = p.sum(axis=1)
    bad = np.abs(sums - 1.0) > 1e-3
    if bad.any():
        r = int(np.argmax(bad))
        raise ValueError(f"probabilities rows must sum to 1, row {r} sums to {sums[r]:.4g}{hint}")
    return np.clip(p, 0.0, None)


def uncertainty_scores(probabilities: ArrayLike, method: str = "entropy") -> np.ndarray:
    """Per-item uncertainty of a classifier's predicted class probabilities.

    Args:
        probabilities: Array of shape ``(N, C)``, ``C >= 2``, whose rows are
            probability distributions (non-negative, summing to 1 within
            1e-3). Logits are rejected -- apply softmax first.
        method: ``"entropy"`` (Shannon entropy divided by ``log C``, so a
            uniform row scores 1 and a one-hot row 0), ``"margin"``
            (``1 - (p_top1 - p_top2)``) or ``"least_confidence"``
            (``1 - p_top1``).

    Returns:
        float64 array of shape ``(N,)``; higher means more uncertain. Entropy
        and margin lie in ``[0, 1]``; least confidence in ``[0, 1 - 1/C]``.

    Raises:
        ValueError: Wrong shape, negative values or rows not summing to 1
            (with a hint to apply softmax), or an unknown ``method``.

    Example:
        >>> p = np.array([[0.5, 0.5], [1.0, 0.0], [0.7, 0.3]])
        >>> uncertainty_scores(p, "entropy").round(3).tolist()
        [1.0, 0.0, 0.881]
        >>> uncertainty_scores(p, "margin").round(3).tolist()
        [1.0, 0.0, 0.6]
        >>> uncertainty_scores(p, "least_confidence").round(3).tolist()
        [0.5, 0.0, 0.3]
    """
    if method not in _UNCERTAINTY_METHODS:
        raise ValueError(f"method must be one of {_UNCERTAINTY_METHODS}, got {method!r}")
    p = _as_probabilities(probabilities)
    if p.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    if method == "entropy":
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
        scores = -plogp.sum(axis=1) / np.log(p.shape[1])
    elif method == "margin":
        top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
        scores = 1.0 - (top2[:, 1] - top2[:, 0])
    else:
        scores = 1.0 - p.max(axis=1)
    return np.clip(scores, 0.0, 1.0) + 0.0  # + 0.0 turns -0.0 into 0.0


def _labeled_mask(labeled_indices: object, num: int) -> np.ndarray:
    mask = np.zeros(num, dtype=bool)
    if labeled_indices is None:
        return mask
    if isinstance(labeled_indices, torch.Tensor):
        labeled_indices = labeled_indices.detach().cpu().numpy()
    idx = np.asarray(labeled_indices).reshape(-1)
    if idx.size == 0:
        return mask
    if idx.dtype.kind not in "iu":
        raise ValueError(f"labeled_indices must be integer row indices, got dtype {idx.dtype}")
    if idx.min() < 0 or idx.max() >= num:
        bad = int(idx[(idx < 0) | (idx >= num)][0])
        raise ValueError(f"labeled_indices must be between 0 and {num - 1} (row indices of embeddings), got {bad}")
    mask[idx] = True
    return mask


def select_for_labeling(
    embeddings: ArrayLike,
    probabilities: ArrayLike,
    n: int,
    *,
    method: str = "entropy",
    diversity: float = 0.5,
    labeled_indices: Optional[Union[Sequence[int], np.ndarray]] = None,
    device: DeviceLike = None,
) -> np.ndarray:
    """Active learning: choose the next ``n`` unlabeled items to annotate.

    Greedy: at each step every candidate (not labeled, not yet selected) gets

        ``score = (1 - diversity) * uncertainty + diversity * d / d0``

    where ``uncertainty`` comes from :func:`uncertainty_scores`, ``d`` is the
    candidate's cosine distance (``1 - cos``) to the nearest labeled or
    already selected item, and ``d0`` is the largest such distance among the
    candidates before the first pick (so the term lies in ``[0, 1]``). The
    highest score is picked (ties: lowest index) and distances are updated.

    * ``diversity=0``: the ``n`` most uncertain items (pure uncertainty).
    * ``diversity=1``: k-center greedy seeded by the labeled set.
    * Without labeled items, the first pick is the most uncertain item (for
      ``diversity=1``: the item closest to the mean, as in
      :func:`select_diverse`), and ``d0`` is measured from that pick.

    Args:
        embeddings: Array of shape ``(N, D)``.
        probabilities: Model predictions of shape ``(N, C)`` (rows are
            probabilities, not logits).
        n: Number of items to select, between 1 and the number of unlabeled
            items.
        method: Uncertainty measure: ``"entropy"``, ``"margin"`` or
            ``"least_confidence"``.
        diversity: Weight in ``[0, 1]`` of the diversity term.
        labeled_indices: Row indices that are already labeled; they are never
            returned and count as covered for the diversity term.
        device: Torch device; default CUDA when available, else CPU.

    Returns:
        int64 array of ``n`` row indices in selection order. Deterministic.

    Raises:
        ValueError: Mismatched shapes, invalid probabilities, ``n`` or
            ``diversity`` out of range, or bad ``labeled_indices``.

    Example:
        >>> emb = np.array([[1, 0], [1, 0.01], [0, 1], [-1, 0]], dtype=np.float32)
        >>> probs = np.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1], [0.99, 0.01]])
        >>> select_for_labeling(emb, probs, 2, diversity=0.0).tolist()
        [0, 1]
        >>> select_for_labeling(emb, probs, 2, diversity=0.9, labeled_indices=[0]).tolist()
        [3, 2]
    """
    x_in = as_matrix(embeddings, "embeddings")
    num = x_in.shape[0]
    uncertainty = uncertainty_scores(probabilities, method)
    if uncertainty.shape[0] != num:
        raise ValueError(
            f"probabilities must have one row per embedding ({num}), got {uncertainty.shape[0]} rows"
        )
    if isinstance(diversity, bool) or not isinstance(diversity, Real) or not 0.0 <= float(diversity) <= 1.0:
        raise ValueError(f"diversity must be a number between 0 and 1, got {diversity!r}")
    diversity = float(diversity)
    labeled = _labeled_mask(labeled_indices, num)
    num_unlabeled = int((~labeled).sum())
    if num_unlabeled == 0:
        raise ValueError("there are no unlabeled items left: every index is in labeled_indices")
    n = check_int(n, "n", 1, num_unlabeled, " (the number of unlabeled items)")

    torch_device = resolve_device(device)
    selected: list[int] = []
    with torch.no_grad():
        x = _load_embeddings(x_in, "cosine", torch_device)
        dist = _Distances(x, "cosine", None)
        u = torch.from_numpy(uncertainty).to(torch_device)
        available = torch.from_numpy(~labeled).to(torch_device)

        min_dist: Optional[torch.Tensor] = None
        if labeled.any():
            min_dist = torch.full((num,), float("inf"), dtype=x.dtype, device=torch_device)
            ref = torch.from_numpy(np.flatnonzero(labeled)).to(torch_device)
            step = max(1, _BLOCK_ELEMENTS // num)
            for s in range(0, ref.shape[0], step):
                block = (1.0 - x @ x[ref[s : s + step]].T).clamp_min_(0.0)
                torch.minimum(min_dist, block.min(dim=1).values, out=min_dist)
        scale: Optional[float] = None

        for _ in range(n):
            if min_dist is not None and scale is None:
                scale = float(min_dist[available].max()) if bool(available.any()) else 0.0
            if min_dist is None and diversity >= 1.0:
                current = dist.closest_to_mean()
            else:
                if min_dist is None:
                    div_term = torch.ones(num, dtype=torch.float64, device=torch_device)
                elif scale > 0:
                    div_term = min_dist.double() / scale
                else:
                    div_term = torch.zeros(num, dtype=torch.float64, device=torch_device)
                score = (1.0 - diversity) * u + diversity * div_term
                score = torch.where(available, score, torch.full_like(score, float("-inf")))
                current = int(torch.argmax(score))
            selected.append(current)
            available[current] = False
            d = dist.to_row(current)
            min_dist = d if min_dist is None else torch.minimum(min_dist, d)
    return np.asarray(selected, dtype=np.int64)
