"""Rebuilding a trained model from an easyssl checkpoint."""

from __future__ import annotations

import os
from typing import Any

import torch

from easyssl.config import check_saved_config
from easyssl.methods import build_model
from easyssl.runtime.checkpoint import CheckpointError, load_checkpoint


def load_model(checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the trained model of an easyssl checkpoint; returns ``(model, config)``, the model in eval mode on ``device``.

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
    check_saved_config(config, checkpoint)
    model = build_model(config["method"], config["model"], input_size=int(config["collate"]["input_size"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config
