"""The three-line API: ``train_embedding_model``, ``embed_images`` and ``train_model_and_embed_images``.

Wiring only: the config comes from :mod:`easyssl.config`, the loop from :mod:`easyssl.train`,
the embedding from :mod:`easyssl.inference`.
"""

from __future__ import annotations

import copy
import datetime
import os
import time
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader

import easyssl.defaults as defaults
from easyssl.config import AUTO, default_config, describe_training, eval_transform, merge_config, resolve_auto, view_config
from easyssl.data import CachedImageDataset, MultiViewCollate, SSLDataset, open_dataset, warn_skipped
from easyssl.data.images import max_image_pixels
from easyssl.inference import Embedder, EmbeddingStreamWriter, load_model
from easyssl.inference.checks import warn_if_other_input_size
from easyssl.methods import build_model, get_method
from easyssl.nn.external import describe_backbone, resumed_backbone
from easyssl.runtime import distributed
from easyssl.runtime.device import resolve_device
from easyssl.runtime.rng import RandomStreams
from easyssl.runtime.spawn import safe_num_workers
from easyssl.train import SelfSupervisedEmbedding, WarmupCosineSchedule, build_optimizer, calibration_loader
from easyssl.train.live_eval import build_live_evaluation
from easyssl.train.resume import resume_from as resume_from_checkpoint
from easyssl.transforms import FinalSizeViews

__all__ = [
    "StreamedEmbeddings",
    "TrainingRun",
    "build_training",
    "default_config",
    "embed_images",
    "last_skipped_files",
    "load_model",
    "merge_config",
    "stream_embeddings",
    "train_embedding_model",
    "train_model_and_embed_images",
]


def _init_distributed(device: Any = AUTO) -> bool:
    """Join the process group of a ``torchrun`` launch (gloo on CPUs or with device='cpu', nccl on GPUs)."""
    backend = "gloo" if str(device).startswith("cpu") else None
    return distributed.init_from_env(backend=backend)


def _dataset(input_dir: str | os.PathLike | None, dataset: Any, transform: Any) -> SSLDataset:
    """The images to train on or embed: a copy of an :class:`SSLDataset` with ``transform``, any other
    map-style dataset wrapped, or the folder ``input_dir`` (images or videos)."""
    if dataset is not None:
        if isinstance(dataset, SSLDataset):
            wrapped = copy.copy(dataset)
            wrapped.transform = transform
            return wrapped
        return SSLDataset.from_torch_dataset(dataset, transform=transform)
    if input_dir is None:
        raise ValueError("pass input_dir='path/to/images' (a folder of images) or dataset=<a torchvision dataset>")
    return open_dataset(input_dir, transform=transform)


def _build_loader(dataset: Any, loader: dict[str, Any], seed: int) -> DataLoader:
    """The training loader; its shuffling generator is its own, seeded with ``seed`` (and saved in checkpoints)."""
    batch_size, workers = int(loader["batch_size"]), safe_num_workers(int(loader["num_workers"]))  # 0 for an unguarded script under spawn
    shuffle, drop_last = bool(loader["shuffle"]), bool(loader["drop_last"])
    sampler = None
    if distributed.is_distributed():
        sampler = torch.utils.data.DistributedSampler(dataset, shuffle=shuffle, drop_last=drop_last, seed=seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        drop_last=drop_last and len(dataset) > batch_size,
        num_workers=workers,
        pin_memory=bool(loader["pin_memory"]),
        persistent_workers=bool(loader["persistent_workers"]) and workers > 0,
        collate_fn=MultiViewCollate(),
        generator=torch.Generator().manual_seed(seed),
    )


