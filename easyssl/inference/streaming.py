"""Writing embeddings to a file batch by batch, so that embedding a huge set needs memory for one batch only.

:class:`EmbeddingStreamWriter` appends each batch to temporary part files on disk and, on
:meth:`~EmbeddingStreamWriter.close`, assembles the final ``.csv`` or ``.npz`` (the same
layouts as :func:`easyssl.save_embeddings`, readable by :func:`easyssl.load_embeddings`)
by copying the parts in chunks, then renames it into place. Several processes (one per
rank under ``torch.distributed``) each write their own part; rank 0 assembles them in
rank order. :func:`easyssl.api.stream_embeddings` uses it.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import uuid
import zipfile
from typing import IO, Sequence

import numpy as np

from easyssl.inference.embeddings_io import CSV_TEXT
from easyssl.runtime.files import atomic_write, output_error

_ROWS_PER_CHUNK = 4096


class _Part:
    """One process's embeddings on disk: raw float32 rows, raw int64 labels, JSON-lines filenames."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0
        self.dim: int | None = None
        self.max_name = 1

    def paths(self) -> tuple[str, str, str]:
        return self.prefix + ".f32", self.prefix + ".i64", self.prefix + ".names"

    def open(self) -> None:
        emb, lab, names = self.paths()
        self._emb = open(emb, "wb")
        self._lab = open(lab, "wb")
        self._names = open(names, "w", encoding="utf-8")

    def write(self, embeddings: np.ndarray, labels: Sequence[int], filenames: Sequence[str]) -> None:
        embeddings = np.ascontiguousarray(embeddings, dtype="<f4")
        if embeddings.ndim != 2 or len(labels) != embeddings.shape[0] or len(filenames) != embeddings.shape[0]:
            raise ValueError(
                f"a batch of embeddings must be (B, D) with B labels and B filenames, got {embeddings.shape}, "
                f"{len(labels)} labels and {len(filenames)} filenames"
            )
        if embeddings.shape[0] == 0:
            return
        if self.dim is None:
            self.dim = int(embeddings.shape[1])
        elif embeddings.shape[1] != self.dim:
            raise ValueError(f"embeddings changed dimension from {self.dim} to {embeddings.shape[1]}")
        self._emb.write(embeddings.tobytes())
        self._lab.write(np.asarray(labels, dtype="<i8").tobytes())
        for name in filenames:
            self._names.write(json.dumps(str(name)) + "\n")
            self.max_name = max(self.max_name, len(str(name)))
        self.count += embeddings.shape[0]

    def close(self) -> None:
        for handle in (getattr(self, "_emb", None), getattr(self, "_lab", None), getattr(self, "_names", None)):
            if handle is not None and not handle.closed:
                handle.close()

    def remove(self) -> None:
        self.close()
        for path in self.paths():
            if os.path.exists(path):
                os.remove(path)


