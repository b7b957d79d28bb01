"""What a training checkpoint holds beyond the model: optimiser, schedule, progress, history and random state."""

from __future__ import annotations

from typing import Any

import torch

from easyssl.runtime.rng import get_rng_state, set_rng_state
from easyssl.train.compat import view_settings
from easyssl.version import __version__


def loader_generator(dataloader: Any) -> torch.Generator | None:
    """The generator that shuffles a training loader (saved in checkpoints so a resumed run sees the same order)."""
    generator = getattr(dataloader, "generator", None)
    return generator if isinstance(generator, torch.Generator) else None


def training_state(trainer: Any, epochs_done: int) -> dict[str, Any]:
    """The checkpoint of a :class:`~easyssl.train.SelfSupervisedEmbedding`: everything needed to rebuild its
    model (``config``, ``model``) and to resume training; ``rng`` holds the trainer's random streams (or the
    global generators' state when it has none) and the loader's shuffling generator."""
    generator = loader_generator(trainer.dataloader)
    streams = trainer.random_streams
    rng = streams.state_dict() if streams is not None else get_rng_state()
    return {
        "easyssl_version": __version__,
        "method": getattr(trainer.model, "method", ""),
        "config": trainer.config,
        "views": view_settings(trainer),  # a trainer built by hand (no config): the input size and normalisation to embed with
        "model": trainer.model.state_dict(),
        "criterion": trainer.criterion.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
        "epoch": epochs_done,
        "step": trainer.progress.step,
        "elapsed": trainer.elapsed,
        "history": trainer.history,
        "rng": {**rng, "loader": generator.get_state() if generator is not None else None},
    }


def restore_state(trainer: Any, state: dict[str, Any]) -> None:
    """Put a trainer back in the training state of a checkpoint (all but the model's weights)."""
    trainer.criterion.load_state_dict(state["criterion"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    if trainer.scheduler is not None and state.get("scheduler") is not None:
        trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.progress.step = int(state.get("step", 0))
    trainer.progress.epoch = int(state.get("epoch", 0))
    trainer.elapsed = float(state.get("elapsed", 0.0))
    trainer.history = list(state.get("history", []))
    saved = dict(state.get("rng") or {})
    loader_state = saved.pop("loader", None)
    if trainer.random_streams is not None:
        trainer.random_streams.load_state_dict(saved)
    else:
        set_rng_state(saved)
    generator = loader_generator(trainer.dataloader)
    if loader_state is not None and generator is not None:
        generator.set_state(loader_state.cpu())
