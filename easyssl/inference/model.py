"""Rebuilding a trained model from an easyssl checkpoint."""

from __future__ import annotations

import copy
import os
from typing import Any

import torch

from easyssl.config import check_saved_config, complete_saved_model
from easyssl.inference.checks import warn_if_barely_trained
from easyssl.inference.hand_built import HAND_BUILT_HINT, load_hand_built
from easyssl.methods import build_model
from easyssl.runtime.checkpoint import CheckpointError, load_checkpoint


def load_model(
    checkpoint: str | os.PathLike, device: str | torch.device = "cpu", backbone: torch.nn.Module | str | None = None
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the trained model of an easyssl checkpoint; returns ``(model, config)``, the model in eval mode on ``device``.

    ``backbone``: for a checkpoint trained with a backbone module of your own (its config says
    ``"custom:<module>.<Class>"``, which no name rebuilds), a fresh module of the same
    architecture; a copy of it receives the checkpoint's weights (the one passed is left as is).
    Backbones given by name (easyssl's, ``"timm/..."``, ``"torchvision/..."``) need nothing. A checkpoint of a
    ``SelfSupervisedEmbedding`` built by hand (no config) is embedded with the backbone module given (see
    :mod:`easyssl.inference.hand_built`): the returned model embeds, it has no heads.

    Raises:
        CheckpointError: the file is not an easyssl checkpoint, or was written without the
            config needed to rebuild its model, or names an unknown method.
    """
    return model_from_state(load_checkpoint(checkpoint), checkpoint, device, backbone)


def model_from_state(
    state: dict[str, Any], checkpoint: str | os.PathLike, device: str | torch.device = "cpu", backbone: torch.nn.Module | str | None = None
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """:func:`load_model` for a checkpoint already read (``state``, from ``checkpoint``): callers that also need
    other entries of the state (its training steps) read the file once."""
    warn_if_barely_trained(state, checkpoint)
    config = state.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict) or "method" not in config:
        if isinstance(backbone, torch.nn.Module):  # a hand-built trainer's checkpoint: the backbone and its views suffice
            return load_hand_built(state, checkpoint, backbone, device)
        raise CheckpointError(f"{os.fspath(checkpoint)!r} has no model config: it was saved by a SelfSupervisedEmbedding built by hand; {HAND_BUILT_HINT}")
    check_saved_config(config, checkpoint)
    config = complete_saved_model({**config, "model": dict(config["model"])})  # keys its easyssl did not have yet
    model_config = dict(config["model"])
    if backbone is not None:
        model_config["backbone"] = copy.deepcopy(backbone) if isinstance(backbone, torch.nn.Module) else backbone
    model = build_model(config["method"], model_config, input_size=int(config["collate"]["input_size"]))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        if backbone is None:
            raise
        raise ValueError(f"the backbone passed does not fit the checkpoint's weights (trained with {config['model'].get('backbone')!r}): {error}") from error
    return model.to(device).eval(), config
