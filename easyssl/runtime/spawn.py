"""Loader workers that never re-run an unguarded script: the "spawn" start method's trap, detected before it springs.

Under the "spawn" and "forkserver" start methods (the defaults on macOS and Windows, and on
Linux from Python 3.14), every new process imports the script it was started from again, as
``__mp_main__``. A script that calls easyssl at module level, without
``if __name__ == "__main__":``, then trains once more in every DataLoader worker; the workers
crash and the run ends after a full epoch in a page of ``DataLoader worker exited
unexpectedly`` tracebacks.

:func:`safe_num_workers` is asked before easyssl starts loader workers: when they would
re-run the script (start method spawn or forkserver, and the easyssl call comes from the
main script's module-level code outside an ``if __name__ == "__main__":`` block) it answers
0 workers (loading in the training process: slower, never wrong) and warns once, showing the
fix. Called in a process that is itself re-running the script, it raises instead: that
process must not train. Code run with ``python -c`` or ``python -m package``, notebooks and
the ``easyssl`` command are not affected (multiprocessing imports nothing of theirs again).
"""

from __future__ import annotations

import ast
import functools
import inspect
import multiprocessing
import os
import sys
import warnings
from typing import Any

__all__ = ["GUARD_FIX", "UnguardedScriptError", "reruns_main", "safe_num_workers", "start_method", "unguarded_call_site"]

#: The fix, shown in the warning and the error.
GUARD_FIX = 'put the script\'s code under `if __name__ == "__main__":` (see the README, "Scripts and worker processes")'


class UnguardedScriptError(RuntimeError):
    """easyssl was called while a worker process re-ran an unguarded script: the worker must not train."""


def start_method(context: Any = None) -> str:
    """The start method of ``context`` (a start method name, a multiprocessing context, or None for the default)."""
    if context is None:
        # The start method set so far, else the platform's default (the first of get_all_start_methods),
        # without fixing it, so that a later multiprocessing.set_start_method still works.
        return multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]
    return context if isinstance(context, str) else context.get_start_method()


def reruns_main(context: Any = None) -> bool:
    """Whether new processes of ``context`` (see :func:`start_method`) import the main script again:
    the "spawn" and "forkserver" start methods."""
    return start_method(context) in ("spawn", "forkserver")


@functools.lru_cache(maxsize=16)
def _guard_ranges(path: str, mtime: float) -> tuple[tuple[int, int], ...]:
    """Line ranges of the top-level ``if __name__ == "__main__":`` blocks of the file at ``path``."""
    with open(path, encoding="utf-8") as file:
        tree = ast.parse(file.read(), path)
    ranges = []
    for node in tree.body:
        if isinstance(node, ast.If) and _is_main_test(node.test):
            ranges.append((node.lineno, node.end_lineno or node.lineno))
    return tuple(ranges)


def _is_main_test(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = {side.id for side in sides if isinstance(side, ast.Name)}
    values = {side.value for side in sides if isinstance(side, ast.Constant)}
    return names == {"__name__"} and values == {"__main__"}


def unguarded_call_site() -> tuple[str, int, bool] | None:
    """Where the current call entered from a script's module-level code outside a ``__main__`` guard:
    ``(file, line, in_rerun)``; ``in_rerun`` is True in a process that is re-running the script (a spawned child
    executes it as ``__mp_main__``, where no guarded code runs). None when the call is guarded, comes from
    elsewhere, or the script's source cannot be read."""
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)  # None for python -c, a notebook, the REPL: nothing is imported again
    # python -m package: multiprocessing does not run a package's __main__ again (nor does `python -m easyssl`)
    package_main = (getattr(getattr(main, "__spec__", None), "name", "") or "").endswith(".__main__")
    frame = inspect.currentframe()
    try:
        while frame is not None:
            code, name = frame.f_code, frame.f_globals.get("__name__")
            if code.co_name == "<module>" and name == "__mp_main__":
                return os.path.abspath(code.co_filename), frame.f_lineno, True
            if code.co_name == "<module>" and name == "__main__" and main_file and not package_main \
                    and _same_file(code.co_filename, main_file):
                path = os.path.abspath(code.co_filename)
                try:
                    guards = _guard_ranges(path, os.path.getmtime(path))
                except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
                    return None
                line = frame.f_lineno
                return None if any(first <= line <= last for first, last in guards) else (path, line, False)
            frame = frame.f_back
    finally:
        del frame
    return None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


#: Whether the fallback warning was given in this process (it is given once).
_warned: list[bool] = []


def safe_num_workers(num_workers: int, context: Any = None) -> int:
    """``num_workers``, or 0 when worker processes would re-run an unguarded script (see the module docstring).

    Warns once per process when it answers 0. Raises :class:`UnguardedScriptError` when called
    from a process that is re-running the script (it must not train), whatever ``num_workers``.
    """
    site = unguarded_call_site()
    if site is None:
        return num_workers
    path, line, in_rerun = site
    if in_rerun:
        raise UnguardedScriptError(
            f"easyssl was called at module level of {os.path.basename(path)} (line {line}) in a process that is re-running "
            f"the script (start method spawn/forkserver): {GUARD_FIX}"
        )
    if num_workers <= 0 or not reruns_main(context):
        return num_workers
    if not _warned:
        _warned.append(True)
        warnings.warn(
            f"easyssl: {os.path.basename(path)} calls easyssl at module level (line {line}) and worker processes start with "
            f"{start_method(context)}, which would run the whole script "
            f"again in each worker: loading images in this process instead (slower). To use {num_workers} workers, {GUARD_FIX}",
            RuntimeWarning,
            stacklevel=3,
        )
    return 0
