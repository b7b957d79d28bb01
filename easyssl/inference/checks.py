"""Warnings about a model that will give poor embeddings for a reason the user can fix.

Embeddings of a model trained for a handful of steps are close to a random network's, and a
model trained at 32 px sees 96 px images shrunk to 32 px (their detail lost): both embed
without error, so without a word the user would judge self-supervised learning by them.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import easyssl.defaults as defaults

#: Fewer optimisation steps than this and the embeddings are still close to a random network's
#: (the built-in demo's 5 short epochs take about 10).
MIN_USEFUL_STEPS = 50

#: Warn when the images would train at a size this many times larger or smaller than the model's.
SIZE_RATIO = 2.0


def warn_if_barely_trained(
    state: dict[str, Any], checkpoint: str | os.PathLike, minimum: int = MIN_USEFUL_STEPS, consequence: str | None = None
) -> bool:
    """Warn (and return True) when the checkpoint ``state`` (or any ``{"step": n}``) was trained for fewer than
    ``minimum`` steps (default :data:`MIN_USEFUL_STEPS`). ``checkpoint`` names where the figure came from (a
    checkpoint or an embeddings file); ``consequence`` says what such a model gets wrong (default: its
    embeddings are close to an untrained network's)."""
    steps = state.get("step")
    if not isinstance(steps, int) or steps >= minimum:
        return False
    epochs = f" ({state['epoch']} epochs)" if "epoch" in state else ""
    consequence = consequence or "its embeddings are close to an untrained network's"
    warnings.warn(
        f"{os.fspath(checkpoint)!r} was trained for only {steps} steps{epochs}: {consequence}; train longer "
        f"(at least {minimum} steps: more epochs, more images or a longer max_time)", UserWarning, stacklevel=3)
    return True


def warn_if_other_input_size(config: dict[str, Any] | None, dataset: Any) -> bool:
    """Warn (and return True) when ``dataset``'s images would train at a size :data:`SIZE_RATIO` times another than
    the model's input size (a 32 px model embedding 96 px images shrinks them to 32 px)."""
    input_dir = getattr(dataset, "input_dir", None)
    if not config or not input_dir or hasattr(dataset, "videos"):
        return False
    trained = int(config["collate"]["input_size"])
    sides = defaults.image_short_sides([os.path.join(input_dir, f) for f in dataset.filenames], limit=16)
    if not sides:
        return False
    size = defaults.default_input_size(sides)
    if max(size, trained) < SIZE_RATIO * min(size, trained):
        return False
    median = sorted(sides)[len(sides) // 2]
    warnings.warn(
        f"the model was trained at {trained} px but these images are about {median} px (short side), which easyssl would "
        f"train at {size} px: they are resized to {trained} px to be embedded"
        + (", losing their detail" if size > trained else "")
        + f"; for embeddings that fit these images, train on images like them (or with collate={{'input_size': {size}}})",
        UserWarning, stacklevel=3)
    return True
