"""What the command modules share: the usage error, folder checks and reading/writing the embeddings file's names."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from easyssl.inference import load_embeddings


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
    """``label -> class folder`` when every label's files share one top-level folder."""
    names: dict[int, str] = {}
    for label, name in zip(labels, filenames):
        name = _norm(name)
        if "/" not in name:
            return None
        folder = name.split("/", 1)[0]
        if names.setdefault(label, folder) != folder:
            return None
    return names


def write_lines(path: str, lines: Sequence[str]) -> None:
    """Write ``lines`` to the text file ``path`` (parent folders created)."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)


def read_names(path: str, filenames: Sequence[str], what: str) -> list[int]:
    """Rows of the filenames listed one per line in ``path`` (``#`` comments and blank lines skipped)."""
    if not os.path.isfile(path):
        raise CLIError(f"{what} file {path!r} does not exist")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            name = line.strip()
            if not name or name.startswith("#"):
                continue
            row = match_filename(name, filenames)
            if row is None:
                raise CLIError(f"{path!r} line {line_number}: {name!r} is not in the embeddings file")
            rows.append(row)
    return rows
