"""Saving and loading easyssl checkpoints: atomically written, checked on load."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import torch

#: Value of the ``"format"`` key that marks a file as an easyssl checkpoint.
CHECKPOINT_FORMAT = "easyssl-checkpoint-v1"


class CheckpointError(ValueError):
    """A file is not a usable easyssl checkpoint."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> str:
    """Write ``state`` to ``path`` atomically and return the path.

    The data go to a temporary file in the same folder, are flushed to disk, and the file
    is then renamed over ``path``: a crash or kill during the write leaves any previous
    checkpoint at ``path`` intact.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    state = {"format": CHECKPOINT_FORMAT, **state}
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".ckpt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check an easyssl checkpoint.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is not an easyssl checkpoint (another framework's file,
            truncated, or not a checkpoint at all).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist: pass the .ckpt file returned by train_embedding_model")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:
        raise CheckpointError(f"{path!r} is not an easyssl checkpoint: it could not be read ({error})") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path!r} is not an easyssl checkpoint (no '{CHECKPOINT_FORMAT}' marker); "
            "use a file written by easyssl's train_embedding_model or SelfSupervisedEmbedding"
        )
    return state
