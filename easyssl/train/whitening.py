"""Whitened embeddings: the mean and ZCA whitening matrix of a model's features on its training images.

:func:`calibrate_embeddings` fits them into a model (the trainer runs it at the end of
training), :func:`fit_whitening` fits them to any features, :func:`calibration_loader`
picks the training images the statistics come from, and :func:`time_calibration` times the pass for a budget.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

import easyssl.defaults as defaults
from easyssl.data.collate import MultiViewCollate
from easyssl.inference.loop import iter_embeddings
from easyssl.runtime.device import resolve_device, resolve_precision
from easyssl.runtime.spawn import safe_num_workers


#: Training images :func:`calibrate_embeddings` looks at by default (enough for the mean and covariance of 2048-d features).
CALIBRATION_IMAGES = 10_000


def calibrate_embeddings(
    model: torch.nn.Module,
    dataloader: DataLoader,
    device: str | torch.device = "auto",
    precision: str = "auto",
    channels_last: bool = False,
    max_images: int | None = CALIBRATION_IMAGES,
    shrinkage: float | None = None,
    progress_bar: bool = False,
    deadline: float | None = None,
) -> int:
    """Fit the whitening of ``model``'s embeddings to the features of the images of ``dataloader``.

    The loader yields ``(images, targets, filenames)`` with the evaluation transform (as for
    embedding), over training images; labels are not used. From the features of up to
    ``max_images`` images it takes the mean ``m`` and the covariance ``C = U diag(l) U^T``, and
    stores ``m`` and the ZCA whitening matrix ``W = U diag(1 / sqrt(l + s * mean(l))) U^T``
    in the model (:meth:`~easyssl.nn.SSLModel.set_embedding_statistics`); from then on
    every embedding is ``(features - m) @ W``. The shrinkage ``s`` keeps directions the
    images barely vary in from being blown up; by default ``max(0.01, D / (10 N))`` for ``D``
    dimensions and ``N`` images (more shrinkage when there are few images per dimension).

    When the model's features end in a BatchNorm (``model.feature_norm``, SimCLR's default for small images), its
    running statistics are first refitted to these images (:func:`refit_feature_norm`), so the features before
    whitening (``embed_images(..., whiten=False)``) are centred and scaled for the images as they are embedded,
    not for the training views.

    :class:`SelfSupervisedEmbedding` runs this at the end of training when it is given a
    ``calibration_loader``; :func:`easyssl.train_embedding_model` always does. On the
    Fashion-MNIST benchmark (tuning split) it raises the kNN top-1 accuracy (k=200) of a
    10-minute SimCLR model from 0.809 to 0.879.

    The pass may stop before the loader's end (``max_images``, ``deadline``): give it the images in random order
    (as :func:`calibration_loader` does), or the statistics are those of its first images only, e.g. of the first
    classes of a folder sorted by class.

    ``deadline`` (a ``time.perf_counter()`` value) ends the pass early, after the first batch, before a
    batch that would end past it: a time budget then costs calibration images, not overrun. A loader whose
    dataset can put the images the training cache holds first (:func:`calibration_loader` with ``cache``)
    is asked to, so a pass cut short decodes no file.

    Returns:
        The number of images the statistics come from (0 leaves the model as it was).
    """
    prefer_cached = getattr(getattr(dataloader, "dataset", None), "prefer_cached", None)
    if callable(prefer_cached):
        prefer_cached()
    return _calibrate(model, dataloader, device, precision, channels_last, max_images, shrinkage, progress_bar, deadline)


def _calibrate(model, dataloader, device, precision, channels_last, max_images, shrinkage, progress_bar, deadline) -> int:
    """The pass of :func:`calibrate_embeddings`.

    Returns:
        The number of images the statistics come from (0 leaves the model as it was).
    """
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    total: torch.Tensor | None = None
    products: torch.Tensor | None = None
    count = 0
    batches = iter_embeddings(model, dataloader, device, precision, channels_last, progress_bar, whiten=False)
    last = time.perf_counter()
    with contextlib.closing(batches):  # closing: breaking early puts the model back in its mode
        for array, _, _ in batches:
            if max_images is not None:
                array = array[: max(0, max_images - count)]
            features = torch.from_numpy(array).double()
            total = features.sum(0) if total is None else total + features.sum(0)
            products = features.T @ features if products is None else products + features.T @ features
            count += features.shape[0]
            if max_images is not None and count >= max_images:
                break
            now = time.perf_counter()
            if deadline is not None and now + (now - last) > deadline:  # the next batch would end past the deadline
                break
            last = now
    if count == 0 or total is None or products is None:
        return 0
    norm = feature_norm(model)
    if norm is not None and count > 1:
        total, products = refit_feature_norm(norm, total, products, count)
    mean, whitening = _whitening(total, products, count, shrinkage)
    model.set_embedding_statistics(mean, whitening)
    return count


def time_calibration(model: torch.nn.Module, dataloader: Any, device: str | torch.device = "auto", precision: str = "auto",
                     channels_last: bool = False) -> tuple[int, float]:
    """Embed up to two batches of ``dataloader`` as the calibration pass does and time the second (the first pays
    one-off costs, such as the kernel selection for the embedding's shapes): ``(images, seconds)`` of the timed batch,
    for :meth:`easyssl.train.timing.BudgetPlan.measure_calibration`. ``(0, 0.0)`` for an empty loader, and for one
    that would start worker processes (starting them costs more than the measurement is worth; the plan then models
    the pass from the training steps). The model is left in the mode it was in."""
    if getattr(dataloader, "num_workers", 0):
        return 0, 0.0
    device = resolve_device(device)
    batches = iter_embeddings(model, dataloader, device, resolve_precision(precision, device), channels_last, False, whiten=False)
    timed: tuple[int, float] = (0, 0.0)
    with contextlib.closing(batches):  # closing: the model goes back to its mode
        last = time.perf_counter()
        for index, (array, _, _) in enumerate(batches):
            features = torch.from_numpy(array).double()  # the pass's own work on each batch, as in _calibrate
            _ = (features.sum(0), features.T @ features)
            now = time.perf_counter()
            timed, last = (len(array), now - last), now
            if index == 1:
                break
    return timed


def feature_norm(model: torch.nn.Module) -> torch.nn.BatchNorm1d | None:
    """The ``BatchNorm1d`` without affine parameters that ends ``model``'s features (``model.feature_norm``, as in
    :class:`easyssl.models.SimCLR` with ``feature_norm=True``), or None when it has none."""
    norm = getattr(model, "feature_norm", None)
    if isinstance(norm, torch.nn.BatchNorm1d) and not norm.affine and norm.running_mean is not None and norm.running_var is not None:
        return norm
    return None


#: The least variance :func:`refit_feature_norm` divides a feature by, as a fraction of the features' mean variance on
#: the embedded images: a feature that barely varies over them (a unit that has died) is not blown up to unit scale.
MIN_REFIT_VARIANCE = 0.01


@torch.no_grad()
def refit_feature_norm(norm: torch.nn.BatchNorm1d, total: torch.Tensor, products: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Give the feature BatchNorm ``norm`` the statistics of the embedded images, and return the sums of its new outputs.

    ``total`` and ``products`` are the sum and the sum of outer products of ``count`` feature vectors that came out of
    ``norm`` (in evaluation mode: centred and scaled by its running statistics). Those statistics were gathered on the
    *training views*: crops at a smaller size than the images are embedded at (5/7 of it for small images), augmented.
    A network's features change with the input size (Touvron et al., 2019, "Fixing the train-test resolution
    discrepancy"), so on the images as they are embedded the features came out of ``norm`` off-centre (by a third to
    a half of a standard deviation on average, in the seventh session's Fashion-MNIST models) and unevenly scaled.
    The running mean and variance become those of the features behind ``norm`` on these images (exactly: the map is
    per-feature affine, so it is inverted from the sums), the same statistics BatchNorm would use in a pass over them,
    as "precise BN" does (Wu & Johnson, 2021). This is where the features before whitening gain: kNN top-1 (k=200)
    of the seventh session's 10-minute models rose from 0.849 / 0.854 / 0.832 / 0.853 to 0.864 / 0.864 / 0.853 /
    0.864 (tuning, fresh, holdout and benchmark splits of Fashion-MNIST); whitened features do not change (per-feature
    scaling does not change a ZCA whitening, up to its shrinkage). The least variance is ``MIN_REFIT_VARIANCE`` of the
    features' mean variance, so a feature constant over these images is not divided by its (near zero) spread; the
    refit depends on the images only, so calibrating again on the same images changes nothing.
    """
    total, products = total.double(), products.double()
    running_mean, running_var = norm.running_mean.to(total.device, torch.float64), norm.running_var.to(total.device, torch.float64)
    mean = total / count
    variance = ((products.diagonal() - count * mean * mean) / (count - 1)).clamp_min(0)
    old_scale = (running_var + norm.eps).sqrt()  # the sums are on the CPU, the norm on the training device
    new_var = variance * old_scale**2  # the features behind the norm: old_scale * out + running_mean
    new_var = new_var.clamp_min(MIN_REFIT_VARIANCE * new_var.mean())
    scale = old_scale / (new_var + norm.eps).sqrt()  # new output = scale * (old output - mean)
    shift = -mean * scale
    scaled_total = scale * total
    products = scale[:, None] * products * scale[None, :] + torch.outer(scaled_total, shift) + torch.outer(shift, scaled_total) \
        + count * torch.outer(shift, shift)
    norm.running_mean.copy_(running_mean + mean * old_scale)  # copy_ casts and moves to the buffer's device and dtype
    norm.running_var.copy_(new_var)
    return scaled_total + count * shift, products


