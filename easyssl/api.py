"""The three-line API: ``train_embedding_model``, ``embed_images`` and ``train_model_and_embed_images``."""

from __future__ import annotations

import copy
import datetime
import os
import random
import warnings
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from easyssl import defaults, distributed
from easyssl.checkpoint import CheckpointError, load_checkpoint
from easyssl.data.collate import MultiViewCollate
from easyssl.data.dataset import SSLDataset
from easyssl.embedding import LAST_CHECKPOINT, SelfSupervisedEmbedding, embed_with, resolve_device, resolve_precision
from easyssl.methods import BACKBONE_KEYS, Method, build_model, get_method
from easyssl.optim import WarmupCosineSchedule, build_optimizer
from easyssl.transforms.base import IMAGENET_NORMALIZE, EvalTransform

AUTO = "auto"

#: The config sections and their keys that do not depend on the method.
_FIXED_SECTIONS: dict[str, dict[str, Any]] = {
    "optimizer": {"name": AUTO, "lr": AUTO, "base_lr": AUTO, "weight_decay": AUTO, "momentum": AUTO, "warmup": AUTO},
    "loader": {"batch_size": AUTO, "num_workers": AUTO, "shuffle": True, "drop_last": True, "pin_memory": AUTO, "persistent_workers": True},
    "trainer": {"max_epochs": 100, "max_steps": None, "max_time": None, "device": AUTO, "precision": AUTO, "compile": False, "progress_bar": True},
}
_SECTIONS = ("model", "criterion", "optimizer", "collate", "loader", "trainer")
_TOP_LEVEL = ("method", "checkpoint_dir", "resume", "seed") + _SECTIONS


