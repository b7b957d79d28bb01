"""The three-line API: ``train_embedding_model``, ``embed_images`` and ``train_model_and_embed_images``."""

from __future__ import annotations

import copy
import datetime
import os
import random
import warnings
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader

from easyssl import defaults
from easyssl.runtime import distributed
from easyssl.checkpoint import CheckpointError, load_checkpoint
from easyssl.data.cache import CachedImageDataset
from easyssl.data.collate import MultiViewCollate
from easyssl.data.dataset import SSLDataset, warn_skipped
from easyssl.embedding import CALIBRATION_IMAGES, LAST_CHECKPOINT, SelfSupervisedEmbedding, embed_with, resolve_device, resolve_precision
from easyssl.methods import BACKBONE_KEYS, Method, build_model, get_method
from easyssl.optim import WarmupCosineSchedule, build_optimizer
from easyssl.transforms.base import IMAGENET_NORMALIZE, EvalTransform

AUTO = "auto"

#: The config sections and their keys that do not depend on the method.
_FIXED_SECTIONS: dict[str, dict[str, Any]] = {
    "optimizer": {"name": AUTO, "lr": AUTO, "base_lr": AUTO, "weight_decay": AUTO, "momentum": AUTO, "warmup": AUTO},
    "loader": {
        "batch_size": AUTO, "num_workers": AUTO, "shuffle": True, "drop_last": True, "pin_memory": AUTO, "persistent_workers": True,
        "batch_augment": AUTO, "cache_bytes": AUTO,
    },
    "trainer": {"max_epochs": AUTO, "max_steps": None, "max_time": None, "device": AUTO, "precision": AUTO, "compile": False, "progress_bar": True, "sync_batchnorm": False},
}
_SECTIONS = ("model", "criterion", "optimizer", "collate", "loader", "trainer")
_TOP_LEVEL = ("method", "checkpoint_dir", "resume", "seed") + _SECTIONS


#: Loss arguments that make a loss use the global batch under torch.distributed ("auto": on when distributed).
_GATHER_KEYS = ("gather_distributed", "sinkhorn_gather_distributed")


def _criterion_defaults(spec: Method) -> dict[str, Any]:
    """The method's loss arguments, plus ``gather_distributed="auto"`` when its loss takes that argument."""
    import inspect

    criterion = dict(spec.criterion_defaults)
    try:
        parameters = inspect.signature(spec.criterion).parameters
    except (TypeError, ValueError):
        parameters = {}
    for key in _GATHER_KEYS:
        if key in parameters and criterion.get(key, False) is False:
            criterion[key] = AUTO
    return criterion


def default_config(method: str = "simclr") -> dict[str, Any]:
    """The full default config of ``method``, with ``"auto"`` where the value is chosen from the data and hardware."""
    spec = get_method(method)
    return {
        "method": spec.name,
        "checkpoint_dir": None,
        "resume": False,
        "seed": 1,
        "model": {"backbone": AUTO, "width": AUTO, "small_input": None, **spec.model_defaults},
        "criterion": _criterion_defaults(spec),
        "optimizer": dict(_FIXED_SECTIONS["optimizer"]),
        "collate": {"input_size": AUTO, "normalize": IMAGENET_NORMALIZE, **spec.collate_defaults},
        "loader": dict(_FIXED_SECTIONS["loader"]),
        "trainer": dict(_FIXED_SECTIONS["trainer"]),
    }


