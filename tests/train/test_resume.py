"""Never lose a run: resume after SIGKILL, atomic checkpoints, clean Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import easyssl.runtime.checkpoint
from easyssl import build_training, load_checkpoint, save_checkpoint, train_embedding_model
from easyssl.runtime.checkpoint import CheckpointError
from easyssl.train.lock import LOCK_FILE
from tests.conftest import fast_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Runs `easyssl train` through the CLI's main(); argv[1] > 0 makes every training step that many seconds slower.
SCRIPT = """
import sys, time
import torch
torch.set_num_threads(1)
import easyssl.train.trainer
delay = float(sys.argv[1])
if delay:
    original = easyssl.train.trainer.TrainStep.forward
    def slow(self, *args, **kwargs):
        time.sleep(delay)
        return original(self, *args, **kwargs)
    easyssl.train.trainer.TrainStep.forward = slow
from easyssl.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _train_argv(folder, run_dir, epochs=4, resume=False):
    argv = ["train", folder, "--checkpoint-dir", str(run_dir), "--epochs", str(epochs), "--batch-size", "8", "--num-workers", "0",
            "--input-size", "32", "--backbone", "resnet-18", "--width", "0.125", "--seed", "3", "--device", "cpu", "--quiet"]
    return argv + (["--resume"] if resume else [])


