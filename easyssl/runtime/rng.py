"""Random streams of their own: run code on Python's, NumPy's and torch's generators without touching the caller's state."""

from __future__ import annotations

import contextlib
import random
from typing import Any, Iterator

import numpy as np
import torch


def get_rng_state() -> dict[str, Any]:
    """The state of the process's global generators: Python's ``random``, NumPy's legacy one, torch's CPU and CUDA ones.

    Every part is a tensor or a plain Python value (NumPy's key array is stored as an int64
    tensor), so checkpoints holding it load with ``torch.load(..., weights_only=True)``.
    """
    name, key, position, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(key.astype(np.int64)), int(position), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Set the global generators from a :func:`get_rng_state` dict (keys that are missing or None are left alone)."""
    if state.get("python") is not None:
        random.setstate(state["python"])
    if state.get("numpy") is not None:
        name, key, *rest = state["numpy"]  # the key: an int64 tensor (or a NumPy array in older checkpoints)
        key = key.cpu().numpy() if isinstance(key, torch.Tensor) else np.asarray(key)
        np.random.set_state((name, key.astype(np.uint32), *rest))
    if state.get("torch") is not None:
        torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class RandomStreams:
    """Random generators of their own for a block of code: while :meth:`active`, Python's ``random``, NumPy's and
    torch's global generators follow these streams; on leaving, the streams keep their advanced state and the
    caller's global state is put back exactly as it was.

    PyTorch code draws from the global generators (weight initialisation, augmentations run in the main process,
    dropout, masking), so this is how easyssl makes a run reproducible from its seed without reseeding the
    process: ``build_training`` and :class:`~easyssl.train.SelfSupervisedEmbedding` use it.

    Args:
        seed: Seeds all the generators as ``random.seed``, ``np.random.seed`` and ``torch.manual_seed`` would.
    """

    def __init__(self, seed: int) -> None:
        self._active = False
        with self._kept():
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)
            self.state = get_rng_state()

    @staticmethod
    @contextlib.contextmanager
    def _kept() -> Iterator[None]:
        saved = get_rng_state()
        try:
            yield
        finally:
            set_rng_state(saved)

    @contextlib.contextmanager
    def active(self) -> Iterator["RandomStreams"]:
        """Run the block on these streams; the caller's global random state is restored afterwards."""
        if self._active:  # nested: already on these streams
            yield self
            return
        with self._kept():
            set_rng_state(self.state)
            self._active = True
            try:
                yield self
            finally:
                self._active = False
                self.state = get_rng_state()

    def state_dict(self) -> dict[str, Any]:
        """The streams' state, as :func:`get_rng_state` gives it (what checkpoints save), also while active."""
        return get_rng_state() if self._active else dict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved state (missing generators keep theirs)."""
        current = self.state_dict()
        self.state = {**current, **{k: v for k, v in state.items() if k in current and v is not None}}
        if self._active:
            set_rng_state(self.state)
