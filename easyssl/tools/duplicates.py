"""Near-duplicate detection: pairs of images much closer to each other than to anything else.

A fixed cosine threshold cannot tell copies from look-alikes: in a dense region (the plain
t-shirts of Fashion-MNIST) distinct images sit closer together than a cropped copy sits to its
original. What does tell them apart is *context*: a copy is far closer to its original than
either image is to its other neighbours, while a look-alike has many neighbours about as close.
So two images are linked when their distance is a fraction of the distance to their ``k``-th
neighbour (the ratio test of Lowe's SIFT matching, against a deeper neighbour so that groups
of up to ``k - 1`` copies still pass). Cropped copies need one more step: the original's own
crops (and a low-resolution copy, :mod:`easyssl.inference.views`) are compared too, and the best view counts.

The defaults were chosen on a split cut from Fashion-MNIST's training images and checked on
its test images (``examples/benchmarks/near_duplicates.py``; figures in the README).

Example:
    >>> groups = find_duplicates(embeddings)                               # from embeddings alone
    >>> groups = find_duplicate_images("my/images/", checkpoint)           # files, crops and all
"""

from __future__ import annotations

import os
from numbers import Integral, Real
from typing import Any, Optional, Sequence

import numpy as np
import torch

from easyssl.data import open_dataset, warn_skipped
from easyssl.inference import Embedder
from easyssl.inference.checks import warn_if_barely_trained
from easyssl.inference.views import DUPLICATE_VIEWS, embed_with_views
from easyssl.runtime import distributed
from easyssl.runtime.checkpoint import load_checkpoint
from easyssl.tools.arrays import ArrayLike, DeviceLike, as_matrix
from easyssl.tools.search import nearest_neighbors

__all__ = ["find_duplicates", "find_duplicate_images", "warn_if_too_short", "DUPLICATE_THRESHOLD", "DUPLICATE_RATIO", "DUPLICATE_CONTEXT"]

#: Minimum cosine similarity of a duplicate pair (after centring). A floor only: the ratio test decides.
DUPLICATE_THRESHOLD = 0.8
#: How many times closer (in squared distance, ``1 - cosine``) a pair must be than each image's ``k``-th neighbour.
DUPLICATE_RATIO = 4.0
#: The neighbour a pair is compared with (``k``): groups of up to ``k - 1`` copies are found whole.
DUPLICATE_CONTEXT = 12
#: Fewer training steps than this and :func:`find_duplicate_images` warns: on the benchmark a model of 41
#: steps found 43 % of the copies (look-alikes and copies still embed alike); one of 578 steps (90 s) found 88 %.
DUPLICATE_MIN_STEPS = 200
#: Candidate pairs compared at a time (with 18 views of 128-d embeddings: about 150 MB of scores and rows).
PAIR_CHUNK = 16_384
#: What a model of fewer steps gets wrong, in the warning.
DUPLICATE_TOO_SHORT = "such a model still embeds look-alikes about as close as copies, so duplicates will be missed or wrong"
#: Pairs at least this similar (exact and near-exact copies) are always linked, however many there are.
EXACT_COPY = 0.999


