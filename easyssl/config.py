"""The one owner of easyssl's config: its sections, the defaults of each method, merging, checking, ``"auto"``.

A config is a dict of top-level keys (``method``, ``checkpoint_dir``, ``resume``, ``seed``)
and sections (``model``, ``criterion``, ``optimizer``, ``collate``, ``loader``, ``trainer``).
:func:`default_config` is the only place that reads a method's defaults; :func:`merge_config`
lays user overrides over them and :func:`check_saved_config` checks a checkpoint's config,
both with the one validator :func:`check_keys`; :func:`resolve_auto` replaces every
``"auto"`` by the value a rule of :mod:`easyssl.defaults` picks.
"""

from __future__ import annotations

import copy
import numbers
import os
from typing import Any

import torch

import easyssl.defaults as defaults
from easyssl.data.images import max_image_pixels
from easyssl.methods import Method, get_method
from easyssl.nn.backbones import SMALL_INPUT_MAX_SIZE
from easyssl.nn.embedding_views import check_embedding_views
from easyssl.runtime import distributed
from easyssl.runtime.budget import parse_max_time
from easyssl.runtime.checkpoint import CheckpointError
from easyssl.runtime.device import resolve_precision
from easyssl.runtime.suggest import config_key_hint
from easyssl.transforms import IMAGENET_NORMALIZE, EvalTransform

#: The value that asks easyssl to choose a setting from the data and the hardware.
AUTO = "auto"

#: The config sections and their keys that do not depend on the method.
#:
#: ``optimizer.momentum`` is used by the optimisers with momentum (``sgd``, ``lars``) only:
#: ``"auto"`` resolves to the method's momentum (0.9 when it names none) for them and to
#: ``None`` for ``adamw``, which ignores any value given (its betas play that part).
FIXED_SECTIONS: dict[str, dict[str, Any]] = {
    "optimizer": {"name": AUTO, "lr": AUTO, "base_lr": AUTO, "weight_decay": AUTO, "momentum": AUTO, "warmup": AUTO},
    "loader": {
        "batch_size": AUTO, "num_workers": AUTO, "shuffle": True, "drop_last": True, "pin_memory": AUTO, "persistent_workers": True,
        "batch_augment": AUTO, "cache_bytes": AUTO,
        "max_image_pixels": AUTO,  # larger images are skipped (easyssl.data.images.MAX_IMAGE_PIXELS: 100 megapixels)
    },
    "trainer": {
        "max_epochs": AUTO, "max_steps": None, "max_time": None, "device": AUTO, "precision": AUTO, "compile": False,
        "progress_bar": True, "sync_batchnorm": False,
        "cuda_graphs": AUTO,  # steps replayed as CUDA graphs where the method and optimiser allow (easyssl.train.step)
    },
    # Live evaluation (easyssl.train.live_eval): kNN top-1 on a labelled folder during training; off while knn_dir is None.
    "evaluation": {"knn_dir": None, "knn_train_dir": None, "every": 1, "k": 200, "max_images": 2000},
}
#: The sections of a config, each a dict.
SECTIONS = ("model", "criterion", "optimizer", "collate", "loader", "trainer", "evaluation")
#: Every top-level key of a config.
TOP_LEVEL = ("method", "checkpoint_dir", "resume", "seed") + SECTIONS

#: Loss arguments that make a loss use the global batch under torch.distributed; a method's
#: ``criterion_defaults`` holds them as ``"auto"``: on when distributed.
GATHER_KEYS = ("gather_distributed", "sinkhorn_gather_distributed")

#: Optimisers that take a momentum (``optimizer.momentum`` means nothing to the others).
MOMENTUM_OPTIMIZERS = ("sgd", "lars")

#: Optimiser settings of a method that names none (SGD, as in SimCLR's small-batch setting).
OPTIMIZER_FALLBACK: dict[str, Any] = {"name": "sgd", "base_lr": 0.1, "weight_decay": 0.0, "momentum": 0.9, "warmup": 0.0}


#: Method model keys (in a method's ``model_defaults``) whose value in a run's config is ``"auto"``, set by a rule of
#: :mod:`easyssl.defaults` from the data: SimCLR's rotation prediction (``defaults.default_rotation_weight``), its
#: penalty on the features' correlations (``defaults.default_decorrelation_weight``) and the BatchNorm on its features
#: (``defaults.default_feature_norm``).
RULED_MODEL_KEYS = ("rotation_weight", "decorrelation_weight", "feature_norm")


