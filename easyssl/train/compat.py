"""What :class:`~easyssl.train.SelfSupervisedEmbedding` does for the component flow LightlySSL users know.

LightlySSL's tutorial builds the pieces by hand (``DataLoader(LightlyDataset(...),
collate_fn=ImageCollateFunction(...))``, ``SelfSupervisedEmbedding(model, criterion, optimizer,
dataloader)``), trains with ``train_embedding(gpus=1, max_epochs=10)``, embeds with
``embed(DataLoader(dataset, batch_size=1))`` and expects a checkpoint on disk. The trainer
keeps its own loop and calls these helpers at four points:

* :func:`check_training_loader` (construction): a view *transform* passed as ``collate_fn``
  is an error that says what to pass, instead of a failure deep in the first step;
* :func:`before_training` (``train_embedding``): ``gpus`` (use the GPU when there is one, else
  say so once and use the CPU), the default run folder ``easyssl_runs/<date_time>/``, and loader
  workers that would re-run an unguarded script (:mod:`easyssl.runtime.spawn`);
* :func:`view_settings` (checkpoints): the training views' input size and normalisation, so
  that a checkpoint of a hand-built trainer can be embedded with its evaluation transform;
* :func:`embedding_loader` (``embed``): a loader over a dataset without transform (PIL images,
  which PyTorch's default collate cannot batch) embeds with that evaluation transform.
"""

from __future__ import annotations

import copy
import datetime
import os
from typing import Any

import torch
from torch.utils.data import DataLoader, default_collate
from torchvision import transforms as v1
from torchvision.transforms import v2

from easyssl.config import eval_transform
from easyssl.data.collate import MultiViewCollate
from easyssl.data.dataset import SSLDataset
from easyssl.data.lightly_compat import MultiViewCollateFunction
from easyssl.runtime import distributed
from easyssl.runtime.checkpoint import LAST_CHECKPOINT
from easyssl.runtime.device import resolve_device, resolve_precision
from easyssl.runtime.log import logger
from easyssl.runtime.spawn import safe_num_workers
from easyssl.train.optim import WarmupCosineSchedule

__all__ = ["AUTO_RUN_DIR", "RUNS_FOLDER", "before_training", "check_training_loader", "default_run_dir", "embedding_loader",
           "guard_loader_workers", "schedules", "view_settings"]

#: ``checkpoint_dir``'s default: a new folder :func:`default_run_dir` (None: write no checkpoint).
AUTO_RUN_DIR = "auto"
#: The folder that holds the run folders of runs given no ``checkpoint_dir``.
RUNS_FOLDER = "easyssl_runs"

#: Whether "no GPU: training on the CPU" was said in this process (it is said once).
_said_no_gpu: list[bool] = []