def train_embedding_model(
    input_dir: str | os.PathLike | None = None,
    *,
    method: str = "simclr",
    dataset: Any = None,
    **config: Any,
) -> str:
    """Train a self-supervised embedding model on a folder of images and return the checkpoint's path.

    Training never reads labels. Everything has a default chosen from the data and the
    hardware (see :mod:`easyssl.defaults`); override any of it with nested dicts:

    Args:
        input_dir: Folder of images (flat, or class sub-folders — used for evaluation only).
        method: SSL method, one of :func:`easyssl.available_methods` (``"simclr"``...).
        dataset: Instead of ``input_dir``, any map-style dataset of ``(image, target)``.
        **config: ``model={"backbone": "resnet-50", "width": 1.0, ...}`` (``backbone`` may also be any
            ``nn.Module``, ``"timm/<name>"`` or ``"torchvision/<name>"``, see :mod:`easyssl.nn.external`;
            ``"weights": "file.pth"`` starts it from weights, see :mod:`easyssl.nn.weights`),
            ``criterion={...}`` (the loss's arguments), ``optimizer={"name": "sgd"|"adamw"|"lars",
            "lr": ..., "base_lr": ..., "weight_decay": ..., "momentum": ... (sgd and lars only), "warmup": fraction}``,
            ``collate={"input_size": 64, "min_scale": 0.2, ...}`` (the view transform's arguments),
            ``loader={"batch_size": 256, "num_workers": 4, ...}``,
            ``trainer={"max_epochs": 100 (or unlimited when max_time or max_steps is given), "max_steps": None, "max_time": "00:00:10:00",
            "device": "auto", "precision": "auto", "compile": False, "progress_bar": True}``,
            ``checkpoint_dir="runs/x"`` (default ``easyssl_runs/<date_time>``),
            ``evaluation={"knn_dir": "val/", "every": 1, "k": 200}`` (kNN top-1 on a labelled folder during
            training, see :mod:`easyssl.train.live_eval`; its labels never reach training),
            ``resume=True`` (continue the run in ``checkpoint_dir``), ``seed=1``.
            An unknown key raises ``ValueError`` naming it and the valid keys.

    Returns:
        Path of the final checkpoint (``<checkpoint_dir>/last.ckpt``), which
        :func:`embed_images` needs and nothing else.

    Example:
        >>> checkpoint = train_embedding_model(input_dir="my/images/", trainer={"max_epochs": 10})
    """
    started_at = time.perf_counter()  # max_time counts from here: scan, model build and cache fill included
    run = build_training(input_dir, method=method, dataset=dataset, **config)
    trainer_cfg = run.config["trainer"]
    path = run.trainer.train_embedding(
        max_epochs=trainer_cfg["max_epochs"],
        max_steps=trainer_cfg["max_steps"],
        max_time=trainer_cfg["max_time"],
        checkpoint_dir=run.config["checkpoint_dir"],
        resume_from=run.resume_from,
        progress_bar=bool(trainer_cfg["progress_bar"]),
        started_at=started_at,
    )
    return path  # type: ignore[return-value]


class TrainingRun:
    """What :func:`build_training` assembles: the resolved config, the dataset and the trainer."""

    def __init__(self, config: dict[str, Any], dataset: SSLDataset, trainer: SelfSupervisedEmbedding, resume_from: str | None) -> None:
        self.config = config
        self.dataset = dataset
        self.trainer = trainer
        self.resume_from = resume_from