def default_config(method: str = "simclr") -> dict[str, Any]:
    """The full default config of ``method``, with ``"auto"`` where the value is chosen from the data and hardware."""
    spec = get_method(method)
    return {
        "method": spec.name,
        "checkpoint_dir": None,
        "resume": False,
        "seed": 1,
        "model": {"backbone": AUTO, "width": AUTO, "small_input": None, **spec.model_defaults},
        "criterion": dict(spec.criterion_defaults),
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
    if collate["input_size"] == AUTO:
        paths = [os.path.join(dataset.input_dir, f) for f in dataset.filenames] if dataset.input_dir else []
        sides = defaults.image_short_sides(paths)
        if not paths:  # a wrapped dataset: look at its first images
            sides = [min(dataset.load(i)[0].size) for i in range(min(16, len(dataset)))]
        collate["input_size"] = defaults.default_input_size(sides)
    input_size = int(collate["input_size"])
    name, width = defaults.default_backbone(input_size, device)
    if model["backbone"] == AUTO:
        model["backbone"] = name
        if model["width"] == AUTO:
            model["width"] = width
    if model["width"] == AUTO:
        model["width"] = 1.0
    if model["small_input"] is None:
        from easyssl.models.backbones import SMALL_INPUT_MAX_SIZE

        model["small_input"] = input_size <= SMALL_INPUT_MAX_SIZE
    if loader["batch_size"] == AUTO:
        loader["batch_size"] = defaults.default_batch_size(device, input_size, len(dataset))
    if loader["num_workers"] == AUTO:
        loader["num_workers"] = defaults.default_num_workers(device)
    if loader["pin_memory"] == AUTO:
        loader["pin_memory"] = device.type == "cuda"
    for key in ("name", "base_lr", "weight_decay", "momentum", "warmup"):
        if optimizer[key] == AUTO:
            optimizer[key] = spec.optimizer_defaults.get(key, {"name": "sgd", "base_lr": 0.1, "weight_decay": 0.0, "momentum": 0.9, "warmup": 0.0}[key])
    if optimizer["lr"] == AUTO:
        optimizer["lr"] = defaults.default_learning_rate(float(optimizer["base_lr"]), int(loader["batch_size"]))
    return config


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
            ``trainer={"max_epochs": 100, "max_steps": None, "max_time": "00:00:10:00",
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
    resume_from = None
    if config["resume"]:
        if not config["checkpoint_dir"]:
            raise ValueError("resume=True needs checkpoint_dir=<the folder of the run to continue>")
        candidate = os.path.join(os.fspath(config["checkpoint_dir"]), LAST_CHECKPOINT)
        if os.path.exists(candidate):
            resume_from = candidate
            saved = load_checkpoint(candidate).get("config") or {}
            if saved.get("method") and saved["method"] != spec.name:
                raise ValueError(f"cannot resume {candidate!r}: it is a {saved['method']!r} run, not {spec.name!r}")
            for section in ("model", "collate"):  # the model must be rebuilt exactly as saved
                if section in saved:
                    config[section] = saved[section]
        else:
            warnings.warn(f"resume=True but {candidate!r} does not exist: starting a new run there", stacklevel=2)
    if not config["checkpoint_dir"]:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        config["checkpoint_dir"] = os.path.join("easyssl_runs", stamp)
    config["checkpoint_dir"] = os.fspath(config["checkpoint_dir"])
    _seed_everything(int(config["seed"]) + distributed.rank())

    trainer_cfg = config["trainer"]
    device = resolve_device(trainer_cfg["device"])
    data = _dataset(input_dir, dataset, None)
    config = _resolve_auto(config, spec, data, device)
    collate = config["collate"]
    transform_kwargs = {k: v for k, v in collate.items()}
    data.transform = spec.transform(**transform_kwargs)
    loader_cfg = config["loader"]
    loader = _build_loader(data, loader_cfg, int(config["seed"]), bool(loader_cfg["shuffle"]), bool(loader_cfg["drop_last"]))

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
        config=config,
        device=device,
        precision=trainer_cfg["precision"],
        compile=bool(trainer_cfg["compile"]),
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
    if not config or "model" not in config or "method" not in config:
        raise CheckpointError(
            f"{os.fspath(checkpoint)!r} has no model config: it was saved by a SelfSupervisedEmbedding built by hand "
            "(pass config=... to it), so rebuild the model yourself and use trainer.embed()"
        )
    try:
        get_method(config["method"])
    except ValueError as error:
        raise CheckpointError(f"{os.fspath(checkpoint)!r} was trained with an unknown method: {error}") from error
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
) -> tuple[np.ndarray, list[int], list[str]]:
    """Embed every image of a folder with a checkpoint from :func:`train_embedding_model`.

    Args:
        input_dir: Folder of images (labels from class sub-folders, as in training).
        checkpoint: Path of the ``.ckpt`` file; the model is rebuilt from it alone.
        dataset: Instead of ``input_dir``, a map-style dataset of ``(image, target)``.
        batch_size: Images per forward pass (default 256, 512 on a GPU).
        num_workers: Data-loading processes (default: one per spare core).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        precision: ``"auto"`` (bf16 on CUDA), ``"32"``, ``"bf16"``.
        progress_bar: Show a progress bar.

    Returns:
        ``(embeddings, labels, filenames)``: float32 ``(N, D)`` array, ``N`` labels, ``N``
        filenames relative to ``input_dir``, in sorted filename order.

    Example:
        >>> embeddings, labels, filenames = embed_images(input_dir="my/images/", checkpoint=checkpoint)
    """
    if checkpoint is None:
        raise ValueError("pass checkpoint=<path of the .ckpt file returned by train_embedding_model>")
    torch_device = resolve_device(device)
    model, config = load_model(checkpoint, torch_device)
    collate = config["collate"]
    data = _dataset(input_dir, dataset, EvalTransform(int(collate["input_size"]), collate.get("normalize", IMAGENET_NORMALIZE)))
    batch_size = batch_size or (512 if torch_device.type == "cuda" else 256)
    workers = defaults.default_num_workers(torch_device) if num_workers is None else num_workers
    loader = DataLoader(
        data, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=torch_device.type == "cuda", collate_fn=MultiViewCollate()
    )
    channels_last = torch_device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return embed_with(model, loader, torch_device, resolve_precision(precision, torch_device), channels_last, progress_bar)


def train_model_and_embed_images(
    input_dir: str | os.PathLike | None = None, *, method: str = "simclr", dataset: Any = None, **config: Any
) -> tuple[np.ndarray, list[int], list[str]]:
    """Train on ``input_dir`` (see :func:`train_embedding_model`), then embed it; returns ``(embeddings, labels, filenames)``."""
    checkpoint = train_embedding_model(input_dir, method=method, dataset=dataset, **config)
    progress = (config.get("trainer") or {}).get("progress_bar", True)
    return embed_images(input_dir, checkpoint, dataset=dataset, progress_bar=progress)