def default_run_dir() -> str:
    """A new run folder ``easyssl_runs/<date_time>`` (``-2``, ``-3``... when that name is taken), the same on every rank."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    path, n = os.path.join(RUNS_FOLDER, stamp), 1
    while os.path.exists(path):
        n += 1
        path = os.path.join(RUNS_FOLDER, f"{stamp}-{n}")
    return distributed.broadcast_object(path)


def check_training_loader(loader: Any) -> Any:
    """``loader``, after checking that its ``collate_fn`` batches items (a view transform there fails only at the first step)."""
    collate = getattr(loader, "collate_fn", None)
    if _is_transform(collate):
        name = type(collate).__name__
        raise TypeError(
            f"collate_fn={name}(...) is a transform of one image, not a collate function of a batch: give it to the dataset "
            f"(LightlyDataset(input_dir, transform={name}(...)) or SSLDataset(...)) and pass collate_fn=easyssl.data.MultiViewCollate(), "
            "or pass a collate function that makes the views, e.g. collate_fn=easyssl.data.SimCLRCollateFunction(input_size=...)"
        )
    return loader


def _is_transform(fn: Any) -> bool:
    """An easyssl or torchvision image transform (easyssl's LightlySSL-style collate functions are not)."""
    if fn is None or isinstance(fn, MultiViewCollateFunction):
        return False
    return type(fn).__module__.startswith(("easyssl.transforms", "torchvision.transforms"))


def schedules(lr_schedule: Any, scheduler: Any) -> tuple[Any, Any]:
    """The trainer's ``(lr_schedule, scheduler)``: ``"default"`` is :class:`~easyssl.train.WarmupCosineSchedule`; a
    ``torch.optim.lr_scheduler`` given in ``lr_schedule``'s place (LightlySSL's fifth argument is ``scheduler``) is the scheduler."""
    if isinstance(lr_schedule, torch.optim.lr_scheduler.LRScheduler) and scheduler is None:
        return None, lr_schedule
    return (WarmupCosineSchedule() if isinstance(lr_schedule, str) and lr_schedule == "default" else lr_schedule), scheduler


def guard_loader_workers(loader: Any) -> Any:
    """``loader`` with its workers turned off when they would re-run an unguarded script (see :mod:`easyssl.runtime.spawn`)."""
    workers = int(getattr(loader, "num_workers", 0) or 0)
    if workers > 0 and safe_num_workers(workers, getattr(loader, "multiprocessing_context", None)) == 0:
        loader.num_workers = 0
    return loader


def before_training(trainer: Any, gpus: int | None, checkpoint_dir: Any) -> str | None:
    """Apply ``gpus`` and the spawn guard to ``trainer``, and return the checkpoint folder: ``checkpoint_dir``,
    a new :func:`default_run_dir` for ``"auto"``, None for None."""
    if trainer.dataloader is None:
        raise ValueError("this SelfSupervisedEmbedding has no dataloader to train on")
    if gpus is not None:
        _use_gpus(trainer, int(gpus))
    guard_loader_workers(trainer.dataloader)
    if trainer.calibration_loader is not None:
        guard_loader_workers(trainer.calibration_loader)
    if checkpoint_dir is None:
        return None
    if str(checkpoint_dir) == AUTO_RUN_DIR:
        checkpoint_dir = default_run_dir()
        if distributed.is_main_process():
            logger.warning(f"easyssl: checkpoints go to {os.path.abspath(checkpoint_dir)} (pass checkpoint_dir=... to choose)")
    trainer.checkpoint = os.path.join(os.fspath(checkpoint_dir), LAST_CHECKPOINT)  # LightlySSL's attribute: the checkpoint's path
    return os.fspath(checkpoint_dir)


def _use_gpus(trainer: Any, gpus: int) -> None:
    """``gpus`` as LightlySSL's (PyTorch Lightning's) argument: 0 trains on the CPU; 1 or more on the GPU when there is one,
    else on the CPU, said once. Several GPUs are used by launching with torchrun (one process per GPU)."""
    if gpus <= 0:
        target = torch.device("cpu")
    else:
        target = trainer.device if trainer.device.type != "cpu" else resolve_device("auto")
        if target.type == "cpu" and not _said_no_gpu:
            _said_no_gpu.append(True)
            logger.warning(f"easyssl: gpus={gpus} but there is no GPU: training on the CPU")
        elif gpus > 1 and not distributed.is_distributed() and distributed.is_main_process():
            logger.warning(f"easyssl: gpus={gpus}: this process trains on one GPU; launch with torchrun --nproc_per_node={gpus} for {gpus}")
    if target == trainer.device or distributed.is_distributed():
        return
    trainer.device = target
    trainer.precision = resolve_precision("auto", target)
    for part in (trainer.model, trainer.criterion, trainer.batch_transform):
        if hasattr(part, "to"):
            part.to(target)
    for state in trainer.optimizer.state.values():  # momentum buffers of an earlier train_embedding call
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                state[key] = value.to(target)


def view_settings(trainer: Any) -> dict[str, Any] | None:
    """``{"input_size", "normalize"}`` of the training views of a trainer built by hand (None when it has a config,
    which says them, or when neither its collate function nor its dataset's transform says the size)."""
    if trainer.config is not None:
        return None
    loader = trainer.dataloader
    for source in (getattr(loader, "collate_fn", None), getattr(getattr(loader, "dataset", None), "transform", None)):
        size = getattr(source, "input_size", None)
        if isinstance(size, int) and size > 0:
            return {"input_size": size, "normalize": source.normalize if hasattr(source, "normalize") else _normalize(source)}
    return None


def _normalize(transform: Any, depth: int = 0) -> dict[str, Any] | None:
    """The ``{"mean", "std"}`` of the first ``Normalize`` step inside a (composed, multi-view) transform, or None."""
    if isinstance(transform, (v1.Normalize, v2.Normalize)):
        return {"mean": tuple(float(x) for x in transform.mean), "std": tuple(float(x) for x in transform.std)}
    if depth > 4:
        return None
    inner = getattr(transform, "transforms", None) or [getattr(transform, "transform", None)]
    for step in inner if isinstance(inner, (list, tuple)) else []:
        found = _normalize(step, depth + 1) if step is not None else None
        if found is not None:
            return found
    return None


def embedding_loader(trainer: Any, loader: DataLoader) -> DataLoader:
    """``loader``, or, when its dataset has no transform and PyTorch's default collate (the PIL images could not be
    batched), a loader over a copy of the dataset with the training views' evaluation transform."""
    guard_loader_workers(loader)
    dataset = getattr(loader, "dataset", None)
    if not isinstance(dataset, SSLDataset) or dataset.transform is not None or loader.collate_fn is not default_collate:
        return loader
    settings = view_settings(trainer) or _config_settings(trainer.config)
    if settings is None:
        raise TypeError(
            "the loader's dataset has no transform, so its items are PIL images: set dataset.transform = "
            "easyssl.EvalTransform(input_size=<the training size>)"
        )
    images = copy.copy(dataset)
    images.transform = eval_transform({"collate": settings})
    return DataLoader(images, batch_size=loader.batch_size or 1, shuffle=False, num_workers=loader.num_workers,
                      collate_fn=MultiViewCollate())


def _config_settings(config: Any) -> dict[str, Any] | None:
    collate = (config or {}).get("collate") if isinstance(config, dict) else None
    if isinstance(collate, dict) and isinstance(collate.get("input_size"), int):
        return {"input_size": collate["input_size"], "normalize": collate.get("normalize")}
    return None