def build_training(input_dir: str | os.PathLike | None = None, *, method: str = "simclr", dataset: Any = None, **overrides: Any) -> TrainingRun:
    """Resolve the config and build dataset, loader, model, loss, optimiser and trainer without training.

    Takes the same arguments as :func:`train_embedding_model`; useful to inspect what
    would run (``build_training("imgs/").config``) or to drive the trainer yourself.

    The run is reproducible from ``seed`` (plus the rank under ``torch.distributed``) without
    reseeding the process: the model is initialised, and the trainer draws, from random
    streams of their own (:class:`~easyssl.runtime.rng.RandomStreams`), so Python's, NumPy's
    and torch's global random state are left as they were. A ``resume=True`` run joins the
    process group of a ``torchrun`` launch, as any call does under ``torchrun``.
    """
    config = merge_config(method, overrides)
    spec = get_method(config["method"])
    _init_distributed(config["trainer"]["device"])
    given_backbone, width_given = config["model"]["backbone"], config["model"]["width"] != AUTO or config["model"]["backbone"] == AUTO
    resume_from = resume_from_checkpoint(config, spec.name)
    config["model"]["backbone"] = resumed_backbone(config["model"]["backbone"], given_backbone)  # a custom module, passed again
    if not config["checkpoint_dir"]:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        config["checkpoint_dir"] = distributed.broadcast_object(os.path.join("easyssl_runs", stamp))  # one folder for all ranks
    config["checkpoint_dir"] = os.fspath(config["checkpoint_dir"])
    seed = int(config["seed"])
    streams = RandomStreams(seed + distributed.rank())

    trainer_cfg = config["trainer"]
    device = resolve_device(trainer_cfg["device"])
    data = _dataset(input_dir, dataset, None)
    with streams.active():
        config = resolve_auto(config, spec, data, device)
        data.max_image_pixels = config["loader"]["max_image_pixels"]  # decompression-bomb guard, carried to loader workers
        collate, loader_cfg = config["collate"], config["loader"]
        batch_transform = None
        train_data: Any = data
        if loader_cfg["batch_augment"]:
            # Fast path: decode each image once into a shared-memory cache of fixed-size uint8
            # tensors; the views are made for whole batches on the training device.
            cache_bytes = None if loader_cfg["cache_bytes"] == AUTO else int(loader_cfg["cache_bytes"])
            train_data = CachedImageDataset(data, defaults.cache_image_size(int(collate["input_size"])), cache_bytes)
            batch_transform = spec.batch_transform(**view_config(collate)).to(device)  # type: ignore[misc]
            if collate["final_size_fraction"] > 0:  # the last part of training at the embedding size (defaults' rule)
                batch_transform = FinalSizeViews(batch_transform, int(collate["input_size"]), float(collate["final_size_fraction"]))
        else:
            data.transform = spec.transform(**view_config(collate))
        loader = _build_loader(train_data, loader_cfg, seed)
        model = build_model(spec, config["model"], input_size=int(collate["input_size"]), load_weights=resume_from is None)
        config["model"]["backbone"] = describe_backbone(config["model"]["backbone"])  # configs hold names, not modules
        criterion = spec.criterion(**config["criterion"])
        opt = config["optimizer"]
        optimizer = build_optimizer(model, opt["name"], lr=float(opt["lr"]), weight_decay=float(opt["weight_decay"]), momentum=opt["momentum"])
        trainer = SelfSupervisedEmbedding(
            model,
            criterion,
            optimizer,
            loader,
            lr_schedule=WarmupCosineSchedule(warmup=float(opt["warmup"])),
            batch_transform=batch_transform,
            config=config,
            device=device,
            precision=trainer_cfg["precision"],
            compile=bool(trainer_cfg["compile"]),
            cuda_graphs=trainer_cfg.get("cuda_graphs", AUTO),
            sync_batchnorm=bool(trainer_cfg.get("sync_batchnorm", False)),
            calibration_loader=calibration_loader(data, eval_transform(config), seed, device, cache=train_data if batch_transform else None),
            live_evaluation=build_live_evaluation(config["evaluation"], open_dataset, eval_transform(config)),  # labels: eval folder only
            seed=streams,
        )
    # logged by train_embedding once it holds the run folder (a refused run describes nothing)
    trainer.run_description = describe_training(config, len(data), device, trainer.precision, getattr(model.backbone, "num_features", None), width_given)
    if trainer.channels_last:  # a model of our own: its weights take the input batches' layout too
        trainer.model.to(memory_format=torch.channels_last)
    return TrainingRun(config, data, trainer, resume_from)


def _embedder_and_data(input_dir, checkpoint, dataset, batch_size, num_workers, device, precision, backbone=None) -> tuple[Embedder, SSLDataset]:
    """The checkpoint's :class:`~easyssl.inference.Embedder` and the images to embed, with its evaluation transform."""
    if checkpoint is None:
        raise ValueError("pass checkpoint=<path of the .ckpt file returned by train_embedding_model>")
    _init_distributed(device)
    data = _dataset(input_dir, dataset, None)  # a bad folder fails in one line before the model loads (and warns)
    embedder = Embedder.from_checkpoint(checkpoint, device=device, precision=precision, batch_size=batch_size, num_workers=num_workers,
                                        backbone=backbone)
    data.transform = embedder.transform
    data.reset_skipped()
    data.max_image_pixels = max_image_pixels(getattr(data, "max_image_pixels", AUTO))  # pinned here for spawned workers
    if distributed.is_main_process():
        warn_if_other_input_size(embedder.config, data)
    return embedder, data


