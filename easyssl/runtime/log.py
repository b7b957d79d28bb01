"""easyssl's status lines go to the ``"easyssl"`` logger (not to ``print``), so applications can route or silence them.

Without any logging configuration, Python prints warnings to stderr, so the lines the
library logs as warnings (files skipped, training interrupted) are seen by default;
:func:`console_handler` is what the command line installs to also show informational lines.
"""

from __future__ import annotations

import logging
import sys

#: The name of easyssl's logger.
LOGGER_NAME = "easyssl"

logger = logging.getLogger(LOGGER_NAME)


class _StderrHandler(logging.Handler):
    """Writes to the ``sys.stderr`` of the moment (not the one at creation), as ``logging.lastResort`` does."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def console_handler(level: int = logging.INFO) -> logging.Handler:
    """Attach (once) a handler that writes easyssl's log lines, bare, to stderr at ``level`` and above; return it."""
    for handler in logger.handlers:
        if getattr(handler, "easyssl_console", False):
            handler.setLevel(level)
            return handler
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(level)
    handler.easyssl_console = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    return handler