def _start(folder, run_dir, delay=0.0, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(delay), *_train_argv(folder, run_dir, **kwargs)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for_epoch(process, checkpoint, epoch, timeout=120):
    """Wait until ``checkpoint`` records ``epoch`` completed epochs (the process is then in the next epoch)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, f"training ended early: {process.communicate()}"
        if os.path.exists(checkpoint):
            try:
                if load_checkpoint(checkpoint)["epoch"] >= epoch:
                    return
            except (CheckpointError, FileNotFoundError):  # being replaced right now
                pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


def _weights(path):
    return load_checkpoint(path)["model"]


def test_sigkill_mid_epoch_then_resume_to_the_end(demo_folder, tmp_path):
    # The reference: the same run, never interrupted.
    reference = _start(demo_folder, tmp_path / "reference")
    # The victim: slowed down (5 steps of 0.25 s per epoch) so that it is in the middle of epoch 2 when killed.
    victim = _start(demo_folder, tmp_path / "victim", delay=0.25)
    checkpoint = tmp_path / "victim" / "last.ckpt"
    _wait_for_epoch(victim, checkpoint, 1)
    time.sleep(0.4)  # about 2 of epoch 2's 5 steps done
    assert victim.poll() is None
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    state = load_checkpoint(checkpoint)  # the checkpoint survived the kill
    assert 1 <= state["epoch"] < 4 and state["step"] == 5 * state["epoch"]
    left = set(os.listdir(tmp_path / "victim")) - {"metrics.csv", "training_curve.png"}  # issue 14: the run's metrics
    assert all(name in ("last.ckpt", LOCK_FILE) or name.startswith(".tmp-") for name in left), left
    # The killed run's lock file stays behind; it does not block resume=True (issue 13).

    resumed = _start(demo_folder, tmp_path / "victim", resume=True)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    out_ref, err_ref = reference.communicate(timeout=300)
    assert reference.returncode == 0, err_ref
    final = load_checkpoint(checkpoint)
    assert final["epoch"] == 4 and final["step"] == 20 and [h["epoch"] for h in final["history"]] == [1, 2, 3, 4]
    assert "last.ckpt" in os.listdir(tmp_path / "victim")
    # Seeds fixed, one thread, no workers: the resumed run ends with exactly the weights of the uninterrupted one.
    reference_weights = _weights(tmp_path / "reference" / "last.ckpt")
    for key, value in _weights(checkpoint).items():
        assert torch.equal(value, reference_weights[key]), key


def test_ctrl_c_stops_cleanly_and_keeps_the_last_checkpoint(demo_folder, tmp_path):
    process = _start(demo_folder, tmp_path / "run", delay=0.25, epochs=50)
    checkpoint = tmp_path / "run" / "last.ckpt"
    _wait_for_epoch(process, checkpoint, 1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in out + err and "Traceback" not in err
    assert load_checkpoint(checkpoint)["epoch"] >= 1
    assert sorted(os.listdir(tmp_path / "run")) == ["last.ckpt", "metrics.csv", "training_curve.png"]  # no temporary file left


def test_resume_restores_every_piece_of_training_state(demo_folder, tmp_path):
    config = fast_config(criterion={"memory_bank_size": 16}, trainer={"max_epochs": 1})
    path = train_embedding_model(demo_folder, checkpoint_dir=tmp_path, **config)
    saved = load_checkpoint(path)
    assert saved["epoch"] == 1 and saved["rng"]["loader"] is not None
    run = build_training(demo_folder, checkpoint_dir=tmp_path, resume=True, **fast_config(criterion={"memory_bank_size": 16}))
    assert run.resume_from == path
    caller_state = torch.get_rng_state()
    epochs = run.trainer.load_checkpoint(run.resume_from, restore_training_state=True)
    assert epochs == 1 and run.trainer.progress.step == saved["step"] == 5
    for key, value in saved["model"].items():
        assert torch.equal(run.trainer.model.state_dict()[key], value), key
    assert torch.equal(run.trainer.criterion.memory_bank.bank, saved["criterion"]["memory_bank.bank"])  # memory bank
    momentum = run.trainer.optimizer.state_dict()["state"]
    assert momentum and all(torch.equal(momentum[k]["momentum_buffer"], v["momentum_buffer"]) for k, v in saved["optimizer"]["state"].items())
    # The run's random streams continue from the saved state; the caller's global state is left alone.
    assert torch.equal(run.trainer.random_streams.state_dict()["torch"], saved["rng"]["torch"])
    assert torch.equal(torch.get_rng_state(), caller_state)
    assert torch.equal(run.trainer.dataloader.generator.get_state(), saved["rng"]["loader"])
    # And training continues to the new end.
    final = train_embedding_model(demo_folder, checkpoint_dir=tmp_path, resume=True, **fast_config(trainer={"max_epochs": 2}, criterion={"memory_bank_size": 16}))
    state = load_checkpoint(final)
    assert state["epoch"] == 2 and state["step"] == 10 and len(state["history"]) == 2
    assert not torch.equal(state["criterion"]["memory_bank.bank"], saved["criterion"]["memory_bank.bank"])


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    save_checkpoint(path, {"epoch": 1, "weights": torch.arange(10)})
    real_save = torch.save

    def half_then_fail(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(easyssl.runtime.checkpoint.torch, "save", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, {"epoch": 2, "weights": torch.zeros(10)})

    def killed(obj, handle, *args, **kwargs):
        handle.write(b"partial")
        raise KeyboardInterrupt  # Ctrl-C during the write

    monkeypatch.setattr(easyssl.runtime.checkpoint.torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"epoch": 2})
    monkeypatch.setattr(easyssl.runtime.checkpoint.torch, "save", real_save)
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["weights"], torch.arange(10))
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_a_kill_during_the_write_leaves_the_previous_checkpoint_intact(tmp_path):
    # A process killed while torch.save writes the temporary file: last.ckpt is untouched.
    path = tmp_path / "last.ckpt"
    save_checkpoint(path, {"epoch": 1})
    code = (
        "import os, signal, torch, easyssl.runtime.checkpoint as c\n"
        "def dying(obj, handle, *a, **k):\n"
        "    handle.write(b'partial'); handle.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
        "c.torch.save = dying\n"
        f"c.save_checkpoint({str(path)!r}, {{'epoch': 2}})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT)
    assert result.returncode == -signal.SIGKILL
    assert load_checkpoint(path)["epoch"] == 1
    # The dead process's temporary file may remain, but it is never mistaken for the checkpoint.
    assert all(name == "last.ckpt" or name.startswith(".tmp-") for name in os.listdir(tmp_path))