def default_config(method: str = "simclr") -> dict[str, Any]:
    """The full default config of ``method``, with ``"auto"`` where the value is chosen from the data and hardware."""
    spec = get_method(method)
    ruled = {key: AUTO for key in RULED_MODEL_KEYS if key in spec.model_defaults}
    return {
        "method": spec.name,
        "checkpoint_dir": None,
        "resume": False,
        "seed": 1,
        "model": {"backbone": AUTO, "width": AUTO, "small_input": None, "pooled_stages": AUTO, "weights": None, "weights_prefix": AUTO, **spec.model_defaults, **ruled,
                  "embedding_views": AUTO},
        "criterion": dict(spec.criterion_defaults),
        "optimizer": copy.deepcopy(FIXED_SECTIONS["optimizer"]),
        "collate": {"input_size": AUTO, "train_crop_size": AUTO, "final_size_fraction": AUTO, "normalize": IMAGENET_NORMALIZE, **spec.collate_defaults,
                    **({"min_scale": AUTO} if "min_scale" in spec.collate_defaults else {})},
        "loader": copy.deepcopy(FIXED_SECTIONS["loader"]),
        "trainer": copy.deepcopy(FIXED_SECTIONS["trainer"]),
        "evaluation": copy.deepcopy(FIXED_SECTIONS["evaluation"]),
    }


def check_keys(config: dict[str, Any], reference: dict[str, Any]) -> None:
    """Raise ``ValueError`` when ``config`` holds a key that ``reference`` (a :func:`default_config`) lacks.

    The one validator of config keys: :func:`merge_config` (user overrides) and
    :func:`check_saved_config` (a checkpoint's config) both use it, so the same unknown key
    gives the same message. A section may be None (left at its defaults).
    """
    for key, value in config.items():
        if key not in TOP_LEVEL:
            raise ValueError(f"unknown config key {key!r}{config_key_hint(None, key, reference)}; valid keys are: {', '.join(TOP_LEVEL)}")
        if key not in SECTIONS or value is None:
            continue
        if not isinstance(value, dict):
            example = next(iter(reference[key]), "key")
            raise ValueError(f"config section {key!r} must be a dict like {{'{example}': ...}}, got {type(value).__name__} {value!r}")
        unknown = sorted(set(value) - set(reference[key]), key=str)
        if unknown:
            raise ValueError(
                f"unknown config key(s) {', '.join(map(repr, unknown))} in {key}={{...}} for method {reference['method']!r}"
                f"{''.join(config_key_hint(key, name, reference) for name in unknown)}; "
                f"valid keys are: {', '.join(sorted(reference[key]))}"
            )


