"""Progress bars that suit where the output goes: a terminal, a Jupyter notebook, or a log file.

``tqdm.auto`` picks the notebook widget inside a Jupyter kernel, and without ipywidgets every
bar then warns ``IProgress not found`` (a flood of warnings, one per epoch); redirected to a
file, a text bar fills the log with ``\\r`` redraws. :func:`progress_mode` decides once what the
output can show and :func:`progress_bar` gives the matching bar:

* ``"terminal"``: stderr is a TTY: tqdm's text bar, redrawn in place;
* ``"widget"``: a Jupyter kernel with ipywidgets installed: tqdm's notebook widget;
* ``"notebook"``: a Jupyter kernel without ipywidgets: tqdm's text bar (Jupyter renders ``\\r``
  in place), never the widget;
* ``"lines"``: anything else (a file, a pipe, CI logs): no bar; callers print one line per
  epoch instead (see :mod:`easyssl.train.metrics`).

``EASYSSL_PROGRESS`` (one of the four names) overrides the choice.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any, Iterable

MODES = ("terminal", "widget", "notebook", "lines")


def in_notebook() -> bool:
    """True inside a Jupyter (IPython kernel) session."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython  # noqa: PLC0415 - only present where a kernel is

        shell = get_ipython()
    except ImportError:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def progress_mode(stream: Any = None) -> str:
    """How progress can be shown on ``stream`` (default ``sys.stderr``): one of :data:`MODES` (see the module doc)."""
    forced = os.environ.get("EASYSSL_PROGRESS", "").strip().lower()
    if forced in MODES:
        return forced
    if in_notebook():
        return "widget" if importlib.util.find_spec("ipywidgets") is not None else "notebook"
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return "terminal" if callable(isatty) and isatty() else "lines"
    except (ValueError, OSError):  # a closed stream
        return "lines"


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", enabled: bool = True, **kwargs: Any) -> Any:
    """A tqdm bar for where the output goes (see :func:`progress_mode`); a disabled one in ``"lines"`` mode
    or when ``enabled`` is False (it still counts, so ``bar.n`` stays usable)."""
    mode = progress_mode()
    if mode == "widget":
        from tqdm.notebook import tqdm as bar_class  # noqa: PLC0415 - needs ipywidgets
    else:
        from tqdm.std import tqdm as bar_class  # noqa: PLC0415
    disable = not enabled or mode == "lines"
    kwargs.setdefault("dynamic_ncols", mode == "terminal")
    return bar_class(iterable, total=total, desc=desc, disable=disable, **kwargs)