def _numpy(x: ArrayLike) -> np.ndarray:
    return x.float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _check(threshold: object, ratio: object, k: object) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not -1.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be a cosine similarity between -1 and 1, got {threshold!r}")
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, Real) or float(ratio) < 0):
        raise ValueError(f"ratio must be a number >= 0 (or None: no ratio test), got {ratio!r}")
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def find_duplicates(
    embeddings: ArrayLike,
    threshold: float = DUPLICATE_THRESHOLD,
    *,
    ratio: Optional[float] = DUPLICATE_RATIO,
    views: Optional[ArrayLike] = None,
    k: int = DUPLICATE_CONTEXT,
    chunk_size: Optional[int] = None,
    device: DeviceLike = None,
    center: bool = True,
    mutual: bool = False,
) -> list[list[int]]:
    """Group near-identical items (copies, re-encoded, resized, cropped or re-exposed images).

    Items ``i`` and ``j`` are linked when, for their similarity ``s`` (cosine, after centring):

    * ``s >= threshold``;
    * ``(1 - b) >= ratio * (1 - s)``, ``b`` the larger of the two items' similarities to their ``k``-th
      nearest neighbour (the ratio test, see the module docstring; ``ratio=None`` or ``0`` turns it off);
    * with ``mutual=True``, each is the other's nearest neighbour.

    Pairs at ``>= 0.999`` (exact copies) are always linked. Linked items are merged with
    union-find into groups. With ``views`` (the embeddings of other views of the same items,
    e.g. crops: :func:`easyssl.inference.views.embed_with_views`) ``s`` is the best similarity
    of one item's whole view with any view of the other, so a cropped copy meets the crop of
    its original. :func:`find_duplicate_images` does both steps from a folder.

    Why these defaults (``threshold=0.8, ratio=4, k=12``): on the planted-duplicate benchmark's
    tuning split (``examples/benchmarks/near_duplicates.py``, models of 90-180 s) they gave pair
    precision 0.94-0.97 at recall 0.87-0.91 with 18 crops as views, and 0.97 / 0.92 with the
    low-resolution view added (the test split: 0.86 / 0.91, see the README). Ratio 3.5 lost
    precision (0.89-0.95), 4.5 recall (0.83-0.85); ``k=8`` and ``k=10`` did no better, ``k=15``
    lost precision. The rule before, a threshold alone (0.93, mutual neighbours), found 0.55-0.60
    of the copies there at precision 0.91-0.98. The cost with ``V`` views is ``1 + V`` exact
    searches: 85 s for 20,000 items and 18 views on 2 CPU cores (a GPU, or faiss above 100,000
    items, is much faster).

    Args:
        embeddings: Array of shape ``(N, D)`` (numpy array or torch tensor).
        threshold: Minimum cosine similarity, in ``[-1, 1]`` (compared with a 1e-6 tolerance).
        ratio: The ratio test's factor (``>= 0``; ``None`` or ``0``: no ratio test, the threshold alone decides).
        views: Optional ``(V, N, D)`` embeddings of ``V`` other views of the same ``N`` items.
        k: Neighbours examined per item, the last one the ratio test's reference (capped at ``N - 1``).
        chunk_size: Passed to :func:`~easyssl.tools.nearest_neighbors`.
        device: Passed to :func:`~easyssl.tools.nearest_neighbors`.
        center: Subtract the mean embedding before comparing: raw backbone features lie in the
            positive orthant (ReLU), where unrelated images score above 0.95.
        mutual: Also require the two items to be each other's nearest neighbour.

    Returns:
        List of groups (lists of row indices) of size >= 2; each group sorted ascending,
        groups sorted by their first index. Deterministic.

    Example:
        >>> emb = np.array([[1, 0], [0, 1], [1, 0.001], [-1, 0]], dtype=np.float32)
        >>> find_duplicates(emb, threshold=0.99, ratio=None, center=False)
        [[0, 2]]
    """
    as_matrix(embeddings, "embeddings")
    _check(threshold, ratio, k)
    emb = _numpy(embeddings)
    num = emb.shape[0]
    extra = None if views is None else _numpy(views)
    if extra is not None and (extra.ndim != 3 or extra.shape[1:] != emb.shape):
        raise ValueError(f"views must have shape (V, {num}, {emb.shape[1]}) for embeddings {emb.shape}, got {extra.shape}")
    if num < 2:
        return []
    if center:
        mean = emb.mean(axis=0, keepdims=True)
        emb = emb - mean
        extra = None if extra is None else extra - mean
    emb = _unit(emb)
    extra = None if extra is None else _unit(extra)
    kk = min(int(k), num - 1)
    options = {"chunk_size": chunk_size, "device": device, "exclude_self": True}
    found = [nearest_neighbors(emb, emb, kk, **options)[0]]
    if extra is not None:  # an item's crops find the copies cut from it
        found += [nearest_neighbors(emb, view, kk, query_indices=np.arange(num), **options)[0] for view in extra]
    rows = np.repeat(np.arange(num), kk * len(found))
    cols = np.concatenate(found, axis=1).reshape(-1)
    pairs = np.unique(np.sort(np.stack([rows, cols], axis=1), axis=1), axis=0)
    first, second = pairs[:, 0], pairs[:, 1]
    sim = _pair_similarities(emb, extra, first, second)
    # Each item's candidates sorted by similarity: the nearest and the k-th (the ratio test's reference).
    both = np.concatenate([first, second])
    order = np.lexsort((-np.concatenate([sim, sim]), both))
    items, values = both[order], np.concatenate([sim, sim])[order]
    starts = np.searchsorted(items, np.arange(num))
    counts = np.bincount(items, minlength=num)
    nearest = np.where(counts > 0, values[np.minimum(starts, len(values) - 1)], -1.0)
    reference = np.where(counts > 0, values[np.minimum(starts + np.minimum(counts, kk) - 1, len(values) - 1)], -1.0)
    linked = sim >= float(threshold) - 1e-6
    if ratio:
        background = np.maximum(reference[first], reference[second])
        linked &= (1.0 - background) >= float(ratio) * np.maximum(1.0 - sim, 0.0) - 1e-6
    if mutual:
        linked &= (sim >= nearest[first] - 1e-6) & (sim >= nearest[second] - 1e-6)
    linked |= sim >= EXACT_COPY
    return _groups(num, first[linked], second[linked])


def _pair_similarities(emb: np.ndarray, extra: Optional[np.ndarray], first: np.ndarray, second: np.ndarray,
                        chunk: int = PAIR_CHUNK) -> np.ndarray:
    """Cosine similarity of each pair of unit rows, or with ``extra`` views the best of whole-to-whole and
    view-to-whole both ways; ``chunk`` pairs at a time, so memory stays bounded however many pairs."""
    out = np.empty(len(first), dtype=np.float32)
    for start in range(0, len(first), chunk):
        a, b = first[start : start + chunk], second[start : start + chunk]
        sim = np.einsum("pd,pd->p", emb[a], emb[b])
        if extra is not None:
            sim = np.maximum(sim, np.einsum("vpd,pd->vp", extra[:, a], emb[b]).max(axis=0))
            sim = np.maximum(sim, np.einsum("pd,vpd->vp", emb[a], extra[:, b]).max(axis=0))
        out[start : start + chunk] = sim
    return out