def fit_whitening(features: np.ndarray | torch.Tensor, shrinkage: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The mean ``(D,)`` and ZCA whitening matrix ``(D, D)`` of ``features`` ``(N, D)``, as :func:`calibrate_embeddings` fits them.

    Whiten any embeddings (another model's, raw pixels) the way easyssl whitens its own:

    Example:
        >>> mean, whitening = fit_whitening(train_embeddings)
        >>> knn_accuracy((train_embeddings - mean) @ whitening, train_labels, (test_embeddings - mean) @ whitening, test_labels)
    """
    x = torch.as_tensor(np.asarray(features), dtype=torch.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"features must be a non-empty (N, D) array, got shape {tuple(x.shape)}")
    mean, whitening = _whitening(x.sum(0), x.T @ x, x.shape[0], shrinkage)
    return mean.numpy(), whitening.numpy()


def _whitening(total: torch.Tensor, products: torch.Tensor, count: int, shrinkage: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and ZCA whitening matrix (float32) from the sum and the sum of outer products of ``count`` feature vectors."""
    mean = total / count
    covariance = products / count - torch.outer(mean, mean)
    eigenvalues, vectors = torch.linalg.eigh((covariance + covariance.T) / 2)
    eigenvalues = eigenvalues.clamp_min(0)
    s = max(0.01, mean.shape[0] / (10 * count)) if shrinkage is None else float(shrinkage)
    floor = s * eigenvalues.mean() + 1e-12 if eigenvalues.mean() > 0 else torch.tensor(1.0, dtype=torch.float64)
    whitening = (vectors / (eigenvalues + floor).sqrt()) @ vectors.T
    return mean.float(), whitening.float()


def calibration_size(loader: DataLoader | None) -> int:
    """Images the calibration pass over ``loader`` will embed: at most :data:`CALIBRATION_IMAGES` (0 without a loader)."""
    if loader is None:
        return 0
    try:
        return min(len(loader.dataset), CALIBRATION_IMAGES)  # type: ignore[arg-type]
    except TypeError:
        return CALIBRATION_IMAGES


class _Transformed(Dataset):
    """Items ``indices`` of ``dataset`` (an :class:`~easyssl.data.SSLDataset`) through another ``transform``, sharing its
    record of unreadable files (so they are not warned about twice). With ``cache`` (the training
    :class:`~easyssl.data.CachedImageDataset`), images the cache holds are read from it instead of decoded again."""

    def __init__(self, dataset: Any, transform: Callable, indices: list[int] | None = None, cache: Any = None) -> None:
        self.dataset = dataset
        self.transform = transform
        self.indices = list(range(len(dataset))) if indices is None else list(indices)
        self.cache = cache

    def __len__(self) -> int:
        return len(self.indices)

    def prefer_cached(self) -> None:
        """Put the images the cache holds first, the others after them (each group in its order)."""
        if self.cache is not None:
            held = [i for i in self.indices if self.cache.cached(i) is not None]
            taken = set(held)
            self.indices = held + [i for i in self.indices if i not in taken]

    def __getitem__(self, position: int) -> tuple[Any, int, str]:
        index = self.indices[position]
        cached = self.cache.cached(index) if self.cache is not None else None
        if cached is not None:  # uint8: the collate function transforms these batch-wise (CachedBatchCollate)
            targets = getattr(self.dataset, "targets", None)
            return cached, (int(targets[index]) if targets is not None else -1), self.dataset.filenames[index]
        image, target = self.dataset.load_or_none(index)
        return (None if image is None else self.transform(image)), target, self.dataset.filenames[index]


class CachedBatchCollate(MultiViewCollate):
    """Batches of calibration items: the cached uint8 images go through the evaluation transform together, as one
    tensor (per image it cost more than the forward pass of a small model: 420 vs 1,300 images/s measured on
    2 CPU cores). The cache holds the centre square at the training input size (small images) or 8/7 of it:
    the transform resizes it to the input size, so for small images the result is the file's, exactly."""

    def __init__(self, transform: Callable) -> None:
        self.transform = transform

    def __call__(self, batch):
        raw = [i for i, item in enumerate(batch) if item[0] is not None and item[0].dtype == torch.uint8]
        if raw:
            images = self.transform(torch.stack([batch[i][0] for i in raw])).as_subclass(torch.Tensor)
            batch = list(batch)
            for j, i in enumerate(raw):
                batch[i] = (images[j], batch[i][1], batch[i][2])
        return super().__call__(batch)


class DeviceCacheLoader:
    """Calibration batches made on a CUDA device straight from the training cache: the cached ``uint8`` images of a
    batch are gathered in the main process (one indexing of the cache's tensor), copied to the device and put
    through the evaluation transform there; images the cache does not hold come after them from ``fallback``
    (a loader with workers, as without a cache).

    Why not the workers' path (:class:`CachedBatchCollate`): on a GPU the pass of a short run was its largest fixed
    cost. One H200 (issue 11, 2026-11-27; 4,096 photos, ResNet-50 at 224 px, batch 128, two epochs): whitening took
    3.8 of the call's 12.0 s, where the forward passes take well under a second: 15 workers forked, each resizing
    and normalising a batch of 256 cached images on one CPU core and shipping it as float32 (154 MB) through
    shared and pinned memory. Here a batch crosses as ``uint8`` (a quarter of the bytes) and the GPU resizes it.

    Args:
        dataset: The calibration subset (:func:`calibration_loader`'s: indices into an
            :class:`~easyssl.data.SSLDataset`, with the training :class:`~easyssl.data.CachedImageDataset`).
        transform: The evaluation transform (works on a ``uint8`` batch on the device).
        device: Where the batches are made.
        batch_size: Images per batch.
        fallback: Makes the loader of a subset of images the cache does not hold.
    """

    def __init__(self, dataset: Any, transform: Callable, device: torch.device, batch_size: int,
                 fallback: Callable[[Any], DataLoader]) -> None:
        self.dataset = dataset
        self.transform = transform
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.fallback = fallback

    def __len__(self) -> int:
        """Batches: those of the cached images, then those of the others."""
        held = len(self._held())
        return -(-held // self.batch_size) + -(-(len(self.dataset) - held) // self.batch_size)

    def _held(self) -> list[int]:
        """The calibration images the cache holds, in the subset's order."""
        return [i for i in self.dataset.indices if self.dataset.cache.cached(i) is not None]

    def __iter__(self):
        subset, cache = self.dataset, self.dataset.cache
        held = self._held()
        targets = getattr(subset.dataset, "targets", None)
        names = subset.dataset.filenames
        for start in range(0, len(held), self.batch_size):
            chunk = held[start:start + self.batch_size]
            pixels = cache.storage.index_select(0, torch.tensor(chunk)).to(self.device, non_blocking=True)
            labels = [int(targets[i]) if targets is not None else -1 for i in chunk]
            yield self.transform(pixels).as_subclass(torch.Tensor), labels, [names[i] for i in chunk]
        taken = set(held)
        rest = [i for i in subset.indices if i not in taken]
        if rest:
            yield from self.fallback(_Transformed(subset.dataset, subset.transform, rest))


def calibration_loader(dataset: Any, transform: Callable, seed: int, device: torch.device, cache: Any = None) -> DataLoader:
    """Up to :data:`CALIBRATION_IMAGES` images of ``dataset`` (an :class:`~easyssl.data.SSLDataset`), chosen at random
    with a generator of their own seeded with ``seed``, through the evaluation ``transform``: the images
    :func:`calibrate_embeddings` takes the embedding statistics from. With ``cache``, the training
    :class:`~easyssl.data.CachedImageDataset` over ``dataset``, the images it holds by then are read from it
    (no file is decoded twice) and come first.

    On a CUDA device with ``cache``, a :class:`DeviceCacheLoader` makes the batches on the device.

    The images come in that random order, not the folder's: a pass cut short by a time budget then still sees a
    random sample. In the folder's order (class sub-folders, sorted), a pass that stops early sees the first
    classes only: a 30-second run's pass stopped after 7,168 of 10,000 Fashion-MNIST images, and a 10-minute holdout
    model whitened as its training stored it scored 0.872 (k=200), as a whitening of the first 7,000 images in
    folder order (7 of 10 classes) does, where one fitted on a random 1,000, 3,000 or 7,000 of them scores
    0.891-0.894."""
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randperm(len(dataset), generator=generator)[:CALIBRATION_IMAGES].tolist()
    subset = _Transformed(dataset, transform, indices, cache)

    def loader(images: Any) -> DataLoader:
        # A generator of its own: starting an iterator draws a seed from it, and the trainer times the pass on two
        # batches during training (time_calibration), where a draw from the global one would move training's random stream.
        return DataLoader(images, batch_size=defaults.default_embed_batch_size(device), shuffle=False,
                          num_workers=safe_num_workers(defaults.default_embed_workers(device)), pin_memory=device.type == "cuda",
                          collate_fn=CachedBatchCollate(transform) if images.cache is not None else MultiViewCollate(),
                          generator=torch.Generator().manual_seed(seed))

    if cache is not None and device.type == "cuda" and hasattr(cache, "storage"):  # see DeviceCacheLoader
        return DeviceCacheLoader(subset, transform, device, defaults.default_embed_batch_size(device), loader)  # type: ignore[return-value]
    return loader(subset)