def embed_images(
    input_dir: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    *,
    dataset: Any = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    device: str | torch.device = AUTO,
    precision: str = AUTO,
    progress_bar: bool = True,
    return_skipped: bool = False,
    whiten: bool = True,
    backbone: Any = None,
) -> tuple[np.ndarray, list[int], list[str]]:
    """Embed every image of a folder with a checkpoint from :func:`train_embedding_model`.

    Files that cannot be read (corrupt, truncated, empty) are skipped with a warning that
    names them: the result holds only the images embedded (``filenames`` says which), and
    the skipped names are returned with ``return_skipped=True`` and by :func:`last_skipped_files`.

    Under ``torchrun`` (or any initialised ``torch.distributed`` group) every process embeds
    a contiguous shard and every process returns the whole result, in the order a single
    process gives.

    Args:
        input_dir: Folder of images (labels from class sub-folders, as in training), or of videos.
        checkpoint: Path of the ``.ckpt`` file, or the run folder that holds it (its ``last.ckpt``); the model is rebuilt from it alone.
        dataset: Instead of ``input_dir``, a map-style dataset of ``(image, target)``.
        batch_size: Images per forward pass (default: see :func:`easyssl.defaults.default_embed_batch_size`).
        num_workers: Data-loading processes (default: see :func:`easyssl.defaults.default_embed_workers`).
        device: ``"auto"`` (CUDA, else an Apple GPU, else the CPU), ``"cpu"``, ``"cuda"``, ``"mps"``...
        precision: ``"auto"`` (bf16 on CUDA and on CPUs with bf16 instructions), ``"32"``, ``"bf16"``.
        progress_bar: Show a progress bar (on rank 0 only).
        return_skipped: Also return the list of skipped filenames, as a fourth element.
        whiten: Centre and whiten the features with the training images' statistics saved
            in the checkpoint (the default; see :func:`easyssl.calibrate_embeddings`).
            ``False`` returns the model's own features (the backbone's, through SimCLR's BatchNorm where
            ``model.feature_norm`` is on).
        backbone: Only for a checkpoint trained with a backbone module of your own
            (``model={"backbone": module}``): a fresh module of that architecture (the weights come
            from the checkpoint); see :func:`~easyssl.inference.load_model`.

    Returns:
        ``(embeddings, labels, filenames)``: float32 ``(N, D)`` array, ``N`` labels, ``N``
        filenames relative to ``input_dir``, in sorted filename order (and ``skipped``
        with ``return_skipped=True``). For sets too large for memory, see :func:`stream_embeddings`.

    Example:
        >>> embeddings, labels, filenames = embed_images(input_dir="my/images/", checkpoint=checkpoint)
    """
    embedder, data = _embedder_and_data(input_dir, checkpoint, dataset, batch_size, num_workers, device, precision, backbone)
    show = progress_bar and distributed.is_main_process()
    embeddings, labels, filenames = embedder.embed(embedder.loader(data), show, whiten)
    local_skipped = data.skipped_files()
    if distributed.is_distributed():
        parts = distributed.all_gather_object((embeddings, labels, filenames, local_skipped))
        arrays = [p[0] for p in parts if p[0].size]
        embeddings = np.concatenate(arrays) if arrays else np.zeros((0, 0), dtype=np.float32)
        labels = [label for p in parts for label in p[1]]
        filenames = [name for p in parts for name in p[2]]
        local_skipped = [name for p in parts for name in p[3]]
    skipped = _report_skipped(data, local_skipped)
    if return_skipped:
        return embeddings, labels, filenames, skipped  # type: ignore[return-value]
    return embeddings, labels, filenames


#: Files skipped by the last embed_images / stream_embeddings call of this process.
_LAST_SKIPPED: list[str] = []


