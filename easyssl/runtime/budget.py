"""Time budgets: parsing ``max_time`` and the one check the trainer makes against it."""

from __future__ import annotations

import datetime
import re
import time
from typing import Any


def parse_max_time(value: Any) -> float | None:
    """Seconds from a time budget: a number of seconds, ``"DD:HH:MM:SS"`` (PyTorch Lightning's format),
    ``"HH:MM:SS"``, ``"MM:SS"``, a ``datetime.timedelta`` or a dict like ``{"minutes": 10}``; None for no budget.
    """
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, dict):
        seconds = datetime.timedelta(**value).total_seconds()
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\d+(:\d+){1,3}", value.strip()):
        parts = [int(p) for p in value.strip().split(":")]
        parts = [0] * (4 - len(parts)) + parts
        days, hours, minutes, secs = parts
        seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs
    else:
        raise ValueError(
            f"max_time {value!r} is not a time budget: use seconds (600), 'DD:HH:MM:SS' ('00:00:10:00'), "
            "a datetime.timedelta or a dict like {'minutes': 10}"
        )
    if seconds <= 0:
        raise ValueError(f"max_time must be positive, got {value!r}")
    return seconds


class TimeBudget:
    """A time budget counted on the wall clock from a start point, with part of it set aside for work that follows training.

    The budget is what the caller of ``train_embedding_model(..., trainer={"max_time": T})`` waits: it
    counts from the moment the call started (folder scan, model build, loader start-up and cache fill
    included), not from the first training step, so the call returns close to ``T`` seconds later.
    ``already`` carries the seconds an earlier, resumed run used.

    Args:
        max_time: Any value :func:`parse_max_time` accepts (None: no budget, never exhausted).

    Example:
        >>> budget = TimeBudget("00:00:10:00")
        >>> budget.set_aside(30.0)  # seconds the whitening pass will take
        >>> budget.exhausted(elapsed=575.0)
        True
    """

    def __init__(self, max_time: Any = None) -> None:
        self.seconds = parse_max_time(max_time)
        self.reserved = 0.0
        self.started_at = time.perf_counter()
        self.already = 0.0

    def __bool__(self) -> bool:
        return self.seconds is not None

    def begin(self, started_at: float | None = None, already: float = 0.0) -> None:
        """Count from ``started_at`` (a ``time.perf_counter()`` value; default now), after ``already`` seconds of earlier runs."""
        self.started_at = time.perf_counter() if started_at is None else float(started_at)
        self.already = max(0.0, float(already))

    def used(self) -> float:
        """Seconds of the budget used so far: earlier runs' plus the wall time since :meth:`begin`."""
        return self.already + time.perf_counter() - self.started_at

    def set_aside(self, seconds: float) -> None:
        """Keep ``seconds`` of the budget for what follows training (re-estimated as often as wanted)."""
        self.reserved = max(0.0, float(seconds))

    @property
    def stop_at(self) -> float:
        """Elapsed training seconds at which training stops (infinite without a budget)."""
        return float("inf") if self.seconds is None else self.seconds - self.reserved

    def exhausted(self, elapsed: float | None = None, upcoming: float = 0.0) -> bool:
        """True once ``elapsed`` seconds (default: :meth:`used`), plus the ``upcoming`` seconds of the next step,
        reach the budget less what is set aside: stopping before a step that would overrun keeps the end on time."""
        if self.seconds is None:
            return False
        return (self.used() if elapsed is None else elapsed) + max(0.0, upcoming) >= self.stop_at

    def deadline(self, keep: float = 0.0) -> float:
        """The ``time.perf_counter()`` value at which the budget, less ``keep`` seconds, runs out (infinite without one)."""
        if self.seconds is None:
            return float("inf")
        return self.started_at + self.seconds - self.already - max(0.0, keep)