def merge_config(method: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge user overrides into ``method``'s default config, rejecting unknown keys with the valid ones named."""
    config = default_config(method)
    for key, value in overrides.items():
        if key not in _TOP_LEVEL:
            raise ValueError(f"unknown config key {key!r}; valid keys are: {', '.join(_TOP_LEVEL)}")
        if key in _SECTIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ValueError(f"config section {key!r} must be a dict like {{'{next(iter(config[key]), 'key')}': ...}}, got {value!r}")
            for sub, sub_value in value.items():
                if sub not in config[key]:
                    raise ValueError(
                        f"unknown key {sub!r} in {key}={{...}} for method {config['method']!r}; "
                        f"valid keys are: {', '.join(sorted(config[key]))}"
                    )
                config[key][sub] = sub_value
        elif key != "method":
            config[key] = value
    return config


def _check_saved_config(config: Any, path: str) -> None:
    """Raise CheckpointError when a checkpoint's config names an unknown method or holds an unknown key."""
    if not isinstance(config, dict) or "method" not in config:
        raise CheckpointError(f"{path!r} has no easyssl config (no 'method'): it cannot be rebuilt or resumed")
    try:
        defaults_ = default_config(config["method"])
    except ValueError as error:
        raise CheckpointError(f"{path!r} was trained with an unknown method: {error}") from error
    for key, value in config.items():
        if key not in _TOP_LEVEL:
            raise CheckpointError(
                f"{path!r} has an unknown config key {key!r} (written by another easyssl version?); known keys: {', '.join(_TOP_LEVEL)}"
            )
        if key in _SECTIONS and value is not None:
            if not isinstance(value, dict):
                raise CheckpointError(f"{path!r} has a malformed config: section {key!r} is {type(value).__name__}, not a dict")
            unknown = sorted(set(value) - set(defaults_[key]))
            if unknown:
                raise CheckpointError(
                    f"{path!r} has unknown config key(s) {', '.join(map(repr, unknown))} in {key}={{...}} for method "
                    f"{defaults_['method']!r} (written by another easyssl version?); known keys: {', '.join(sorted(defaults_[key]))}"
                )
    collate = config.get("collate")
    if not isinstance(collate, dict) or not isinstance(collate.get("input_size"), int):
        raise CheckpointError(f"{path!r} has a malformed config: collate.input_size is missing or not an integer")


def _init_distributed(device: Any = AUTO) -> bool:
    """Join the process group of a ``torchrun`` launch (gloo on CPUs or with device='cpu', nccl on GPUs)."""
    backend = "gloo" if str(device).startswith("cpu") else None
    return distributed.init_from_env(backend=backend)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _dataset(input_dir: str | os.PathLike | None, dataset: Any, transform: Any) -> SSLDataset:
    if dataset is not None:
        if isinstance(dataset, SSLDataset):
            wrapped = copy.copy(dataset)
            wrapped.transform = transform
            return wrapped
        return SSLDataset.from_torch_dataset(dataset, transform=transform)
    if input_dir is None:
        raise ValueError("pass input_dir='path/to/images' (a folder of images) or dataset=<a torchvision dataset>")
    return SSLDataset(input_dir, transform=transform)


def _resolve_auto(config: dict[str, Any], spec: Method, dataset: SSLDataset, device: torch.device) -> dict[str, Any]:
    """Replace every ``"auto"`` in ``config`` by the value :mod:`easyssl.defaults` picks."""
    collate, model, optimizer, loader = config["collate"], config["model"], config["optimizer"], config["loader"]
    for key in _GATHER_KEYS:
        if config["criterion"].get(key) == AUTO:
            config["criterion"][key] = distributed.is_distributed()
    if collate["input_size"] == AUTO:
        is_files = bool(dataset.input_dir) and not hasattr(dataset, "videos")
        paths = [os.path.join(dataset.input_dir, f) for f in dataset.filenames] if is_files else []
        sides = defaults.image_short_sides(paths)
        if not paths:  # a wrapped dataset or video frames: look at the first images
            images = (_load_quietly(dataset, i) for i in range(min(16, len(dataset))))
            sides = [min(image.size) for image in images if image is not None]
        collate["input_size"] = defaults.default_input_size(sides)
    input_size = int(collate["input_size"])
    name, width = defaults.default_backbone(input_size, device)
    if model["backbone"] == AUTO and spec.model_defaults.get("backbone", AUTO) != AUTO:
        model["backbone"] = spec.model_defaults["backbone"]  # the method's own choice (MAE: a ViT)
    if model["backbone"] == AUTO:
        model["backbone"] = name
        if model["width"] == AUTO:
            model["width"] = width
    if model["width"] == AUTO:
        model["width"] = 1.0
    if model["small_input"] is None:
        from easyssl.models.backbones import SMALL_INPUT_MAX_SIZE

        model["small_input"] = input_size <= SMALL_INPUT_MAX_SIZE
    trainer = config["trainer"]
    if trainer["max_epochs"] == AUTO:  # 100 epochs, unless a step or time budget alone bounds training
        trainer["max_epochs"] = None if (trainer["max_time"] is not None or trainer["max_steps"] is not None) else 100
    if loader["batch_augment"] == AUTO:
        loader["batch_augment"] = spec.batch_transform is not None
    elif loader["batch_augment"] and spec.batch_transform is None:
        raise ValueError(f"loader={{'batch_augment': True}}: method {spec.name!r} has no batched augmentation; use False")
    if loader["batch_size"] == AUTO:
        loader["batch_size"] = defaults.default_batch_size(device, input_size, len(dataset))
    if loader["num_workers"] == AUTO:
        loader["num_workers"] = defaults.default_num_workers(device, len(dataset), input_size, bool(loader["batch_augment"]))
    if loader["pin_memory"] == AUTO:
        loader["pin_memory"] = device.type == "cuda"
    for key in ("name", "base_lr", "weight_decay", "momentum", "warmup"):
        if optimizer[key] == AUTO:
            optimizer[key] = spec.optimizer_defaults.get(key, {"name": "sgd", "base_lr": 0.1, "weight_decay": 0.0, "momentum": 0.9, "warmup": 0.0}[key])
    if optimizer["lr"] == AUTO:
        optimizer["lr"] = defaults.default_learning_rate(float(optimizer["base_lr"]), int(loader["batch_size"]))
    return config


def _load_quietly(dataset: SSLDataset, index: int) -> Any:
    """The untransformed image of item ``index``, or None when it cannot be read (reported when training reads it)."""
    try:
        return dataset.load(index)[0]
    except OSError:
        return None


def _build_loader(dataset: SSLDataset, loader: dict[str, Any], seed: int, shuffle: bool, drop_last: bool) -> DataLoader:
    batch_size = int(loader["batch_size"])
    sampler = None
    if distributed.is_distributed():
        sampler = torch.utils.data.DistributedSampler(dataset, shuffle=shuffle, drop_last=drop_last, seed=seed)
    workers = int(loader["num_workers"])
    generator = torch.Generator().manual_seed(seed)
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
        generator=generator,
    )