def last_skipped_files() -> list[str]:
    """Names of the files the last :func:`embed_images` or :func:`stream_embeddings` call of this process skipped (unreadable).

    Every call replaces the list (it is one per process, shared by all threads): to keep the
    names of a given call, prefer ``embed_images(..., return_skipped=True)`` or the
    ``skipped`` field of :func:`stream_embeddings`' result.
    """
    return list(_LAST_SKIPPED)


def _report_skipped(data: SSLDataset, names: list[str]) -> list[str]:
    order = {name: i for i, name in enumerate(data.filenames)} if len(names) > 1 else {}
    skipped = sorted(set(names), key=lambda name: (order.get(name, -1), name))
    _LAST_SKIPPED[:] = skipped
    if skipped and distributed.is_main_process():
        warn_skipped(skipped, "read; they are left out of the embeddings")
    return skipped


class StreamedEmbeddings(NamedTuple):
    """What :func:`stream_embeddings` wrote: the file, its number of rows and columns, and the files skipped."""

    path: str
    count: int
    dim: int
    skipped: list[str]


def stream_embeddings(
    input_dir: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    output: str | os.PathLike = "embeddings.npz",
    *,
    dataset: Any = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    device: str | torch.device = AUTO,
    precision: str = AUTO,
    progress_bar: bool = True,
    whiten: bool = True,
    backbone: Any = None,
) -> StreamedEmbeddings:
    """Embed a folder of any size straight into a ``.npz`` or ``.csv`` file, holding one batch in memory at a time.

    Same arguments as :func:`embed_images`, plus ``output``; the file has the layout of
    :func:`easyssl.save_embeddings` (read it with :func:`easyssl.load_embeddings`, or
    ``np.load(path, mmap_mode=...)`` after unzipping) and rows in the order of
    :func:`embed_images`. Batches go to temporary files next to ``output`` and are
    assembled at the end, then renamed into place. Under ``torchrun`` every process embeds
    a shard and rank 0 assembles the file (``output`` must then be on a filesystem every
    process sees). Unreadable files are skipped, warned about, and listed in the result.

    Example:
        >>> result = stream_embeddings("huge/folder/", checkpoint, output="huge.npz", batch_size=512)
        >>> result.count, result.skipped
    """
    embedder, data = _embedder_and_data(input_dir, checkpoint, dataset, batch_size, num_workers, device, precision, backbone)
    token = distributed.broadcast_object(os.urandom(6).hex())
    writer = EmbeddingStreamWriter(output, rank=distributed.rank(), world_size=distributed.world_size(), token=token,
                                   training_steps=embedder.training_steps)  # recorded in a .npz
    try:
        show = progress_bar and distributed.is_main_process()
        for embeddings, labels, filenames in embedder.iter_embeddings(embedder.loader(data), show, whiten):
            writer.write(embeddings, labels, filenames)
    except BaseException:
        writer.abort()
        raise
    summaries = distributed.all_gather_object(writer.finish_part())
    skipped_parts = distributed.all_gather_object(data.skipped_files())
    path = os.fspath(output)
    if distributed.is_main_process():
        path = writer.assemble(summaries)
    distributed.barrier()
    skipped = _report_skipped(data, [name for part in skipped_parts for name in part])
    dims = [s["dim"] for s in summaries if s["count"]]
    return StreamedEmbeddings(path, sum(int(s["count"] or 0) for s in summaries), int(dims[0]) if dims else 0, skipped)


def train_model_and_embed_images(
    input_dir: str | os.PathLike | None = None, *, method: str = "simclr", dataset: Any = None, **config: Any
) -> tuple[np.ndarray, list[int], list[str]]:
    """Train on ``input_dir`` (see :func:`train_embedding_model`), then embed it; returns ``(embeddings, labels, filenames)``."""
    checkpoint = train_embedding_model(input_dir, method=method, dataset=dataset, **config)
    progress = (config.get("trainer") or {}).get("progress_bar", True)
    module = (config.get("model") or {}).get("backbone")  # a module of the user's own: the checkpoint names, not holds, it
    return embed_images(input_dir, checkpoint, dataset=dataset, progress_bar=progress, backbone=module if isinstance(module, torch.nn.Module) else None)
