"""Output files that are never half-written: every file easyssl writes goes through :func:`atomic_write`.

A kill, a crash or a full disk in the middle of a write must not leave a truncated file that
later loads as a shorter, wrong result (an embeddings file with fewer rows, a checkpoint that
fails to load, a selection list cut in two). So the data go to a temporary file in the same
folder (same filesystem, so the final rename is atomic), are flushed and ``fsync``-ed, and the
temporary file is then renamed over the target with :func:`os.replace`. If anything fails the
temporary file is removed and the previous file at the target path, if any, is left exactly as
it was; an ``OSError`` (full disk, permission denied...) is re-raised with a message naming the
target path, which the command line prints as its one error line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from typing import IO, Any, Callable, Iterator

__all__ = ["OutputWriteError", "atomic_write", "atomic_write_bytes", "atomic_save", "output_error"]


def _prepare(path: str | os.PathLike) -> tuple[str, str]:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    return path, folder


class OutputWriteError(OSError):
    """Writing an output file failed (full disk, permission denied...); the previous file, if any, is intact.

    Its ``errno`` is the original one; its message is one line naming the path.
    """

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def output_error(path: str, error: OSError) -> OSError:
    """An :class:`OutputWriteError` with ``error``'s errno, naming ``path`` and saying that the previous file was kept."""
    if isinstance(error, OutputWriteError):
        return error
    kept = "the previous file is left as it was" if os.path.exists(path) else "nothing was written"
    reason = error.strerror or str(error) or type(error).__name__
    if error.errno == errno.ENOSPC:
        reason = "no space left on the device"
    return OutputWriteError(error.errno or errno.EIO, f"could not write {path!r}: {reason} ({kept})")


def _create_temporary(path: str, folder: str) -> tuple[int, str]:
    """A new file next to ``path``, created with the permissions a plain ``open(path, "w")`` would give
    (``0o666`` less the umask; ``tempfile.mkstemp`` would make it private to its owner)."""
    for _ in range(100):
        tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex[:12]}-{os.path.basename(path)[:100]}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"could not create a temporary file next to {path!r}")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing; on success it replaces ``path`` atomically.

    Args:
        path: The file to (re)write; parent folders are created.
        mode: ``"wb"`` or ``"w"`` (text; pass ``encoding``, ``newline``, ``errors`` as for :func:`open`).

    Example:
        >>> with atomic_write("chosen.txt", "w", encoding="utf-8") as handle:
        ...     handle.write("a.jpg\\n")
    """
    if "w" not in mode:
        raise ValueError(f"atomic_write writes a new file: mode must contain 'w', got {mode!r}")
    path, folder = _prepare(path)
    fd, tmp = _create_temporary(path, folder)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _sync_folder(folder)
    except OSError as error:
        raise output_error(path, error) from error
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable (best effort: not every system can fsync a folder)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`) and return the path."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    return os.fspath(path)


class _Recording:
    """A file handle that remembers the OSError its ``write`` raised: some writers (``torch.save``) turn it into
    another error on the way out, and the caller should see the full disk, not that."""

    def __init__(self, handle: IO) -> None:
        self._handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> Any:
        try:
            return self._handle.write(data)
        except OSError as error:
            self.error = error
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def atomic_save(path: str | os.PathLike, write: Callable[[IO], Any]) -> str:
    """Call ``write(handle)`` on a binary handle to a temporary file, then move it to ``path`` atomically.

    For writers that take a file object (``torch.save``, ``np.savez``, ``Image.save``). When the
    writer fails after a write to the disk failed, the disk's ``OSError`` is what is raised.
    """
    with atomic_write(path, "wb") as handle:
        recording = _Recording(handle)
        try:
            write(recording)
        except OSError:
            raise
        except Exception as error:
            if recording.error is not None:
                raise recording.error from error
            raise
    return os.fspath(path)