def merge_config(method: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge user overrides into ``method``'s default config, rejecting unknown keys with the valid ones named."""
    config = default_config(method)
    check_keys(overrides, config)
    for key, value in overrides.items():
        if key in SECTIONS:
            config[key].update(value or {})
        elif key != "method":
            config[key] = value
    return config


def check_saved_config(config: Any, path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` when a checkpoint's config names an unknown method, holds an unknown key
    (see :func:`check_keys`) or lacks the input size its model was built for."""
    path = os.fspath(path)
    if not isinstance(config, dict) or "method" not in config:
        raise CheckpointError(f"{path!r} has no easyssl config (no 'method'): it cannot be rebuilt or resumed")
    try:
        reference = default_config(config["method"])
    except ValueError as error:
        raise CheckpointError(f"{path!r} was trained with an unknown method: {error}") from error
    try:
        check_keys(config, reference)
    except ValueError as error:
        raise CheckpointError(f"{path!r} has a config this easyssl cannot read (written by another version?): {error}") from error
    collate = config.get("collate")
    if not isinstance(collate, dict) or not isinstance(collate.get("input_size"), int):
        raise CheckpointError(f"{path!r} has a malformed config: collate.input_size is missing or not an integer")


#: Model keys added after checkpoints were first written, and the value a model saved without one was built with.
SAVED_MODEL_FALLBACKS: dict[str, Any] = {"pooled_stages": 1, "rotation_weight": 0.0, "decorrelation_weight": 0.0,
                                             "feature_norm": False, "embedding_views": [[1.0, False]]}


def complete_saved_model(config: dict[str, Any]) -> dict[str, Any]:
    """Fill in ``config["model"]`` (in place, and return ``config``) the keys of :data:`SAVED_MODEL_FALLBACKS` that a
    checkpoint written before they existed lacks, with the value its model was built with; only keys the method has."""
    reference = default_config(config["method"])["model"]
    for key, value in SAVED_MODEL_FALLBACKS.items():
        if key in reference and key not in config["model"]:
            config["model"][key] = value
    return config


def check_values(config: dict[str, Any]) -> None:
    """Raise ``ValueError`` for values no run can use: ``max_epochs`` 0 or negative (it would save an untrained
    model), and an ``evaluation`` section with ``every``/``k``/``max_images`` below 1 or a ``knn_dir`` that is not a folder."""
    epochs = config["trainer"].get("max_epochs")
    if epochs not in (AUTO, None) and (isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1):
        raise ValueError(f"trainer max_epochs must be a whole number of at least 1 (or None with max_time/max_steps), got {epochs!r}")
    evaluation = config.get("evaluation") or {}
    for key in ("every", "k", "max_images"):
        value = evaluation.get(key)
        if (value is not None or key != "max_images") and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            raise ValueError(f"evaluation {key} must be a whole number of at least 1, got {value!r}")
    for key in ("knn_dir", "knn_train_dir"):
        folder = evaluation.get(key)
        if folder is not None and not os.path.isdir(os.fspath(folder)):
            raise ValueError(f"evaluation {key}={os.fspath(folder)!r} is not a folder: pass a folder of images in class sub-folders")


def check_final_size(collate: dict[str, Any], batch_augment: bool) -> None:
    """Raise ``ValueError`` unless ``collate.final_size_fraction`` (the share of training, at its end, whose views are made
    at ``input_size``: :class:`~easyssl.transforms.FinalSizeViews`) is a number from 0 to 1, and 0 when the views are made
    in loader workers (``loader.batch_augment`` False), which keep one size."""
    fraction = collate["final_size_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0.0 <= fraction <= 1.0:
        raise ValueError(f"collate final_size_fraction must be a number from 0 to 1 (the share of training, at its end, "
                         f"whose views are made at input_size), got {fraction!r}")
    if fraction > 0 and not batch_augment:
        raise ValueError(f"collate final_size_fraction={fraction!r} needs the batched views (loader batch_augment=True): "
                         "views made in loader workers keep one size; set final_size_fraction to 0")


def view_config(collate: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a method's view transforms from the ``collate`` section: its keys, with the views
    made at ``train_crop_size`` (``input_size`` is the side images are embedded at; see
    :func:`easyssl.defaults.default_train_crop_size`); without the key (a config saved before it), the
    views are at ``input_size``. ``final_size_fraction`` is the trainer's, not the views' (see :func:`check_final_size`)."""
    views = {key: value for key, value in collate.items() if key not in ("train_crop_size", "final_size_fraction")}
    size = collate.get("train_crop_size")
    if size is not None and size != AUTO:
        views["input_size"] = int(size)
    return views


def eval_transform(config: dict[str, Any]) -> EvalTransform:
    """The evaluation (embedding) transform of a trained model's config: resize and centre-crop to
    ``collate.input_size``, normalised as in training."""
    collate = config["collate"]
    return EvalTransform(int(collate["input_size"]), collate.get("normalize", IMAGENET_NORMALIZE))


def resolve_auto(config: dict[str, Any], spec: Method, dataset: Any, device: torch.device) -> dict[str, Any]:
    """Replace every ``"auto"`` in ``config`` (in place, and return it) by the value :mod:`easyssl.defaults` picks.

    ``dataset`` is the training :class:`~easyssl.data.SSLDataset` (or video dataset): its
    images' sizes choose the input size.
    """
    collate, model, optimizer, loader, trainer = (config[k] for k in ("collate", "model", "optimizer", "loader", "trainer"))
    for key in GATHER_KEYS:
        if config["criterion"].get(key) == AUTO:
            config["criterion"][key] = distributed.is_distributed()
    if collate["input_size"] == AUTO:
        collate["input_size"] = defaults.default_input_size(_short_sides(dataset))
    input_size = int(collate["input_size"])
    if collate.get("min_scale") == AUTO:  # the method's preset (its paper's value) for photos, see the rule
        collate["min_scale"] = defaults.default_min_scale(input_size, float(spec.collate_defaults["min_scale"]))
    # the width rule reads the precision on CPUs (bf16 there where the CPU has bf16 matrix instructions), as the trainer resolves it
    precision = resolve_precision(trainer["precision"], device) if device.type == "cpu" else str(trainer["precision"])
    name, width = defaults.default_backbone(input_size, device, parse_max_time(trainer["max_time"]), precision)
    width_from_rule = model["backbone"] == AUTO and model["width"] == AUTO and spec.model_defaults.get("backbone", AUTO) == AUTO
    if model["backbone"] == AUTO and spec.model_defaults.get("backbone", AUTO) != AUTO:
        model["backbone"] = spec.model_defaults["backbone"]  # the method's own choice (MAE: a ViT)
    if model["backbone"] == AUTO:
        model["backbone"] = name
        if model["width"] == AUTO:
            model["width"] = width
    if model["width"] == AUTO:
        model["width"] = 1.0
    if model["small_input"] is None:
        model["small_input"] = input_size <= SMALL_INPUT_MAX_SIZE
    complete_saved_model(config)  # a resumed run's config, saved before a key existed: what it trained with
    if model.get("rotation_weight") == AUTO:  # SimCLR's rotation prediction for small images (see the rule)
        model["rotation_weight"] = defaults.default_rotation_weight(input_size)
    if model.get("feature_norm") == AUTO:  # SimCLR's BatchNorm on the features for small images (see the rule)
        model["feature_norm"] = defaults.default_feature_norm(input_size)
    if model["embedding_views"] == AUTO:  # the image alone, or averaged with its mirror and enlarged views for small images
        model["embedding_views"] = defaults.default_embedding_views(input_size, model["backbone"])
    else:
        model["embedding_views"] = [list(view) for view in check_embedding_views(model["embedding_views"])]
    if model["pooled_stages"] == AUTO:  # the last stage alone, or the last two for small images (see the rule)
        model["pooled_stages"] = defaults.default_pooled_stages(input_size, device, model["backbone"], model["width"], width_from_rule)
    if "train_crop_size" not in collate:  # a resumed run's config, saved before the key: its views were at the input size
        collate["train_crop_size"] = input_size
    elif collate["train_crop_size"] == AUTO:
        collate["train_crop_size"] = defaults.default_train_crop_size(input_size, device, model["backbone"])
    check_values(config)
    if trainer["max_epochs"] == AUTO:  # 100 epochs, unless a step or time budget alone bounds training
        trainer["max_epochs"] = None if (trainer["max_time"] is not None or trainer["max_steps"] is not None) else 100
    if loader["batch_augment"] == AUTO:
        loader["batch_augment"] = spec.batch_transform is not None
    elif loader["batch_augment"] and spec.batch_transform is None:
        raise ValueError(f"loader={{'batch_augment': True}}: method {spec.name!r} has no batched augmentation; use False")
    if "final_size_fraction" not in collate:  # a resumed run's config, saved before the key: its views kept one size
        collate["final_size_fraction"] = 0.0
    elif collate["final_size_fraction"] == AUTO:  # the last fifth of training at the input size for small images (see the rule)
        collate["final_size_fraction"] = defaults.default_final_size_fraction(input_size, int(collate["train_crop_size"]), bool(loader["batch_augment"]))
    check_final_size(collate, bool(loader["batch_augment"]))
    if loader["batch_size"] == AUTO:
        loader["batch_size"] = defaults.default_batch_size(device, input_size, len(dataset))
    if model.get("decorrelation_weight") == AUTO:  # SimCLR's decorrelated features for small images and batches of 128+
        model["decorrelation_weight"] = defaults.default_decorrelation_weight(input_size, int(loader["batch_size"]))
    if loader["num_workers"] == AUTO:
        loader["num_workers"] = defaults.default_num_workers(device, len(dataset), input_size, bool(loader["batch_augment"]))
    if loader["pin_memory"] == AUTO:
        loader["pin_memory"] = device.type == "cuda"
    loader["max_image_pixels"] = max_image_pixels(loader.get("max_image_pixels", AUTO))  # checked here, not per image
    for key in ("name", "base_lr", "weight_decay"):
        if optimizer[key] == AUTO:
            optimizer[key] = spec.optimizer_defaults.get(key, OPTIMIZER_FALLBACK[key])
    if optimizer["warmup"] == AUTO:  # the method's preset, longer for small images (see the rule)
        optimizer["warmup"] = defaults.default_warmup(input_size, float(spec.optimizer_defaults.get("warmup", OPTIMIZER_FALLBACK["warmup"])))
    if str(optimizer["name"]).lower() not in MOMENTUM_OPTIMIZERS:
        optimizer["momentum"] = None  # adamw: no momentum (see FIXED_SECTIONS)
    elif optimizer["momentum"] == AUTO:
        optimizer["momentum"] = spec.optimizer_defaults.get("momentum", OPTIMIZER_FALLBACK["momentum"])
    if optimizer["lr"] == AUTO:
        optimizer["lr"] = defaults.default_learning_rate(float(optimizer["base_lr"]), int(loader["batch_size"]))
    return config


#: How :func:`describe_training` names the precisions of :func:`easyssl.runtime.device.resolve_precision`.
PRECISION_NAMES = {"32": "float32", "bf16": "bf16 autocast", "bf16-mixed": "bf16 autocast", "16": "float16 autocast",
                   "fp16": "float16 autocast", "16-mixed": "float16 autocast"}


def describe_training(config: dict[str, Any], num_images: int, device: torch.device, precision: str, num_features: int | None = None,
                      width_given: bool = True) -> str:
    """One line on what a resolved ``config`` trains, for the log: method, images, views, backbone, batch, device.

    ``width_given`` False for a backbone named without a width on small images: the line then says that such a backbone
    is built at width 1, where the automatic backbone of small images is a quarter of it (the width rule applies to
    the automatic backbone only), so a model 16 times the multiply-adds is not a surprise found from its speed.
    """
    model, collate, loader, optimizer = config["model"], config["collate"], config["loader"], config["optimizer"]
    input_size, crop = int(collate["input_size"]), int(collate.get("train_crop_size") or collate["input_size"])
    views = f"{crop} px views" + (f" ({input_size} px for the last {collate['final_size_fraction']:.0%})" if collate.get("final_size_fraction") else "")
    width = model.get("width")
    net = str(model["backbone"]) + (f" x{width:g}" if isinstance(width, numbers.Number) and width != 1 else "")
    stages = model.get("pooled_stages")
    if isinstance(stages, int) and stages > 1:
        net += f", {stages} pooled stages"
    if num_features:
        net += f", {num_features} features"
    line = (f"{config['method']} on {num_images:,} images at {input_size} px ({views}): {net}; batch {loader['batch_size']}, "
            f"lr {float(optimizer['lr']):.3g}, {device.type} {PRECISION_NAMES.get(precision, precision)}")
    chosen = defaults.default_backbone(input_size, device, parse_max_time(config["trainer"].get("max_time")), precision)[1]
    if not width_given and input_size <= SMALL_INPUT_MAX_SIZE and width == 1 != chosen and str(model["backbone"]).startswith("resnet"):
        line += (f". A backbone named without a width is built at width 1; easyssl's choice for {input_size} px images is "
                 f"model={{'width': {chosen:g}}} (see the README's Performance)")
    return line


def _short_sides(dataset: Any) -> list[int]:
    """Short sides of a sample of the dataset's images: from the file headers of a folder of images,
    else (a wrapped dataset, video frames) from its first 16 images."""
    is_files = bool(getattr(dataset, "input_dir", None)) and not hasattr(dataset, "videos")
    paths = [os.path.join(dataset.input_dir, f) for f in dataset.filenames] if is_files else []
    if paths:
        return defaults.image_short_sides(paths)
    images = (_load_quietly(dataset, i) for i in range(min(16, len(dataset))))
    return [min(image.size) for image in images if image is not None]


def _load_quietly(dataset: Any, index: int) -> Any:
    """The untransformed image of item ``index``, or None when it cannot be read (reported when training reads it)."""
    try:
        return dataset.load(index)[0]
    except OSError:
        return None
