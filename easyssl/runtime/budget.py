"""Time budgets: parsing ``max_time`` and the one check the trainer makes against it."""

from __future__ import annotations

import datetime
import re
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
    """A training-time budget with part of it set aside for work that follows training.

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

    def __bool__(self) -> bool:
        return self.seconds is not None

    def set_aside(self, seconds: float) -> None:
        """Keep ``seconds`` of the budget for what follows training (re-estimated as often as wanted)."""
        self.reserved = max(0.0, float(seconds))

    @property
    def stop_at(self) -> float:
        """Elapsed training seconds at which training stops (infinite without a budget)."""
        return float("inf") if self.seconds is None else self.seconds - self.reserved

    def exhausted(self, elapsed: float) -> bool:
        """True once ``elapsed`` seconds of training reach the budget less what is set aside."""
        return self.seconds is not None and elapsed >= self.stop_at