class _Transformed(torch.utils.data.Dataset):
    """The items of ``dataset`` (an :class:`SSLDataset`) through another ``transform``, reading the same
    files and sharing its record of unreadable ones (so they are not warned about twice)."""

    def __init__(self, dataset: SSLDataset, transform: Any) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, int, str]:
        image, target = self.dataset.load_or_none(index)
        return (None if image is None else self.transform(image)), target, self.dataset.filenames[index]


def _calibration_loader(data: SSLDataset, collate: dict[str, Any], seed: int, device: torch.device) -> DataLoader:
    """Up to :data:`~easyssl.embedding.CALIBRATION_IMAGES` training images, chosen at random, with the evaluation
    transform: the images :func:`~easyssl.embedding.calibrate_embeddings` takes the embedding statistics from."""
    evaluation = _Transformed(data, EvalTransform(int(collate["input_size"]), collate.get("normalize", IMAGENET_NORMALIZE)))
    subset: Any = evaluation
    if len(evaluation) > CALIBRATION_IMAGES:
        generator = torch.Generator().manual_seed(seed)
        indices = torch.randperm(len(evaluation), generator=generator)[:CALIBRATION_IMAGES].sort().values.tolist()
        subset = torch.utils.data.Subset(evaluation, indices)
    return DataLoader(subset, batch_size=512 if device.type == "cuda" else 256, shuffle=False,
                      num_workers=defaults.default_embed_workers(device), pin_memory=device.type == "cuda",
                      collate_fn=MultiViewCollate())


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
        **config: ``model={"backbone": "resnet-50", "width": 1.0, ...}``,
            ``criterion={...}`` (the loss's arguments), ``optimizer={"name": "sgd"|"adamw"|"lars",
            "lr": ..., "base_lr": ..., "weight_decay": ..., "momentum": ..., "warmup": fraction}``,
            ``collate={"input_size": 64, "min_scale": 0.2, ...}`` (the view transform's arguments),
            ``loader={"batch_size": 256, "num_workers": 4, ...}``,
            ``trainer={"max_epochs": 100 (or unlimited when max_time or max_steps is given), "max_steps": None, "max_time": "00:00:10:00",
            "device": "auto", "precision": "auto", "compile": False, "progress_bar": True}``,
            ``checkpoint_dir="runs/x"`` (default ``easyssl_runs/<date_time>``),
            ``resume=True`` (continue the run in ``checkpoint_dir``), ``seed=1``.
            An unknown key raises ``ValueError`` naming it and the valid keys.

    Returns:
        Path of the final checkpoint (``<checkpoint_dir>/last.ckpt``), which
        :func:`embed_images` needs and nothing else.

    Example:
        >>> checkpoint = train_embedding_model(input_dir="my/images/", trainer={"max_epochs": 10})
    """
    run = build_training(input_dir, method=method, dataset=dataset, **config)
    trainer_cfg = run.config["trainer"]
    path = run.trainer.train_embedding(
        max_epochs=trainer_cfg["max_epochs"],
        max_steps=trainer_cfg["max_steps"],
        max_time=trainer_cfg["max_time"],
        checkpoint_dir=run.config["checkpoint_dir"],
        resume_from=run.resume_from,
        progress_bar=bool(trainer_cfg["progress_bar"]),
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
    """
    config = merge_config(method, overrides)
    spec = get_method(config["method"])
    _init_distributed(config["trainer"]["device"])
    resume_from = None
    if config["resume"]:
        if not config["checkpoint_dir"]:
            raise ValueError("resume=True needs checkpoint_dir=<the folder of the run to continue>")
        candidate = os.path.join(os.fspath(config["checkpoint_dir"]), LAST_CHECKPOINT)
        if os.path.exists(candidate):
            resume_from = candidate
            saved = load_checkpoint(candidate).get("config") or {}
            if saved:
                _check_saved_config(saved, candidate)
            if saved.get("method") and saved["method"] != spec.name:
                raise ValueError(f"cannot resume {candidate!r}: it is a {saved['method']!r} run, not {spec.name!r}")
            for section in ("model", "collate"):  # the model must be rebuilt exactly as saved
                if section in saved:
                    config[section] = saved[section]
        else:
            warnings.warn(f"resume=True but {candidate!r} does not exist: starting a new run there", stacklevel=2)
    if not config["checkpoint_dir"]:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        config["checkpoint_dir"] = distributed.broadcast_object(os.path.join("easyssl_runs", stamp))  # one folder for all ranks
    config["checkpoint_dir"] = os.fspath(config["checkpoint_dir"])
    _seed_everything(int(config["seed"]) + distributed.rank())

    trainer_cfg = config["trainer"]
    device = resolve_device(trainer_cfg["device"])
    data = _dataset(input_dir, dataset, None)
    config = _resolve_auto(config, spec, data, device)
    collate = config["collate"]
    transform_kwargs = {k: v for k, v in collate.items()}
    loader_cfg = config["loader"]
    batch_transform = None
    train_data: Any = data
    if loader_cfg["batch_augment"]:
        # Fast path: decode each image once into a shared-memory cache of fixed-size uint8
        # tensors; the views are made for whole batches on the training device.
        cache_bytes = None if loader_cfg["cache_bytes"] == AUTO else int(loader_cfg["cache_bytes"])
        train_data = CachedImageDataset(data, defaults.cache_image_size(int(collate["input_size"])), cache_bytes)
        batch_transform = spec.batch_transform(**transform_kwargs).to(device)  # type: ignore[misc]
    else:
        data.transform = spec.transform(**transform_kwargs)
    loader = _build_loader(train_data, loader_cfg, int(config["seed"]), bool(loader_cfg["shuffle"]), bool(loader_cfg["drop_last"]))

    model = build_model(spec, config["model"], input_size=int(collate["input_size"]))
    criterion = spec.criterion(**config["criterion"])
    opt = config["optimizer"]
    optimizer = build_optimizer(model, opt["name"], lr=float(opt["lr"]), weight_decay=float(opt["weight_decay"]), momentum=float(opt["momentum"]))
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
        sync_batchnorm=bool(trainer_cfg.get("sync_batchnorm", False)),
        calibration_loader=_calibration_loader(data, collate, int(config["seed"]), device),
    )
    return TrainingRun(config, data, trainer, resume_from)


