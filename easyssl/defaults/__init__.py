"""How easyssl picks its defaults from the data and the hardware.

Every ``"auto"`` value of :func:`easyssl.train_embedding_model`'s config is resolved
here, by a rule written down in the function that applies it, so users can read why
training uses what it uses (and override any of it). This module holds the rules of the
input size and the hardware (batch, workers, learning-rate scaling); the small-image recipe
(views, model, losses and embedding of images up to 64 px) is :mod:`easyssl.defaults.small_images`,
whose names it re-exports.
"""

from __future__ import annotations

import math
import os
import statistics
from typing import Sequence

import torch
from PIL import Image

from easyssl.data.cache import default_cache_bytes
from easyssl.defaults.small_images import (  # noqa: F401  (re-exported: easyssl.defaults is where config reads every rule)
    BF16_CPU_SMALL_IMAGE_WIDTH,
    DECORRELATION_MIN_BATCH,
    LARGE_GPU_MULTIPROCESSORS,
    SMALL_IMAGE_DECORRELATION_WEIGHT,
    SMALL_IMAGE_EMBEDDING_VIEWS,
    SMALL_IMAGE_FINAL_SIZE_FRACTION,
    SMALL_IMAGE_MIN_SCALE,
    SMALL_IMAGE_POOLED_STAGES,
    SMALL_IMAGE_ROTATION_WEIGHT,
    SMALL_IMAGE_SHORT_BUDGET,
    SMALL_IMAGE_WARMUP,
    default_backbone,
    default_decorrelation_weight,
    default_embedding_views,
    default_feature_norm,
    default_final_size_fraction,
    default_min_scale,
    default_pooled_stages,
    default_rotation_weight,
    default_train_crop_size,
    default_warmup,
    is_large_gpu,
)
from easyssl.nn.backbones import SMALL_INPUT_MAX_SIZE
from easyssl.runtime.device import GPU_TYPES

#: Input sizes easyssl picks from for images larger than :data:`~easyssl.nn.backbones.SMALL_INPUT_MAX_SIZE`
#: (64 px); the images' typical short side is rounded up to one of them. Images up to that size train at
#: their own size (see :func:`default_input_size`), with the small-image ResNet stem.
INPUT_SIZES = (96, 128, 160, 192, 224)


