"""One run per checkpoint folder: a lock file that a second run on the same folder refuses to share.

Two runs writing ``last.ckpt`` in the same folder would overwrite each other's checkpoints, and
``resume=True`` would then continue whichever wrote last. So a run that writes checkpoints holds
``<checkpoint_dir>/.easyssl.lock`` while it trains: the file names the holder (pid, host, start
time), and the holder keeps an ``fcntl.flock`` on it. The kernel drops that lock when the holder
exits, however it exits (even ``kill -9``), so a lock file left by a killed run is recognised as
stale and taken over: it never blocks ``resume=True``. Where ``flock`` is unavailable (Windows, some
network filesystems), the file is stale when its pid no longer runs on this host.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from typing import Any, Iterator

from easyssl.runtime import distributed

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

#: Name of the lock file inside a checkpoint folder.
LOCK_FILE = ".easyssl.lock"

__all__ = ["LOCK_FILE", "RunLock", "RunLockedError", "hold_run_folder"]


class RunLockedError(OSError):
    """Another live run holds the checkpoint folder (an ``OSError``: the command line reports it in one line, exit 2)."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


class RunLock:
    """The lock of one checkpoint folder (see the module docstring).

    Example:
        >>> with RunLock("runs/a"):
        ...     trainer.train_embedding(checkpoint_dir="runs/a")   # a second run on runs/a is refused meanwhile
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, LOCK_FILE)
        self._fd: int | None = None

    def holder(self) -> dict[str, Any]:
        """What the lock file says about its holder (``pid``, ``hostname``, ``started``); ``{}`` when unreadable."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _refuse(self, holder: dict[str, Any]) -> RunLockedError:
        who = (f"process {holder.get('pid')} on {holder.get('hostname')}" + (f", started {holder['started']}" if holder.get("started") else "")
               if holder.get("pid") else "another process")
        return RunLockedError(
            errno.EBUSY,
            f"checkpoint folder {self.folder!r} is in use by another easyssl run ({who}; lock file {self.path!r}): "
            "wait for it to finish, or use another checkpoint_dir. If no such run exists any more, delete the lock file",
        )

    @staticmethod
    def _orphaned(holder: dict[str, Any]) -> bool:
        """The flock is held, but the run that took it is dead: loader worker processes forked from it (they share
        its open file) can outlive it by a few seconds after a ``kill -9``."""
        pid = holder.get("pid")
        return isinstance(pid, int) and holder.get("hostname") == socket.gethostname() and not _pid_alive(pid)

    def _stale_without_flock(self) -> bool:
        holder = self.holder()
        pid, host = holder.get("pid"), holder.get("hostname")
        if not isinstance(pid, int):
            # Unreadable or half-written: stale once it is a few seconds old (a live holder writes it at once).
            try:
                return time.time() - os.path.getmtime(self.path) > 10
            except OSError:
                return True
        return host == socket.gethostname() and not _pid_alive(pid)

    def acquire(self) -> "RunLock":
        """Take the lock, or raise :class:`RunLockedError` naming the folder and the live holder."""
        os.makedirs(self.folder, exist_ok=True)
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        holder = self.holder()
                        if not self._orphaned(holder):
                            raise self._refuse(holder) from None
                        with contextlib.suppress(OSError):  # a new file (inode) that the orphans do not hold
                            if os.stat(self.path).st_ino == os.fstat(fd).st_ino:  # not one another run just made
                                os.remove(self.path)
                        os.close(fd)
                        continue
                    except OSError as error:  # no flock on this filesystem: the pid decides
                        if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                            raise
                        if os.fstat(fd).st_size and not self._stale_without_flock():
                            raise self._refuse(self.holder()) from None
                elif os.fstat(fd).st_size and not self._stale_without_flock():
                    raise self._refuse(self.holder()) from None
                try:
                    same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if not same:  # the previous holder removed the file meanwhile: lock the new one
                    os.close(fd)
                    continue
                record = {"pid": os.getpid(), "hostname": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, json.dumps(record).encode("utf-8"))
                os.fsync(fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            self._fd = fd
            return self
        raise self._refuse(self.holder())

    def release(self) -> None:
        """Remove the lock file and drop the lock (a no-op when not held)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                os.remove(self.path)  # removed while still locked, so no one locks a file about to vanish
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


@contextlib.contextmanager
def hold_run_folder(folder: str | os.PathLike | None) -> Iterator[RunLock | None]:
    """Hold ``folder``'s :class:`RunLock` for the block (rank 0 takes it; under ``torch.distributed`` every
    rank refuses together when it is held elsewhere). ``None``: no folder, no lock."""
    if folder is None:
        yield None
        return
    lock = RunLock(folder) if distributed.is_main_process() else None
    refusal: str | None = None
    if lock is not None:
        try:
            lock.acquire()
        except RunLockedError as error:
            refusal = error.strerror or str(error)
    refusal = distributed.broadcast_object(refusal)
    if refusal is not None:
        raise RunLockedError(errno.EBUSY, refusal)
    try:
        yield lock
    finally:
        if lock is not None:
            lock.release()
