"""Near-duplicate detection: pairs of images much closer to each other than to anything else.

A fixed cosine threshold cannot tell copies from look-alikes: in a dense region (the plain
t-shirts of Fashion-MNIST) distinct images sit closer together than a cropped copy sits to its
original. What does tell them apart is *context*: a copy is far closer to its original than
either image is to its other neighbours, while a look-alike has many neighbours about as close.
So two images are linked when their distance is a fraction of the distance to their ``k``-th
neighbour (the ratio test of Lowe's SIFT matching, against a deeper neighbour so that groups
of up to ``k - 1`` copies still pass). Cropped copies need one more step: the original's own
crops (and a low-resolution copy, :mod:`easyssl.inference.views`) are compared too, and the best view counts.

Two more steps keep look-alikes out. The embeddings are trained to ignore crops and colour
changes, so two white bags, or two circles of one colour, can still pass the ratio test; their
pixels, once any crop is undone, do not match as a copy's do, so :func:`find_duplicate_images`
has the files' pixels confirm each pair (:mod:`easyssl.tools.pixels`, the geometric check after
a feature match in image retrieval). And a group is one where every two members are linked
(complete linkage): with groups as connected links (single linkage), one look-alike pair
chained five bags into a group.

The defaults were chosen on two splits cut from Fashion-MNIST's training images and on the
built-in demo set, and checked on its test images (``examples/benchmarks/near_duplicates.py``;
figures in the README).

Example:
    >>> groups = find_duplicates(embeddings)                               # from embeddings alone
    >>> groups = find_duplicate_images("my/images/", checkpoint)           # files, crops and all
"""

from __future__ import annotations

import os
from numbers import Integral, Real
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from easyssl.data import open_dataset, warn_skipped
from easyssl.inference import Embedder
from easyssl.inference.checks import warn_if_barely_trained
from easyssl.inference.views import DUPLICATE_VIEWS, embed_with_views
from easyssl.runtime import distributed
from easyssl.runtime.checkpoint import load_checkpoint
from easyssl.tools.arrays import ArrayLike, DeviceLike, as_matrix
from easyssl.tools.pixels import PixelAgreement
from easyssl.tools.search import nearest_neighbors