class EmbeddingStreamWriter:
    """Write ``(embeddings, labels, filenames)`` batches to a ``.csv`` or ``.npz`` file without keeping them in memory.

    Args:
        path: The output file; its extension picks the format.
        rank: This process's part (0 when alone); parts are assembled in rank order.
        world_size: Number of processes writing parts.
        token: A name shared by the processes of one run (rank 0's is broadcast by
            :func:`easyssl.api.stream_embeddings`); default: a fresh random one.
        training_steps: The model's training length, stored in a ``.npz`` (see :func:`~easyssl.inference.save_embeddings`).

    Example:
        >>> with EmbeddingStreamWriter("embeddings.npz") as writer:
        ...     for embeddings, labels, filenames in batches:
        ...         writer.write(embeddings, labels, filenames)
    """

    def __init__(self, path: str | os.PathLike, rank: int = 0, world_size: int = 1, token: str | None = None,
                 training_steps: int | None = None) -> None:
        self.path = os.fspath(path)
        self.training_steps = training_steps
        self.format = os.path.splitext(self.path)[1].lower()
        if self.format not in (".csv", ".npz"):
            raise ValueError(f"cannot stream embeddings to {self.path!r}: use a .csv or .npz file name")
        self.folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(self.folder, exist_ok=True)
        self.rank, self.world_size = int(rank), int(world_size)
        self.token = token or uuid.uuid4().hex[:12]
        self.part = _Part(self._prefix(self.rank))
        self.part.open()

    def _prefix(self, rank: int) -> str:
        return os.path.join(self.folder, f".tmp-{self.token}-{os.path.basename(self.path)}.part{rank}")

    @property
    def count(self) -> int:
        """Rows written by this process so far."""
        return self.part.count

    def write(self, embeddings: np.ndarray, labels: Sequence[int], filenames: Sequence[str]) -> None:
        """Append one batch (to this process's part files; a full disk raises an OSError naming the output)."""
        try:
            self.part.write(embeddings, labels, filenames)
        except OSError as error:
            raise output_error(self.path, error) from error

    def finish_part(self) -> dict[str, int | None]:
        """Close this process's part and return its summary (``count``, ``dim``, ``max_name``)."""
        self.part.close()
        return {"count": self.part.count, "dim": self.part.dim, "max_name": self.part.max_name}

    def assemble(self, summaries: Sequence[dict[str, int | None]]) -> str:
        """Write the final file from every rank's part (rank 0 only), remove the parts, and return the path."""
        parts = []
        for rank, summary in enumerate(summaries):
            part = _Part(self._prefix(rank))
            part.count, part.dim, part.max_name = int(summary["count"] or 0), summary["dim"], int(summary["max_name"] or 1)
            parts.append(part)
        dims = {p.dim for p in parts if p.count}
        if len(dims) > 1:
            raise ValueError(f"the processes wrote embeddings of different dimensions: {sorted(dims)}")
        dim = dims.pop() if dims else 0
        try:  # temporary file, fsync, rename: a failure leaves any previous file at self.path as it was
            if self.format == ".npz":
                with atomic_write(self.path, "wb") as handle:
                    _write_npz(handle, parts, dim, self.training_steps)
            else:
                with atomic_write(self.path, "w", **CSV_TEXT) as handle:
                    _write_csv(handle, parts, dim)
        finally:
            for part in parts:
                part.remove()
        return self.path

    def close(self) -> str:
        """Finish a single-process stream: assemble the file and return its path."""
        return self.assemble([self.finish_part()])

    def abort(self) -> None:
        """Remove this process's part files without writing the output."""
        self.part.remove()

    def __enter__(self) -> "EmbeddingStreamWriter":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def _write_npy_header(handle, dtype: str, shape: tuple[int, ...]) -> None:
    np.lib.format.write_array_header_1_0(handle, {"descr": dtype, "fortran_order": False, "shape": shape})


def _write_npz(handle: IO[bytes], parts: Sequence[_Part], dim: int, training_steps: int | None = None) -> None:
    total = sum(p.count for p in parts)
    width = max([p.max_name for p in parts] + [1])
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("embeddings.npy", "w", force_zip64=True) as member:
            _write_npy_header(member, "<f4", (total, dim))
            for part in parts:
                if part.count:
                    with open(part.paths()[0], "rb") as source:
                        shutil.copyfileobj(source, member, 1 << 20)
        with archive.open("labels.npy", "w", force_zip64=True) as member:
            _write_npy_header(member, "<i8", (total,))
            for part in parts:
                if part.count:
                    with open(part.paths()[1], "rb") as source:
                        shutil.copyfileobj(source, member, 1 << 20)
        with archive.open("filenames.npy", "w", force_zip64=True) as handle:
            _write_npy_header(handle, f"<U{width}", (total,))
            for part in parts:
                if not part.count:
                    continue
                with open(part.paths()[2], encoding="utf-8") as source:
                    chunk: list[str] = []
                    for line in source:
                        chunk.append(json.loads(line))
                        if len(chunk) == _ROWS_PER_CHUNK:
                            handle.write(np.asarray(chunk, dtype=f"<U{width}").tobytes())
                            chunk = []
                    if chunk:
                        handle.write(np.asarray(chunk, dtype=f"<U{width}").tobytes())
        if training_steps is not None:
            with archive.open("training_steps.npy", "w") as member:
                np.lib.format.write_array(member, np.asarray(int(training_steps), dtype=np.int64))


def _write_csv(handle: IO[str], parts: Sequence[_Part], dim: int) -> None:
    writer = csv.writer(handle)
    writer.writerow(["filenames"] + [f"embedding_{i}" for i in range(dim)] + ["labels"])
    row_bytes = 4 * dim
    for part in parts:
        if not part.count:
            continue
        emb_path, lab_path, names_path = part.paths()
        with open(emb_path, "rb") as emb, open(lab_path, "rb") as lab, open(names_path, encoding="utf-8") as names:
            while True:
                rows = emb.read(row_bytes * _ROWS_PER_CHUNK) if row_bytes else b""
                n = len(rows) // row_bytes if row_bytes else 0
                if n == 0:
                    break
                block = np.frombuffer(rows, dtype="<f4").reshape(n, dim)
                labels = np.frombuffer(lab.read(8 * n), dtype="<i8")
                for row, label in zip(block, labels):
                    name = json.loads(names.readline())
                    writer.writerow([name, *(f"{v:.9g}" for v in row.tolist()), int(label)])
