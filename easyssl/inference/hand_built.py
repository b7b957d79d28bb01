"""Embedding with the checkpoint of a trainer built by hand, given its backbone module.

A :class:`~easyssl.train.SelfSupervisedEmbedding` built by hand (LightlySSL's tutorial:
``SelfSupervisedEmbedding(SimCLR(nn.Sequential(...), num_ftrs=512), criterion, optimizer, dataloader)``)
has no config, so its checkpoint cannot rebuild the model: the backbone is the user's module and
the heads' sizes are unknown. Embedding needs neither the heads nor the config, only the backbone's
weights, the whitening statistics and the input size and normalisation of the training views,
which such checkpoints record under ``"views"``. :func:`load_hand_built` puts the backbone
module the user passes (a fresh one of the same architecture) into an :class:`~easyssl.nn.SSLModel`
with those weights.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from torch import nn

from easyssl.nn.base import SSLModel
from easyssl.runtime.checkpoint import CheckpointError

__all__ = ["HAND_BUILT_HINT", "load_hand_built"]

#: What to do with a checkpoint that has no config, said by the errors of :func:`~easyssl.inference.load_model`.
HAND_BUILT_HINT = (
    "pass the backbone module to rebuild it with (embed_images(folder, checkpoint, backbone=<a fresh module of the "
    "trained backbone's architecture>), load_model(checkpoint, backbone=...)), or embed with the trainer: trainer.embed(loader)"
)


def load_hand_built(state: dict[str, Any], checkpoint: str | os.PathLike, backbone: nn.Module, device: Any = "cpu") -> tuple[SSLModel, dict[str, Any]]:
    """``(model, config)`` for the checkpoint ``state`` of a hand-built trainer: an :class:`SSLModel` around a copy of
    ``backbone`` (or of an SSLModel's ``.backbone``) with the checkpoint's backbone weights and whitening statistics,
    in eval mode on ``device``, and a config holding only ``collate``'s input size and normalisation (what
    :func:`easyssl.config.eval_transform` reads).

    Raises:
        CheckpointError: the checkpoint does not say the input size (written before easyssl recorded it, or by a
            trainer whose loader's collate function and dataset transform do not say it).
        ValueError: the backbone does not fit the checkpoint's weights.
    """
    path = os.fspath(checkpoint)
    views = state.get("views")
    if not isinstance(views, dict) or not isinstance(views.get("input_size"), int):
        raise CheckpointError(
            f"{path!r} has no model config and does not say the input size it was trained at: embed with the trainer "
            "(trainer.embed(loader)) or build the SelfSupervisedEmbedding with config={'collate': {'input_size': ...}}"
        )
    module = backbone.backbone if isinstance(backbone, SSLModel) else backbone
    if not isinstance(module, nn.Module):
        raise ValueError(f"backbone must be an nn.Module (a fresh one of the trained architecture), got {type(backbone).__name__}")
    model = SSLModel(copy.deepcopy(module))
    weights = {key: value for key, value in state["model"].items()
               if key.startswith("backbone.") or key in ("embedding_mean", "embedding_whitening")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise ValueError(f"the backbone passed does not fit the weights of {path!r}: {error}") from error
    config = {"method": state.get("method") or "", "collate": {"input_size": views["input_size"], "normalize": views.get("normalize")}}
    return model.to(torch.device(device) if isinstance(device, str) else device).eval(), config
