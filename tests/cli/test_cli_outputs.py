"""The command line explains its runs (issues 14.5, 16.3): chance level, absolute paths, next steps, --eval-dir, run folders."""

from __future__ import annotations

import os

from easyssl.cli import main
from easyssl.inference import load_embeddings
from easyssl.train.metrics import read_metrics

FAST_FLAGS = ["--backbone", "resnet-18", "--width", "0.125", "--input-size", "32", "--batch-size", "8", "--num-workers", "0",
              "--device", "cpu", "--quiet"]


def test_epochs_zero_is_a_usage_error(demo_folder, tmp_path, capsys):
    assert main(["train", demo_folder, "--epochs", "0", "--checkpoint-dir", str(tmp_path / "r"), *FAST_FLAGS]) == 2
    assert "--epochs must be at least 1" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "r" / "last.ckpt")


def test_run_prints_chance_level_absolute_paths_and_next_steps(demo_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", demo_folder, "--epochs", "1", "--output", "emb.csv", "--checkpoint-dir", "r", *FAST_FLAGS]) == 0
    out = capsys.readouterr().out
    assert "chance level 0.200, 5 classes" in out
    assert f"checkpoint: {tmp_path / 'r' / 'last.ckpt'}" in out
    assert f"metrics (one row per epoch): {tmp_path / 'r' / 'metrics.csv'}" in out
    assert f"loss curve: {tmp_path / 'r' / 'training_curve.png'}" in out
    assert str(tmp_path / "emb.csv") in out
    assert "next steps:" in out and f"easyssl plot --embeddings {tmp_path / 'emb.csv'}" in out


def test_train_with_eval_dir_and_embed_with_a_run_folder(demo_folder, tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["train", demo_folder, "--epochs", "2", "--checkpoint-dir", run, "--eval-dir", demo_folder, *FAST_FLAGS]) == 0
    out = capsys.readouterr().out
    assert f"easyssl embed {demo_folder} --checkpoint {run}" in out  # the next step, with the run folder
    rows = read_metrics(os.path.join(run, "metrics.csv"))
    assert all(0.0 <= row["knn_top1"] <= 1.0 for row in rows) and len(rows) == 2
    output = str(tmp_path / "emb.csv")
    assert main(["embed", demo_folder, "--checkpoint", run, "--output", output, "--quiet"]) == 0  # the folder, not last.ckpt
    assert load_embeddings(output)[0].shape[0] == 40
    assert main(["train", demo_folder, "--eval-dir", str(tmp_path / "missing"), *FAST_FLAGS]) == 2
