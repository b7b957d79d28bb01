"""Issue 13 item 4: one run per checkpoint folder; a lock left by a killed run does not block resume=True."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from easyssl import train_embedding_model
from easyssl.cli import main
from easyssl.train.lock import LOCK_FILE, RunLock, RunLockedError
from tests.conftest import fast_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOLDER = "import sys, time\nfrom easyssl.train.lock import RunLock\nRunLock(sys.argv[1]).acquire()\nprint('held', flush=True)\ntime.sleep(120)\n"


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_second_lock_on_a_folder_is_refused_and_released_after(tmp_path):
    with RunLock(tmp_path) as first:
        assert first.held and json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
        with pytest.raises(RunLockedError, match=rf"{tmp_path}.*process {os.getpid()} on {socket.gethostname()}"):
            RunLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_FILE).exists()
    with RunLock(tmp_path):  # free again
        pass


def test_stale_lock_file_with_a_dead_pid_is_taken_over(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": _dead_pid(), "hostname": socket.gethostname(), "started": "x"}))
    with RunLock(tmp_path) as lock:
        assert lock.held and json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_live_run_blocks_a_second_run_and_a_killed_one_does_not_block_resume(demo_folder, tmp_path, capsys):
    run = tmp_path / "run"
    checkpoint = train_embedding_model(demo_folder, checkpoint_dir=str(run), **fast_config())
    assert not (run / LOCK_FILE).exists(), "the lock is released when training ends"

    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError) as caught:
            train_embedding_model(demo_folder, checkpoint_dir=str(run), resume=True, **fast_config())
        assert str(run) in str(caught.value) and f"process {holder.pid}" in str(caught.value)
        argv = ["train", demo_folder, "--checkpoint-dir", str(run), "--epochs", "1", "--batch-size", "8", "--num-workers", "0",
                "--input-size", "32", "--backbone", "resnet-18", "--width", "0.125", "--device", "cpu", "--quiet"]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(run) in err and str(holder.pid) in err
    finally:
        holder.send_signal(signal.SIGKILL)  # killed: its lock file stays behind
        holder.wait()
    assert json.loads((run / LOCK_FILE).read_text())["pid"] == holder.pid
    resumed = train_embedding_model(demo_folder, checkpoint_dir=str(run), resume=True, **fast_config(trainer={"max_epochs": 2}))
    assert resumed == checkpoint and not (run / LOCK_FILE).exists()


ORPHANS = (
    "import os, sys, time\nfrom easyssl.train.lock import RunLock\nRunLock(sys.argv[1]).acquire()\n"
    "child = os.fork()\nif child == 0:\n    time.sleep(60)\n    os._exit(0)\nprint('held', child, flush=True)\ntime.sleep(120)\n"
)


def test_lock_still_held_by_loader_workers_of_a_killed_run_does_not_block(tmp_path):
    """A DataLoader worker forked by the run shares its lock; after ``kill -9`` of the run it may outlive it briefly."""
    holder = subprocess.Popen([sys.executable, "-c", ORPHANS, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child = None
    try:
        word, child = holder.stdout.readline().split()
        assert word == "held"
        with pytest.raises(RunLockedError):
            RunLock(tmp_path).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        with RunLock(tmp_path) as lock:  # the forked child still holds the old file's flock
            assert lock.held
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child), signal.SIGKILL)
