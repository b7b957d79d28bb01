"""Saving and loading easyssl checkpoints: atomically written, and read without unpickling code.

A ``.ckpt`` file is a zip of tensors plus a pickle describing how they nest. A plain
``torch.load`` runs whatever that pickle names, so a checkpoint from a stranger could run code
as soon as it is loaded. easyssl therefore writes only tensors and plain Python values (dicts,
lists, tuples, strings, numbers, None: :func:`plain_state` checks this before anything is
written) and reads every file with ``torch.load(..., weights_only=True)``, PyTorch's restricted
unpickler, which refuses any other object. A file that needs more is refused with a
:class:`CheckpointError` naming what it asked for; nothing in it runs.

Older easyssl checkpoints saved NumPy's random state as a NumPy array: those still load (NumPy's
array-rebuilding functions, which construct plain arrays and nothing else, are allowed for them),
and are rewritten in the plain form when training resumes.
"""

from __future__ import annotations

import collections
import datetime
import os
from typing import Any

import torch

from easyssl.runtime.files import atomic_save

#: File name of the checkpoint a run folder holds (written after every epoch).
LAST_CHECKPOINT = "last.ckpt"

#: Value of the ``"format"`` key that marks a file as an easyssl checkpoint.
CHECKPOINT_FORMAT = "easyssl-checkpoint-v1"

#: Leaf types a checkpoint may hold: what ``torch.load(..., weights_only=True)`` rebuilds.
PLAIN_TYPES = (torch.Tensor, str, bytes, int, float, bool, complex, type(None), torch.dtype, torch.device, torch.Size)


class CheckpointError(ValueError):
    """A file is not a usable easyssl checkpoint (or asks to run code when loaded, and is refused)."""


def plain_state(value: Any, where: str = "state") -> Any:
    """``value`` with every container a dict, list or tuple and every leaf a tensor or plain value.

    NumPy arrays and scalars are turned into tensors and Python numbers, a ``timedelta`` into its
    seconds and a path into a string; anything else raises
    ``TypeError`` naming where it is, so that no checkpoint is written that
    ``weights_only=True`` could not read back.
    """
    if isinstance(value, PLAIN_TYPES):
        return value
    if isinstance(value, dict):
        items = ((k, plain_state(v, f"{where}[{k!r}]")) for k, v in value.items())
        return collections.OrderedDict(items) if isinstance(value, collections.OrderedDict) else dict(items)
    if isinstance(value, (list, tuple)):
        items = [plain_state(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, datetime.timedelta):  # a max_time budget: its seconds mean the same
        return value.total_seconds()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    import numpy as np

    if isinstance(value, np.ndarray) and value.dtype != object:
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}: a checkpoint holds only tensors, numbers, "
        "strings, None and dicts/lists/tuples of them (so that it loads without running code)"
    )


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> str:
    """Write ``state`` to ``path`` atomically and return the path.

    The data go to a temporary file in the same folder, are flushed to disk, and the file
    is then renamed over ``path``: a crash, kill or full disk during the write leaves any
    previous checkpoint at ``path`` intact (see :mod:`easyssl.runtime.files`).

    Raises:
        TypeError: ``state`` holds an object that is neither a tensor nor a plain value.
    """
    state = plain_state({"format": CHECKPOINT_FORMAT, **state})
    return atomic_save(path, lambda handle: torch.save(state, handle))


def _numpy_array_globals() -> list[Any]:
    """The NumPy functions an old easyssl checkpoint used to pickle its arrays (under both NumPy 1 and 2 names)."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    allowed: list[Any] = [np.ndarray, np.dtype]
    for name in ("numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct"):
        allowed.append((_reconstruct, name))
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType") and n != "ObjectDType"]
    return allowed


def _unsafe_globals(path: str) -> list[str]:
    get = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if get is None:
        return []
    try:
        return list(get(path))
    except Exception:
        return []


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu", what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain values only, never running code from the file.

    Files from older easyssl versions that hold NumPy arrays load too (only NumPy's array
    constructors are allowed for them, and only those).

    Raises:
        CheckpointError: the file asks for any other Python object (it is refused, nothing in
            it runs; the message names what it asked for), or it cannot be read at all.
    """
    path = os.fspath(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        first = error
    unsafe = _unsafe_globals(path)
    if unsafe and all(name.startswith(("numpy.", "numpy._core.")) and "Object" not in name for name in unsafe):
        safe_globals = getattr(torch.serialization, "safe_globals", None)
        if safe_globals is not None:
            try:
                with safe_globals(_numpy_array_globals()):
                    return torch.load(path, map_location=map_location, weights_only=True)
            except Exception as error:
                first = error
    if unsafe or "Unsupported global" in str(first):
        named = ", ".join(unsafe[:5]) if unsafe else _global_in_message(str(first))
        raise CheckpointError(
            f"refusing to load {path!r}: it asks to rebuild Python objects that are not tensors or plain values "
            f"({named}), and loading it could run code. easyssl writes {what}s that hold only tensors and plain values; "
            "if you trust this file and it comes from another tool, load it with that tool"
        ) from None
    reason = str(first).split("WeightsUnpickler error:", 1)[-1].split("Check the documentation", 1)[0]
    raise CheckpointError(f"{path!r} is not an easyssl {what}: it could not be read ({' '.join(reason.split())[:300]})") from first


def _global_in_message(message: str) -> str:
    marker = "GLOBAL "
    if marker in message:
        return message.split(marker, 1)[1].split(" ", 1)[0]
    return "objects the safe loader does not allow"


def checkpoint_file(path: str | os.PathLike) -> str:
    """The checkpoint file ``path`` names: the path itself, or for a run folder its ``last.ckpt``, so that a run
    folder is accepted wherever a checkpoint is.

    Raises:
        FileNotFoundError: ``path`` is a folder without ``last.ckpt``.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        inside = os.path.join(path, LAST_CHECKPOINT)
        if not os.path.isfile(inside):
            raise FileNotFoundError(f"folder {path!r} holds no {LAST_CHECKPOINT}: pass a run folder written by easyssl train "
                                    "(its checkpoint_dir) or a .ckpt file")
        return inside
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check an easyssl checkpoint, without running any code from the file (see :func:`safe_load`).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is not an easyssl checkpoint (another framework's file,
            truncated, not a checkpoint at all), or it holds objects other than tensors and
            plain values (refused: loading it could run code).
    """
    path = checkpoint_file(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist: pass the .ckpt file returned by train_embedding_model")
    state = safe_load(path, map_location)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path!r} is not an easyssl checkpoint (no '{CHECKPOINT_FORMAT}' marker); "
            "use a file written by easyssl's train_embedding_model or SelfSupervisedEmbedding"
        )
    return state