def load_model(checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the trained model of an easyssl checkpoint; returns ``(model, config)``.

    Raises:
        CheckpointError: the file is not an easyssl checkpoint, or was written without the
            config needed to rebuild its model, or names an unknown method.
    """
    state = load_checkpoint(checkpoint)
    config = state.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict) or "method" not in config:
        raise CheckpointError(
            f"{os.fspath(checkpoint)!r} has no model config: it was saved by a SelfSupervisedEmbedding built by hand "
            "(pass config=... to it), so rebuild the model yourself and use trainer.embed()"
        )
    _check_saved_config(config, os.fspath(checkpoint))
    model = build_model(config["method"], config["model"], input_size=int(config["collate"]["input_size"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config


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
        checkpoint: Path of the ``.ckpt`` file; the model is rebuilt from it alone.
        dataset: Instead of ``input_dir``, a map-style dataset of ``(image, target)``.
        batch_size: Images per forward pass (default 256, 512 on a GPU).
        num_workers: Data-loading processes (default: see :func:`easyssl.defaults.default_embed_workers`).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        precision: ``"auto"`` (bf16 on CUDA and on CPUs with bf16 instructions), ``"32"``, ``"bf16"``.
        progress_bar: Show a progress bar (on rank 0 only).
        return_skipped: Also return the list of skipped filenames, as a fourth element.
        whiten: Centre and whiten the features with the training images' statistics saved
            in the checkpoint (the default; see :func:`easyssl.calibrate_embeddings`).
            ``False`` returns the backbone's raw features.

    Returns:
        ``(embeddings, labels, filenames)``: float32 ``(N, D)`` array, ``N`` labels, ``N``
        filenames relative to ``input_dir``, in sorted filename order (and ``skipped``
        with ``return_skipped=True``). For sets too large for memory, see :func:`stream_embeddings`.

    Example:
        >>> embeddings, labels, filenames = embed_images(input_dir="my/images/", checkpoint=checkpoint)
    """
    model, data, loader, torch_device, precision_, channels_last = _embedding_setup(
        input_dir, checkpoint, dataset, batch_size, num_workers, device, precision
    )
    show = progress_bar and distributed.is_main_process()
    embeddings, labels, filenames = embed_with(model, loader, torch_device, precision_, channels_last, show, whiten)
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
    """Names of the files the last :func:`embed_images` or :func:`stream_embeddings` call skipped (unreadable)."""
    return list(_LAST_SKIPPED)


def _report_skipped(data: SSLDataset, names: list[str]) -> list[str]:
    order = {name: i for i, name in enumerate(data.filenames)} if len(names) > 1 else {}
    skipped = sorted(set(names), key=lambda name: (order.get(name, -1), name))
    _LAST_SKIPPED[:] = skipped
    if skipped and distributed.is_main_process():
        warn_skipped(skipped, "read; they are left out of the embeddings")
    return skipped


def _embedding_setup(input_dir, checkpoint, dataset, batch_size, num_workers, device, precision):
    """Model, dataset and this process's loader (a contiguous shard under torch.distributed) for embedding."""
    if checkpoint is None:
        raise ValueError("pass checkpoint=<path of the .ckpt file returned by train_embedding_model>")
    _init_distributed(device)
    torch_device = resolve_device(device)
    model, config = load_model(checkpoint, torch_device)
    collate = config["collate"]
    data = _dataset(input_dir, dataset, EvalTransform(int(collate["input_size"]), collate.get("normalize", IMAGENET_NORMALIZE)))
    data.reset_skipped()
    batch_size = batch_size or (512 if torch_device.type == "cuda" else 256)
    workers = defaults.default_embed_workers(torch_device) if num_workers is None else num_workers
    sampler = distributed.shard_range(len(data)) if distributed.is_distributed() else None
    loader = DataLoader(
        data, batch_size=batch_size, shuffle=False, sampler=sampler, num_workers=workers,
        pin_memory=torch_device.type == "cuda", collate_fn=MultiViewCollate(),
    )
    channels_last = torch_device.type in ("cuda", "cpu")  # faster convolutions on both (see SelfSupervisedEmbedding)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model, data, loader, torch_device, resolve_precision(precision, torch_device), channels_last


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
    from easyssl.embedding import iter_embeddings
    from easyssl.streaming import EmbeddingStreamWriter

    model, data, loader, torch_device, precision_, channels_last = _embedding_setup(
        input_dir, checkpoint, dataset, batch_size, num_workers, device, precision
    )
    token = distributed.broadcast_object(os.urandom(6).hex())
    writer = EmbeddingStreamWriter(output, rank=distributed.rank(), world_size=distributed.world_size(), token=token)
    try:
        show = progress_bar and distributed.is_main_process()
        for embeddings, labels, filenames in iter_embeddings(model, loader, torch_device, precision_, channels_last, show, whiten):
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
    return embed_images(input_dir, checkpoint, dataset=dataset, progress_bar=progress)