def _groups(num: int, first: np.ndarray, second: np.ndarray) -> list[list[int]]:
    """Connected components (of size >= 2) of the links ``first[i] - second[i]``, by union-find."""
    parent = list(range(num))

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:  # path compression
            parent[i], i = root, parent[i]
        return root

    for a, b in zip(first.tolist(), second.tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in sorted(set(first.tolist()) | set(second.tolist())):
        groups.setdefault(find(i), []).append(i)
    return sorted((sorted(g) for g in groups.values() if len(g) >= 2), key=lambda g: g[0])


def warn_if_too_short(checkpoint: str | os.PathLike | None = None, *, steps: int | None = None, source: str | None = None) -> bool:
    """Warn (and return True) when a model was trained for fewer than :data:`DUPLICATE_MIN_STEPS` steps: the
    ``checkpoint``'s, or one of ``steps`` steps (``source`` names where that figure came from, e.g. an embeddings
    file). The warning is :func:`~easyssl.inference.checks.warn_if_barely_trained`'s, with this minimum."""
    state = load_checkpoint(checkpoint) if checkpoint is not None else {"step": steps}
    return warn_if_barely_trained(state, checkpoint if checkpoint is not None else source or "the model",
                                  DUPLICATE_MIN_STEPS, DUPLICATE_TOO_SHORT)


def find_duplicate_images(
    input_dir: str | os.PathLike,
    checkpoint: str | os.PathLike,
    *,
    threshold: float = DUPLICATE_THRESHOLD,
    ratio: Optional[float] = DUPLICATE_RATIO,
    k: int = DUPLICATE_CONTEXT,
    mutual: bool = False,
    views: Sequence[tuple[float, ...]] = DUPLICATE_VIEWS,
    batch_size: Optional[int] = None,
    num_workers: Optional[int] = None,
    device: Any = "auto",
    precision: str = "auto",
    progress_bar: bool = True,
) -> list[list[str]]:
    """Groups of near-duplicate files in a folder, found with a checkpoint's embeddings and its crops.

    Each image is embedded whole and as the :data:`~easyssl.inference.views.DUPLICATE_VIEWS` (18 crops
    and a low-resolution copy: 20 forward passes per image), then :func:`find_duplicates` links pairs. Cropped copies
    are found this way; from embeddings alone (``find_duplicates(embeddings)``) most are not.
    Warns when the checkpoint was trained for fewer than :data:`DUPLICATE_MIN_STEPS` steps. Under
    ``torchrun`` every process embeds a shard and every process returns all the groups. Files that
    cannot be read are left out, with a warning that names them.

    Args:
        input_dir: Folder of images.
        checkpoint: The ``.ckpt`` file (or its run folder) of :func:`~easyssl.train_embedding_model`.
        threshold, ratio, k, mutual: As :func:`find_duplicates`.
        views: The views embedded besides each image, ``(scale, x, y[, resolution])`` (``()``: none).
        batch_size, num_workers, device, precision, progress_bar: As :func:`~easyssl.embed_images`.

    Returns:
        Groups of filenames (relative to ``input_dir``), each sorted, groups sorted by their first name.

    Example:
        >>> for group in find_duplicate_images("my/images/", checkpoint):
        ...     print(group)   # ['a.jpg', 'a_copy.jpg']
    """
    embedder = Embedder.from_checkpoint(checkpoint, device=device, precision=precision, batch_size=batch_size, num_workers=num_workers)
    warn_if_too_short(steps=embedder.training_steps, source=os.fspath(checkpoint))
    data = open_dataset(input_dir, transform=embedder.transform)
    emb, extra, _, names = embed_with_views(embedder.model, embedder.loader(data), embedder.device, tuple(views),
                                            embedder.precision, embedder.channels_last, progress_bar and distributed.is_main_process())
    skipped = data.skipped_files()
    if distributed.is_distributed():  # each process embedded its shard: every process gets the whole set, in order
        gathered = distributed.all_gather_object((emb, extra, names, skipped))
        skipped = [name for p in gathered for name in p[3]]
        parts = [p for p in gathered if p[2]]
        emb = np.concatenate([p[0] for p in parts]) if parts else emb
        extra = np.concatenate([p[1] for p in parts], axis=1) if parts else extra
        names = [name for p in parts for name in p[2]]
    if skipped and distributed.is_main_process():
        warn_skipped(sorted(set(skipped)), "read; they are left out of the search for duplicates")
    if not names:
        return []
    groups = find_duplicates(emb, threshold, ratio=ratio, k=k, mutual=mutual, views=extra if len(views) else None)
    return [[names[i] for i in group] for group in groups]
