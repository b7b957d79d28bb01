"""Embeddings on disk: CSV in the layout LightlySSL users already have, and ``.npz`` for large sets."""

from __future__ import annotations

import csv
import os
from typing import Sequence

import numpy as np

from easyssl.runtime.files import atomic_write

#: How embeddings CSV files are opened: UTF-8, with file-name bytes that are not UTF-8 kept as they are
#: (``surrogateescape``, as Python reads such names from the disk), and CSV's own line endings.
CSV_TEXT = {"encoding": "utf-8", "errors": "surrogateescape", "newline": ""}


def _check(embeddings: np.ndarray, labels: Sequence[int] | None, filenames: Sequence[str]) -> tuple[np.ndarray, list[int]]:
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (N, D), got shape {embeddings.shape}")
    n = embeddings.shape[0]
    labels = [0] * n if labels is None else [int(x) for x in labels]
    if len(labels) != n or len(filenames) != n:
        raise ValueError(f"got {n} embeddings, {len(labels)} labels and {len(filenames)} filenames: they must match")
    return embeddings, labels


def save_embeddings(
    path: str | os.PathLike, embeddings: np.ndarray, labels: Sequence[int] | None, filenames: Sequence[str],
    training_steps: int | None = None,
) -> str:
    """Save embeddings with their labels and filenames; the format follows the file's extension.

    * ``.csv``: header ``filenames,embedding_0,...,embedding_{D-1},labels``, one row per image
      (the layout of LightlySSL's ``save_embeddings``), floats written with 9 significant digits
      so float32 values round-trip exactly.
    * ``.npz``: ``embeddings`` (float32), ``labels`` (int64) and ``filenames`` arrays; compact and fast.
      With ``training_steps`` (the model's training length: ``load_checkpoint(path)["step"]``) also a
      ``training_steps`` array, so ``easyssl duplicates`` can warn about a barely trained model
      (:func:`embeddings_training_steps`; a CSV has no place for it).

    The file is written to a temporary name, fsync-ed and renamed (:func:`~easyssl.runtime.files.atomic_write`),
    so a crash or a full disk never leaves half a file: the previous file stays as it was.
    Filenames round-trip exactly, whatever they hold: commas, quotes and newlines are quoted
    as CSV does, and bytes that are not UTF-8 (names read from disk with ``surrogateescape``)
    are written back as the same bytes.

    Returns:
        The path written.
    """
    path = os.fspath(path)
    embeddings, labels = _check(embeddings, labels, filenames)
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npz":
        with atomic_write(path, "wb") as handle:
            extra = {} if training_steps is None else {"training_steps": np.asarray(int(training_steps), dtype=np.int64)}
            np.savez(handle, embeddings=embeddings, labels=np.asarray(labels, dtype=np.int64), filenames=np.asarray(list(filenames), dtype=str),
                     **extra)
    elif extension == ".csv":
        with atomic_write(path, "w", **CSV_TEXT) as handle:
            writer = csv.writer(handle)
            writer.writerow(["filenames"] + [f"embedding_{i}" for i in range(embeddings.shape[1])] + ["labels"])
            for name, row, label in zip(filenames, embeddings, labels):
                writer.writerow([name, *(f"{v:.9g}" for v in row.tolist()), label])
    else:
        raise ValueError(f"cannot save embeddings to {path!r}: use a .csv or .npz file name")
    return path


def load_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, list[int], list[str]]:
    """Load ``(embeddings, labels, filenames)`` from a ``.csv`` or ``.npz`` written by :func:`save_embeddings`
    (or by LightlySSL: same CSV columns)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"embeddings file {path!r} does not exist")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npz":
        with np.load(path, allow_pickle=False) as data:
            missing = {"embeddings", "labels", "filenames"} - set(data.files)
            if missing:
                raise ValueError(f"{path!r} is not an embeddings file: it lacks the arrays {sorted(missing)}")
            return data["embeddings"].astype(np.float32), data["labels"].astype(int).tolist(), data["filenames"].astype(str).tolist()
    if extension != ".csv":
        raise ValueError(f"cannot load embeddings from {path!r}: use a .csv or .npz file")
    with open(path, **CSV_TEXT) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or header[0] != "filenames" or header[-1] != "labels" or not all(
            h.startswith("embedding_") for h in header[1:-1]
        ):
            raise ValueError(
                f"{path!r} is not an embeddings CSV: expected the header filenames,embedding_0,...,embedding_N,labels"
            )
        filenames, labels, rows = [], [], []
        for line_number, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise ValueError(f"{path!r} line {line_number}: {len(row)} columns where the header has {len(header)}")
            filenames.append(row[0])
            labels.append(int(row[-1]))
            rows.append(row[1:-1])
    embeddings = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(header) - 2)
    return embeddings, labels, filenames


def embeddings_training_steps(path: str | os.PathLike) -> int | None:
    """How many steps the model that made an embeddings file trained for, when the file says (a ``.npz`` written
    with ``training_steps``, as ``easyssl embed`` and ``easyssl run`` write them); ``None`` otherwise."""
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() != ".npz" or not os.path.isfile(path):
        return None
    with np.load(path, allow_pickle=False) as data:
        return int(data["training_steps"]) if "training_steps" in data.files else None
