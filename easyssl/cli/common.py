"""What the command modules share: the usage error, folder checks and reading/writing the embeddings file's names."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from typing import Iterator, Sequence

import numpy as np

from easyssl.inference import load_embeddings
from easyssl.tools.projection import folder_class_names
from easyssl.runtime.files import atomic_write


class CLIError(Exception):
    """A usage error: reported as one line, exit code 2 (see :mod:`easyssl.cli`)."""


def check_dir(path: str) -> str:
    """``path`` when it is a readable folder, else a :class:`CLIError` that says what is wrong."""
    if not path or "\x00" in path:
        raise CLIError(f"{path!r} is not a folder name: pass the folder that holds your images (or videos)")
    if not os.path.exists(path):
        raise CLIError(f"folder {path!r} does not exist: pass the folder that holds your images (or videos)")
    if not os.path.isdir(path):
        raise CLIError(f"{path!r} is a file, not a folder: pass the folder that holds your images (or videos)")
    if not os.access(path, os.R_OK | os.X_OK):
        raise CLIError(f"folder {path!r} cannot be read (permission denied)")
    return path


def check_positive(value: int | None, flag: str) -> None:
    """CLIError when a count flag (``--epochs``, ``--max-steps``...) is given and below 1."""
    if value is not None and value < 1:
        raise CLIError(f"{flag} must be at least 1, got {value}")


def read_embeddings(path: str) -> tuple[np.ndarray, list[int], list[str]]:
    """An embeddings file written by ``easyssl embed``/``run``; a CLIError when it holds no row."""
    embeddings, labels, filenames = load_embeddings(path)
    if embeddings.shape[0] == 0:
        raise CLIError(f"{path!r} holds no embeddings")
    return embeddings, labels, filenames


def _norm(name: str) -> str:
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name


def match_filename(query: str, filenames: Sequence[str]) -> int | None:
    """Row of ``query`` among ``filenames``: an exact match, a path ending in a filename
    (``/data/imgs/cats/a.jpg`` matches ``cats/a.jpg``), or the unique filename ending in
    the query (``a.jpg`` matches ``cats/a.jpg``). ``None`` when nothing matches.

    Raises:
        CLIError: several filenames end in the query.
    """
    q = _norm(query)
    names = [_norm(f) for f in filenames]
    for i, name in enumerate(names):
        if name == q:
            return i
    ending = [(len(name), i) for i, name in enumerate(names) if q.endswith("/" + name)]
    if ending:
        return max(ending)[1]  # the longest (most specific) filename the path ends in
    inside = [i for i, name in enumerate(names) if name.endswith("/" + q)]
    if len(inside) == 1:
        return inside[0]
    if len(inside) > 1:
        shown = ", ".join(repr(filenames[i]) for i in inside[:3])
        more = f" and {len(inside) - 3} more" if len(inside) > 3 else ""
        raise CLIError(f"query {query!r} is ambiguous: it matches {shown}{more}; give more of the path")
    return None


def class_names(labels: Sequence[int], filenames: Sequence[str]) -> dict[int, str] | None:
    """``label -> class folder`` when every label's files share one top-level folder (the rule
    ``plot_embeddings(..., filenames=...)`` uses too: :func:`easyssl.tools.projection.folder_class_names`)."""
    return folder_class_names(labels, filenames)


#: How the command line's text outputs are opened: UTF-8, file-name bytes that are not UTF-8 kept as they are.
TEXT = {"encoding": "utf-8", "errors": "surrogateescape"}


def quote_name(name: str) -> str:
    """``name`` as one field of a line of text: as it is, unless it could not be read back exactly (it holds a
    tab, a newline or a carriage return, starts with ``"`` or ``#``, or has spaces at either end): then as a
    JSON string, ``"..."`` (see :func:`unquote_name`)."""
    if any(c in name for c in "\t\n\r") or name[:1] in ('"', "#") or name != name.strip():
        return json.dumps(name, ensure_ascii=False)
    return name


def unquote_name(field: str) -> str:
    """The filename of a field written by :func:`quote_name`."""
    if field.startswith('"') and field.endswith('"') and len(field) >= 2:
        try:
            return json.loads(field)
        except ValueError:
            return field
    return field


@contextlib.contextmanager
def plain_warnings() -> Iterator[None]:
    """While a command runs, show warnings as one ``easyssl: warning: ...`` line, not with the file, line number and
    source line of the library code that raised them (which mean nothing to someone at a shell)."""
    original = warnings.formatwarning

    def one_line(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001 - formatwarning's signature
        return f"easyssl: warning: {message}\n"

    warnings.formatwarning = one_line  # type: ignore[assignment]
    try:
        yield
    finally:
        warnings.formatwarning = original


@contextlib.contextmanager
def printable_names() -> Iterator[None]:
    """While a command runs, print file names whose bytes are not UTF-8 as those same bytes (as ``ls`` does)
    instead of failing with ``UnicodeEncodeError``; stdout's error handler is put back afterwards."""
    stream = sys.stdout
    errors = getattr(stream, "errors", None)
    if errors != "strict" or not hasattr(stream, "reconfigure"):
        yield
        return
    try:
        stream.reconfigure(errors="surrogateescape")
    except Exception:  # a stream that cannot change (a test capture...): leave it
        yield
        return
    try:
        yield
    finally:
        try:
            stream.reconfigure(errors=errors)
        except Exception:
            pass


def write_lines(path: str, lines: Sequence[str]) -> None:
    """Write ``lines`` to the text file ``path`` (parent folders created), atomically (temporary file,
    fsync, rename): a failure such as a full disk leaves any previous file intact."""
    with atomic_write(path, "w", **TEXT) as handle:
        handle.writelines(line + "\n" for line in lines)


def read_names(path: str, filenames: Sequence[str], what: str) -> list[int]:
    """Rows of the filenames listed one per line in ``path`` (``#`` comments and blank lines skipped)."""
    if not os.path.isfile(path):
        raise CLIError(f"{what} file {path!r} does not exist")
    rows = []
    with open(path, newline="\n", **TEXT) as handle:
        for line_number, line in enumerate(handle, start=1):
            name = line.strip()
            if not name or name.startswith("#"):
                continue
            row = match_filename(unquote_name(name), filenames)
            if row is None:
                raise CLIError(f"{path!r} line {line_number}: {name!r} is not in the embeddings file")
            rows.append(row)
    return rows