def image_short_sides(paths: Sequence[str], limit: int = 64) -> list[int]:
    """Short sides of up to ``limit`` images spread evenly over ``paths``, read from the file headers only."""
    if not paths:
        return []
    step = max(1, len(paths) // limit)
    sides = []
    for path in list(paths)[::step][:limit]:
        try:
            with Image.open(path) as image:
                sides.append(min(image.size))
        except Exception:  # unreadable files are reported when read for training
            continue
    return sides


def default_input_size(short_sides: Sequence[int]) -> int:
    """Training input size from the images' median short side.

    * Small images (median up to 64 px) train at their own size, rounded up to a multiple
      of 4 px (at least 16 px), with the small-image ResNet stem: scaling them up adds no
      detail and costs compute as the square of the side. Fashion-MNIST's 28 px images
      train at 28 px: measured on 2 CPU cores, 1139 training images/s against 979 at 32 px,
      so 69 epochs instead of 59 in 10 minutes and a better kNN accuracy (tuning split).
    * Larger images: the median rounded up to one of :data:`INPUT_SIZES`, at most 224 (photos
      train at 224 px, as in the papers).

    With no readable image, 224.
    """
    if not short_sides:
        return 224
    median = statistics.median(short_sides)
    if median <= SMALL_INPUT_MAX_SIZE:
        return max(16, int(-(-median // 4) * 4))
    for size in INPUT_SIZES:
        if median <= size:
            return size
    return INPUT_SIZES[-1]


#: Training batch for small images (up to 64 px) on a CUDA GPU; see :func:`default_batch_size`.
CUDA_SMALL_IMAGE_BATCH_SIZE = 256


def default_batch_size(device: torch.device, input_size: int, num_images: int) -> int:
    """256 on a GPU, CUDA or Apple (128 above 160 px), 128 on a CPU; never more than half the images, at least 2.

    Small images on a CUDA GPU: a step's cost there is the host's, not the card's (a SimCLR step of the
    small-image defaults runs about 3,500 operations, 13-20 ms of host time whatever the batch), so a larger
    batch trains more images a second but not more steps, and past 256 the extra images did not pay.
    One H200 (2026-11-27, fourteenth session; Fashion-MNIST benchmark split, the defaults of that day: quarter-width
    ResNet-18, 20 px views, the last fifth at 28 px; ``max_time`` 60 s), kNN top-1 k=200 / k=20 as returned
    (before whitening), steady training images/s:

    ========  ======  =====================================  ===============
    batch     epochs  kNN as returned (before whitening)      images/s
    ========  ======  =====================================  ===============
    128       30      0.886 / 0.8875 (0.854 / 0.8755)         6,060
    **256**   72, 56  **0.894 / 0.895, 0.893 / 0.8925**       15,915, 12,535
                      (0.8655 / 0.8815, 0.8675 / 0.8815)
    512       112     0.883 / 0.890 (0.8605 / 0.8795)         26,745
    1024      255     0.8855 / 0.884 (0.861 / 0.8765)         54,312
    ========  ======  =====================================  ===============

    The tenth session had chosen 1024 with the former GPU recipe (ResNet-18 width 1, 28 px views), where 256 and
    1024 tied (0.870 / 0.872 against 0.8715 / 0.8815).
    """
    if device.type == "cuda" and input_size <= SMALL_INPUT_MAX_SIZE:
        size = CUDA_SMALL_IMAGE_BATCH_SIZE
    elif device.type in GPU_TYPES:
        size = 256 if input_size <= 160 else 128
    else:
        size = 128
    return max(2, min(size, num_images // 2 if num_images >= 4 else num_images))


def cpu_count() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cache_image_size(input_size: int) -> int:
    """Side of the decoded images kept in the cache: the input size for small inputs (<= 64 px),
    else 8/7 of it (256 px for 224), the usual margin that lets crops at scale 1 down-sample a little."""
    return input_size if input_size <= SMALL_INPUT_MAX_SIZE else int(round(input_size * 8 / 7))


def default_num_workers(device: torch.device, num_images: int = 0, input_size: int = 224, cached: bool = False) -> int:
    """Data-loading processes.

    * CUDA GPU: one per spare CPU core, at most 16. The first epoch decodes every image into the cache: on an
      H200 with 8 workers of 16 cores (4,096 photos, ResNet-50 at 224 px) it took 4.3-4.55 s against 2.6 s for
      the next ones. With 15 (fourteenth session, same card and set) it still took 4.4-5.1 s against 2.6-2.8 s:
      more workers did not shorten it, so decoding is not what the first epoch waits for.
    * Apple's MPS: one per spare CPU core, at most 8. On macOS workers start by ``spawn`` (slower to start, so
      they persist across epochs).
    * CPU training with the decoded-image cache and a set that fits in it: 0. Each file is
      decoded once, in the first epoch; after that a batch is a memory copy, and worker
      processes would only take cores from the model.
    * Otherwise on a CPU: a quarter of the cores (at least 1 when there are 2 or more).
    """
    cores = cpu_count()
    if device.type == "cuda":
        return max(0, min(16, cores - 1))
    if device.type in GPU_TYPES:
        return max(0, min(8, cores - 1))
    if cached:
        if num_images * 3 * cache_image_size(input_size) ** 2 <= default_cache_bytes():
            return 0
    return max(0 if cores < 2 else 1, cores // 4)


def default_embed_workers(device: torch.device) -> int:
    """Data-loading processes for embedding: on a CUDA GPU every core but the main process's; else as for training
    on a GPU; on a CPU a quarter of the cores.

    * CUDA: embedding photos is bound by reading and decoding (the issue-11 measurement: 8 workers of 16 cores
      kept a ResNet-50 at half the peer's speed), so every core works: readers for the JPEGs the GPU decodes
      (:mod:`easyssl.inference.device_decode`), PIL decoders for other files.
    * CPU: none up to 3 cores: the forward pass needs every core, and decoding a batch in the
      main process costs less than the cores a worker takes (measured on 2 cores, ResNet-18 at
      32 px in bf16: 508 images/s with no worker, 473 with one).
    """
    if device.type == "cuda":
        return max(0, cpu_count() - 1)
    if device.type in GPU_TYPES:
        return default_num_workers(device)
    return cpu_count() // 4


#: Fewest CPU cores at which JPEG folders are embedded with PIL in loader workers rather than decoded on the GPU.
PIL_DECODE_MIN_CORES = 8


def default_device_decode(device: torch.device) -> bool:
    """Whether ``embed_images`` decodes a folder's JPEGs on the GPU (nvJPEG) rather than with PIL in loader workers:
    on a CUDA device with fewer than ``PIL_DECODE_MIN_CORES`` cores.

    One H200, 16 cores (issue 11, 2026-11-27; 10,000 JPEG photos, ResNet-50 at 224 px, the whole call): 1,221
    images/s decoding on the GPU (nvJPEG leaves entropy decoding to one CPU thread), 1,415 with PIL in 15 workers.
    A core decodes and resizes about 340 such photos a second, so the crossover near 8 cores is estimated, not measured.
    """
    return device.type == "cuda" and cpu_count() < PIL_DECODE_MIN_CORES


def default_learning_rate(base_lr: float, batch_size: int) -> float:
    """``base_lr * batch_size / 256`` up to 256 images (the linear scaling rule, Goyal et al., 2017), and
    ``base_lr * sqrt(batch_size / 256)`` above (the square-root rule, which SimCLR's paper found better for
    short training: Chen et al., 2020, appendix B.1). Every default batch is at most 256; the rule above it
    serves batches users set.

    One H200 (2026-11-27, tenth session), Fashion-MNIST benchmark split, ``max_time`` 60 s at a batch of 1024 (the
    CUDA small-image default of that day): SGD at 1.0 (square root) gave 0.854 / 0.8695 kNN top-1 (k=200 / k=20)
    before whitening against 0.832 / 0.856 at 2.0 (linear), and a tie as returned.
    """
    if batch_size <= 256:
        return base_lr * batch_size / 256
    return base_lr * math.sqrt(batch_size / 256)


def default_embed_batch_size(device: torch.device) -> int:
    """Images per forward pass when embedding: 256, on a GPU and on a CPU.

    Larger batches no longer speed up a CPU. On a GPU one loader worker prepares a whole batch (512 photos: 1.5 s
    at 3 ms each; 10,000 photos, 15 workers: two rounds where 1.3 would do): 256 halves the first wait and the idle
    tail, and still fills an H100-class card with a ResNet-50 at 224 px.
    """
    return 256
