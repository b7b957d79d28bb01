"""Live evaluation: kNN top-1 accuracy on a labelled folder while training runs.

solo-learn and LightlySSL's benchmarks watch quality during training with a kNN classifier
whose bank is the labelled *training* features and whose queries are the validation
features. easyssl trains on unlabelled folders, so the training set has no labels to vote
with, and labels must never reach training. The evaluation therefore uses a labelled folder
of its own (``evaluation={"knn_dir": "val/"}``), never the training images' labels:

* by default, **leave-one-out kNN inside that folder**: each evaluation image is classified
  by the labels of its ``k`` nearest *other* evaluation images;
* with ``knn_train_dir`` also given (a labelled train/val pair, as in the peers), the bank is
  ``knn_train_dir`` and the queries are ``knn_dir``.

Features are the backbone's raw ones (the whitening is fitted only at the end of training),
embedded with :mod:`easyssl.inference`'s loop in eval mode. The evaluation is kept to about
:data:`TIME_SHARE` (5 %) of training time: before the first evaluation the number of images
is chosen from the training time since the start and the training rate (a forward pass taken
as a third of a training image's time), between :data:`MIN_IMAGES` and ``max_images``, as an
even spread over the sorted files (every class keeps its share); the same images are used at
every later evaluation, so the accuracies are comparable, and when they fit in
:data:`KEEP_BYTES` their decoded tensors are kept, so later evaluations skip decoding.

Under ``torch.distributed`` every process evaluates the same images with the same weights, so
no collective is needed and all agree on the result.

The kNN classifier itself (:func:`knn_predict`) lives here, below :mod:`easyssl.tools`,
which re-exports it: the trainer may not import from the layer above.
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from easyssl.data.collate import MultiViewCollate
from easyssl.inference.loop import embed_with
from easyssl.runtime.spawn import safe_num_workers

#: Default evaluation settings (the ``evaluation`` config section).
DEFAULT_MAX_IMAGES = 2000
#: Share of training time the evaluation aims at, images never fewer than MIN_IMAGES.
TIME_SHARE = 0.05
MIN_IMAGES = 200
#: Decoded evaluation images are kept in memory up to this size.
KEEP_BYTES = 256 * 2**20


def _as_tensor(x: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return x.detach().to(dtype) if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=dtype)


def knn_predict(
    train_embeddings: np.ndarray | torch.Tensor,
    train_labels: Sequence[int] | np.ndarray | torch.Tensor,
    test_embeddings: np.ndarray | torch.Tensor,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    chunk_size: int = 1024,
    leave_one_out: bool = False,
) -> np.ndarray:
    """Predict test labels by a similarity-weighted vote of the ``k`` nearest training embeddings.

    The classifier of Wu et al. (2018), used to evaluate SSL in most papers: cosine
    similarity ``s`` to the ``k`` nearest training samples, each voting for its class with
    weight ``exp(s / temperature)``; the class with the largest total wins.
    ``leave_one_out=True`` (the test set *is* the training set, row for row) keeps each row
    from voting for itself.

    Returns:
        ``(N_test,)`` int64 predictions.
    """
    train = F.normalize(_as_tensor(train_embeddings), dim=1)
    test = F.normalize(_as_tensor(test_embeddings), dim=1)
    labels = _as_tensor(train_labels, torch.long)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise ValueError(f"train and test embeddings must be (N, D) with the same D, got {tuple(train.shape)} and {tuple(test.shape)}")
    if labels.shape[0] != train.shape[0]:
        raise ValueError(f"got {train.shape[0]} train embeddings but {labels.shape[0]} train labels")
    if leave_one_out and test.shape[0] != train.shape[0]:
        raise ValueError("leave_one_out=True needs the test embeddings to be the train embeddings")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if labels.numel() and labels.min() < 0:
        raise ValueError("train labels must be >= 0 (label -1 marks images outside class folders)")
    k = max(1, min(k, train.shape[0] - (1 if leave_one_out else 0)))
    num_classes = int(num_classes or (int(labels.max()) + 1 if labels.numel() else 1))
    predictions = []
    for start in range(0, test.shape[0], chunk_size):
        sim = test[start : start + chunk_size] @ train.T
        if leave_one_out:
            rows = torch.arange(sim.shape[0])
            sim[rows, rows + start] = -float("inf")
        top_sim, top_idx = sim.topk(k, dim=1)
        weights = (top_sim / temperature).exp()
        votes = torch.zeros(sim.shape[0], num_classes)
        votes.scatter_add_(1, labels[top_idx], weights)
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions).numpy() if predictions else np.zeros(0, dtype=np.int64)


def spread_indices(count: int, limit: int | None) -> list[int]:
    """``limit`` indices spread evenly over ``range(count)`` (all of them when ``limit`` is None or larger)."""
    if limit is None or count <= limit:
        return list(range(count))
    return sorted({int(i) for i in np.linspace(0, count - 1, int(limit))})


class LiveEvaluation:
    """kNN top-1 on a labelled folder, computed by the trainer every ``every`` epochs (see the module doc).

    Args:
        queries: The evaluation images (items ``(image, label, filename)``, evaluation transform).
        bank: Labelled images that vote (None: leave-one-out among ``queries``).
        k: Neighbours that vote (200, as in the SSL papers), at most half the smallest class (see :meth:`voters`).
        every: Evaluate after every ``every``-th epoch (and after the last one).
        max_images: At most this many images of each folder (None: all).
        batch_size: Images per forward pass.
        num_workers: Loading processes (0: in the training process, which suits small folders).
    """

    def __init__(self, queries: Dataset, bank: Dataset | None = None, *, k: int = 200, every: int = 1,
                 max_images: int | None = DEFAULT_MAX_IMAGES, batch_size: int = 256, num_workers: int = 0) -> None:
        for dataset, name in ((queries, "knn_dir"), (bank, "knn_train_dir")):
            labels = list(getattr(dataset, "targets", []) or [])
            if labels and (min(labels) < 0 or len(set(labels)) < 2):
                raise ValueError(f"evaluation {name}: the folder needs images in at least two class sub-folders (the labels kNN votes with)")
        self.folders = (queries, bank)
        self.max_images = max_images
        self.k, self.every = int(k), int(every)
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)
        #: Images used from each folder (chosen at the first evaluation, see the module doc; None before).
        self.images: int | None = None
        #: Seconds the last evaluation took (None before the first).
        self.last_seconds: float | None = None
        self._kept: dict[int, list] = {}

    def choose_images(self, training_seconds: float = 0.0, training_images_per_second: float = 0.0) -> int:
        """Fix the number of images per folder: :data:`TIME_SHARE` of ``training_seconds`` at the forward rate
        estimated from the training rate, between :data:`MIN_IMAGES` and ``max_images`` (all when no rate is known)."""
        if self.images is None:
            wanted = self.max_images
            forward_rate = 3 * training_images_per_second * (1 if self.folders[1] is None else 0.5)
            if training_seconds > 0 and forward_rate > 0:
                wanted = max(MIN_IMAGES, int(TIME_SHARE * training_seconds * forward_rate))
                wanted = wanted if self.max_images is None else min(wanted, self.max_images)
            self.images = wanted if wanted is not None else max(len(f) for f in self.folders if f is not None)  # type: ignore[arg-type]
        return self.images

    def voters(self, bank_labels: Sequence[int]) -> int:
        """``k``, capped at half the images of the bank's smallest class: with more voters than a class has images,
        the other classes' votes drown every image's own (200 voters among 200 images vote for the largest class)."""
        counts = np.bincount(np.asarray(bank_labels, dtype=np.int64))
        return max(1, min(self.k, int(counts[counts > 0].min()) // 2)) if counts.size else self.k

    def due(self, epochs_done: int) -> bool:
        """Whether the evaluation runs after ``epochs_done`` completed epochs."""
        return epochs_done > 0 and epochs_done % self.every == 0

    def estimate_seconds(self, training_images_per_second: float) -> float:
        """Expected seconds of one evaluation: the last one's, else one forward pass per image at a third
        of a training image's time (as for the whitening pass)."""
        if self.last_seconds is not None:
            return self.last_seconds
        count = sum(min(len(f), self.images or self.max_images or len(f)) for f in self.folders if f is not None)  # type: ignore[arg-type]
        return count / (3 * training_images_per_second) if training_images_per_second > 0 else 0.0

    def _embed(self, which: int, model: torch.nn.Module, device: torch.device, precision: str, channels_last: bool) -> tuple[np.ndarray, list[int]]:
        """Embed folder ``which`` (0: queries, 1: bank); its decoded batches are kept after the first pass when small."""
        batches = self._kept.get(which)
        if batches is None:
            dataset = self.folders[which]
            subset = Subset(dataset, spread_indices(len(dataset), self.choose_images()))  # type: ignore[arg-type]
            # A generator of its own: a loader draws its workers' base seed, which must not advance training's random streams.
            batches = list(DataLoader(subset, batch_size=self.batch_size, shuffle=False, num_workers=safe_num_workers(self.num_workers),
                                      collate_fn=MultiViewCollate(), generator=torch.Generator().manual_seed(0)))
            if sum(b[0].numel() * b[0].element_size() for b in batches if isinstance(b[0], torch.Tensor)) <= KEEP_BYTES:
                self._kept[which] = batches
        embeddings, labels, _ = embed_with(model, batches, device, precision, channels_last, progress_bar=False, whiten=False)  # type: ignore[arg-type]
        return embeddings, labels

    def __call__(self, model: torch.nn.Module, device: torch.device, precision: str = "32", channels_last: bool = False) -> dict[str, float]:
        """Embed the folder(s) with ``model`` and return ``{"knn_top1": accuracy, "eval_seconds": seconds}``."""
        start = time.perf_counter()
        query_emb, query_labels = self._embed(0, model, device, precision, channels_last)
        if self.folders[1] is None:
            predicted = knn_predict(query_emb, query_labels, query_emb, k=self.voters(query_labels), leave_one_out=True)
        else:
            bank_emb, bank_labels = self._embed(1, model, device, precision, channels_last)
            classes = max(max(bank_labels), max(query_labels)) + 1
            predicted = knn_predict(bank_emb, bank_labels, query_emb, k=self.voters(bank_labels), num_classes=classes)
        accuracy = float(np.mean(predicted == np.asarray(query_labels))) if len(query_labels) else float("nan")
        self.last_seconds = time.perf_counter() - start
        return {"knn_top1": accuracy, "eval_seconds": self.last_seconds}


def build_live_evaluation(section: dict[str, Any] | None, open_folder: Any, transform: Any) -> LiveEvaluation | None:
    """The :class:`LiveEvaluation` of an ``evaluation`` config section (None when ``knn_dir`` is None).

    ``open_folder(path, transform=...)`` opens a folder of images (:func:`easyssl.data.open_dataset`).
    """
    if not section or not section.get("knn_dir"):
        return None
    queries = open_folder(os.fspath(section["knn_dir"]), transform=transform)
    train_dir = section.get("knn_train_dir")
    bank = open_folder(os.fspath(train_dir), transform=transform) if train_dir else None
    return LiveEvaluation(queries, bank, k=int(section["k"]), every=int(section["every"]),
                          max_images=None if section.get("max_images") is None else int(section["max_images"]))
