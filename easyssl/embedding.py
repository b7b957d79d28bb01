"""A facade for users of ``easyssl.embedding`` (as LightlySSL users write it): re-exports only.

The trainer lives in :mod:`easyssl.train`, the embedding loop in :mod:`easyssl.inference`,
devices, precisions and time budgets in :mod:`easyssl.runtime`.
"""

from easyssl.inference.loop import embed_with, iter_embeddings
from easyssl.runtime.budget import TimeBudget, parse_max_time
from easyssl.runtime.device import BF16_CPU_FLAGS, autocast, cpu_has_bf16_matrix_units, resolve_device, resolve_precision
from easyssl.train.trainer import LAST_CHECKPOINT, SelfSupervisedEmbedding, TrainStep
from easyssl.train.whitening import CALIBRATION_IMAGES, calibrate_embeddings, fit_whitening

__all__ = [
    "BF16_CPU_FLAGS",
    "CALIBRATION_IMAGES",
    "LAST_CHECKPOINT",
    "SelfSupervisedEmbedding",
    "TimeBudget",
    "TrainStep",
    "autocast",
    "calibrate_embeddings",
    "cpu_has_bf16_matrix_units",
    "embed_with",
    "fit_whitening",
    "iter_embeddings",
    "parse_max_time",
    "resolve_device",
    "resolve_precision",
]