__all__ = ["find_duplicates", "find_duplicate_images", "warn_if_too_short", "DUPLICATE_THRESHOLD", "DUPLICATE_RATIO",
           "DUPLICATE_CONTEXT", "DUPLICATE_AGREEMENT", "DUPLICATE_SURE_AGREEMENT", "DUPLICATE_SURE_RATIO"]

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
#: With a ``verify`` check (:func:`find_duplicate_images`: :func:`~easyssl.tools.pixels.pixel_agreement`), the
#: score a pair must reach to stay linked...
DUPLICATE_AGREEMENT = 0.97
#: ... or this lower score, for pairs that pass the ratio test by :data:`DUPLICATE_SURE_RATIO` or more.
DUPLICATE_SURE_AGREEMENT = 0.9
#: Pairs this many times closer than the ``k``-th neighbour need only :data:`DUPLICATE_SURE_AGREEMENT`.
DUPLICATE_SURE_RATIO = 8.0
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
    linkage: str = "complete",
    verify: Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]] = None,
    agreement: float = DUPLICATE_AGREEMENT,
    sure_ratio: float = DUPLICATE_SURE_RATIO,
    sure_agreement: float = DUPLICATE_SURE_AGREEMENT,
) -> list[list[int]]:
    """Group near-identical items (copies, re-encoded, resized, cropped or re-exposed images).

    Items ``i`` and ``j`` are linked when, for their similarity ``s`` (cosine, after centring):

    * ``s >= threshold``;
    * ``(1 - b) >= ratio * (1 - s)``, ``b`` the larger of the two items' similarities to their ``k``-th
      nearest neighbour (the ratio test, see the module docstring; ``ratio=None`` or ``0`` turns it off);
    * with ``mutual=True``, each is the other's nearest neighbour;
    * with ``verify`` (a second opinion, e.g. :class:`~easyssl.tools.pixels.PixelAgreement`: the files'
      pixels), ``verify`` scores the pair at least ``agreement``, or at least ``sure_agreement`` when
      the pair passes the ratio test by ``sure_ratio`` (is that many times closer).

    Pairs at ``>= 0.999`` (exact copies) are always linked. Groups are then formed from the links,
    strongest first, so that every two members of a group are linked (``linkage="complete"``;
    exact copies are merged first, whatever their number); ``linkage="single"`` takes connected
    links instead, where one look-alike pair can chain two groups. With ``views`` (the embeddings
    of other views of the same items, e.g. crops: :func:`easyssl.inference.views.embed_with_views`)
    ``s`` is the best similarity of one item's whole view with any view of the other, so a cropped
    copy meets the crop of its original. :func:`find_duplicate_images` does all of it from a folder.

    Why these defaults (``threshold=0.8, ratio=4, k=12``, complete linkage, and with the pixel
    check ``agreement=0.97, sure_ratio=8, sure_agreement=0.9``): chosen on the planted-duplicate
    benchmark (``examples/benchmarks/near_duplicates.py``, models of 90 s) on two splits cut from
    Fashion-MNIST's training images and on the built-in demo set: pair precision / recall
    0.99 / 0.93, 0.95 / 0.95 and 0.97 / 0.93 there (test images: see the README). Without the
    pixel check the same embeddings gave precision 0.94, 0.86 and 0.69 (and with single linkage
    too, the rule before: 0.89, 0.77, 0.59). Lost, with an earlier, coarser grid of crop sizes in
    the check: one pixel threshold for every pair (0.93 or 0.95) gave precision 0.90-0.95 at
    recall 0.87-0.96, as a third of the resized copies, blurred, score only 0.90-0.97; no check at
    all past ratio 6 let look-alike shapes of the demo through (precision 0.84).
    Single linkage lost up to 2 points of precision on Fashion-MNIST (a chain of five white
    bags) and 9 on the demo set. Ratio 3.5 lost
    precision (0.89-0.95) and 4.5 recall (0.83-0.85) before the pixel check; ``k=8`` and ``k=10``
    did no better, ``k=15`` lost precision. The cost with ``V`` views is ``1 + V`` exact
    searches: 85 s for 20,000 items and 18 views on 2 CPU cores (a GPU, or faiss above 100,000
    items, is much faster); the pixel check about 12 ms per linked pair.

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
        linkage: ``"complete"`` (every two members of a group linked) or ``"single"`` (connected links).
        verify: Optional ``verify(first, second) -> scores``, one score per pair of row indices, asked
            about the linked pairs (exact copies aside).
        agreement, sure_ratio, sure_agreement: The score ``verify`` must give a pair, and the lower one
            for pairs the ratio test is sure of (``sure_ratio`` times closer than the ``k``-th neighbour).

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
    if linkage not in ("single", "complete"):
        raise ValueError(f"linkage must be 'single' or 'complete', got {linkage!r}")
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
    # How many times closer the pair is than the farther of the two items' k-th neighbour (1 - cosine).
    margin = (1.0 - np.maximum(reference[first], reference[second])) / np.maximum(1.0 - sim, 1e-6)
    if ratio:
        linked &= margin >= float(ratio) * (1 - 1e-5)
    if mutual:
        linked &= (sim >= nearest[first] - 1e-6) & (sim >= nearest[second] - 1e-6)
    exact = sim >= EXACT_COPY
    checked = np.flatnonzero(linked & ~exact) if verify is not None else []
    if len(checked):  # a second opinion (the pixels), stricter where the ratio test was less sure
        scores = np.asarray(verify(first[checked], second[checked]), dtype=np.float64).reshape(-1)
        if scores.shape != (len(checked),):
            raise ValueError(f"verify must return one score per pair: {len(checked)} pairs, got shape {scores.shape}")
        needed = np.where(margin[checked] >= float(sure_ratio) * (1 - 1e-5), float(sure_agreement), float(agreement))
        linked[checked[scores < needed]] = False
    linked |= exact
    if linkage == "single":
        return _groups(num, first[linked], second[linked])
    return _complete_groups(num, first[linked], second[linked], sim[linked], exact[linked])


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


def _complete_groups(num: int, first: np.ndarray, second: np.ndarray, sim: np.ndarray, exact: np.ndarray) -> list[list[int]]:
    """Groups in which every two members are linked (complete linkage), so one link cannot chain two groups.

    Exact copies are merged first (they are copies of each other whether or not each pair was
    among the candidates); the other links are then taken most similar first, and two groups
    are merged only when each member of one is linked to each member of the other.
    """
    parent = list(range(num))
    for a, b in zip(first[exact].tolist(), second[exact].tolist()):
        _union(parent, a, b)
    atoms = [_find(parent, i) for i in range(num)]
    links = {(min(atoms[a], atoms[b]), max(atoms[a], atoms[b])) for a, b in zip(first.tolist(), second.tolist())}
    members: dict[int, list[int]] = {}  # group root -> its atoms
    group = {}  # atom -> group root
    for atom in sorted(set(atoms)):
        members[atom], group[atom] = [atom], atom
    for n in np.argsort(-sim, kind="stable").tolist():
        ga, gb = group[atoms[first[n]]], group[atoms[second[n]]]
        if ga == gb or not all((min(x, y), max(x, y)) in links for x in members[ga] for y in members[gb]):
            continue
        keep, gone = min(ga, gb), max(ga, gb)
        for atom in members[gone]:
            group[atom] = keep
        members[keep] += members.pop(gone)
    by_group: dict[int, list[int]] = {}
    for i in range(num):
        by_group.setdefault(group[atoms[i]], []).append(i)
    return sorted((g for g in by_group.values() if len(g) >= 2), key=lambda g: g[0])


def _find(parent: list[int], i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        parent[i], i = root, parent[i]
    return root


def _union(parent: list[int], a: int, b: int) -> None:
    ra, rb = _find(parent, a), _find(parent, b)
    if ra != rb:
        parent[max(ra, rb)] = min(ra, rb)


def _groups(num: int, first: np.ndarray, second: np.ndarray) -> list[list[int]]:
    """Connected components (of size >= 2) of the links ``first[i] - second[i]``, by union-find."""
    parent = list(range(num))
    for a, b in zip(first.tolist(), second.tolist()):
        _union(parent, a, b)
    groups: dict[int, list[int]] = {}
    for i in sorted(set(first.tolist()) | set(second.tolist())):
        groups.setdefault(_find(parent, i), []).append(i)
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
    pixel_check: bool = True,
    agreement: float = DUPLICATE_AGREEMENT,
    sure_agreement: float = DUPLICATE_SURE_AGREEMENT,
    views: Sequence[tuple[float, ...]] = DUPLICATE_VIEWS,
    batch_size: Optional[int] = None,
    num_workers: Optional[int] = None,
    device: Any = "auto",
    precision: str = "auto",
    progress_bar: bool = True,
) -> list[list[str]]:
    """Groups of near-duplicate files in a folder, found with a checkpoint's embeddings and its crops.

    Each image is embedded whole and as the :data:`~easyssl.inference.views.DUPLICATE_VIEWS` (18 crops
    and a low-resolution copy: 20 forward passes per image), then :func:`find_duplicates` links pairs, and the
    files' pixels confirm them (:class:`~easyssl.tools.pixels.PixelAgreement`: a copy matches its original
    pixel for pixel once the crop is undone, a look-alike does not). Cropped copies are found this way;
    from embeddings alone (``find_duplicates(embeddings)``) most are not, and look-alikes are let through.
    Warns when the checkpoint was trained for fewer than :data:`DUPLICATE_MIN_STEPS` steps. Under
    ``torchrun`` every process embeds a shard and every process returns all the groups. Files that
    cannot be read are left out, with a warning that names them.

    Args:
        input_dir: Folder of images.
        checkpoint: The ``.ckpt`` file (or its run folder) of :func:`~easyssl.train_embedding_model`.
        threshold, ratio, k, mutual: As :func:`find_duplicates`.
        pixel_check: Confirm each pair with the files' pixels (False: the embeddings alone decide).
        agreement, sure_agreement: The pixel agreement a pair needs, and the surest pairs, as :func:`find_duplicates`.
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
    verify = None
    if pixel_check:  # the files' pixels confirm the pairs the embeddings propose
        index = {name: i for i, name in enumerate(data.filenames)}
        verify = PixelAgreement(lambda row: data.load_or_none(index[names[row]])[0])
    groups = find_duplicates(emb, threshold, ratio=ratio, k=k, mutual=mutual, views=extra if len(views) else None,
                             verify=verify, agreement=agreement, sure_agreement=sure_agreement)
    return [[names[i] for i in group] for group in groups]
