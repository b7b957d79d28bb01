"""Training: the loop (:class:`SelfSupervisedEmbedding`), the whitening of embeddings, optimisers and schedules.

Above :mod:`easyssl.inference` in the layer picture (docs/ARCHITECTURE.md): the whitening
pass and :meth:`SelfSupervisedEmbedding.embed` use its embedding loop.
"""

from easyssl.train.optim import LARS, WarmupCosineSchedule, build_optimizer, cosine_schedule, parameter_groups
from easyssl.train.trainer import LAST_CHECKPOINT, SelfSupervisedEmbedding, TrainStep
from easyssl.train.whitening import CALIBRATION_IMAGES, calibrate_embeddings, calibration_loader, fit_whitening

__all__ = [
    "CALIBRATION_IMAGES",
    "LARS",
    "LAST_CHECKPOINT",
    "SelfSupervisedEmbedding",
    "TrainStep",
    "WarmupCosineSchedule",
    "build_optimizer",
    "calibrate_embeddings",
    "calibration_loader",
    "cosine_schedule",
    "fit_whitening",
    "parameter_groups",
]
