"""Run folders explain themselves (issue 14.5): metrics.csv, the loss curve, progress lines, budgets, small-run warnings."""

from __future__ import annotations

import os
import warnings

import pytest
from PIL import Image

from easyssl import build_training, train_embedding_model
from easyssl.runtime.checkpoint import load_checkpoint
from easyssl.train.metrics import COLUMNS, RunReporter, nice_ticks, plot_training_curve, read_metrics, write_metrics
from tests.conftest import fast_config


def test_every_run_folder_gets_metrics_csv_and_a_loss_curve(demo_folder, tmp_path):
    run = str(tmp_path / "run")
    checkpoint = train_embedding_model(demo_folder, checkpoint_dir=run, **fast_config(trainer={"max_epochs": 2}))
    rows = read_metrics(os.path.join(run, "metrics.csv"))
    assert [row["epoch"] for row in rows] == [1.0, 2.0]
    with open(os.path.join(run, "metrics.csv"), encoding="utf-8") as handle:
        assert handle.readline().strip().split(",") == list(COLUMNS)
    assert rows[1]["step"] == 10 and rows[1]["elapsed"] >= rows[0]["elapsed"] > 0
    assert all(row["images_per_second"] > 0 and row["lr"] >= 0 and row["loss"] > 0 for row in rows)
    with Image.open(os.path.join(run, "training_curve.png")) as curve:
        assert curve.size[0] >= 600 and curve.size[1] >= 400
    # The checkpoint's history holds the same rows.
    history = load_checkpoint(checkpoint)["history"]
    assert [h["step"] for h in history] == [5, 10] and all("lr" in h and "elapsed" in h for h in history)


def test_logs_get_one_line_per_epoch_and_no_carriage_returns(demo_folder, tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("EASYSSL_PROGRESS", "lines")  # what a file or pipe gets (stderr is not a terminal)
    train_embedding_model(demo_folder, checkpoint_dir=str(tmp_path / "run"),
                          **fast_config(trainer={"max_epochs": 3, "progress_bar": True}))
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3: step 5  loss ") and "img/s" in lines[0]
    assert "\r" not in err


def test_a_time_budget_shows_time_left_not_a_million_epochs():
    reporter = RunReporter(None, True, None, 90.0)
    assert reporter.label(0, 30.0) == "epoch 1 (1:00 left)"
    assert "1000000" not in reporter.label(0, 0.0, max_epochs=10**6)
    assert RunReporter(None, True, 10, None).label(2, 0.0) == "epoch 3/10"
    assert RunReporter(None, True, None, None).label(0, 0.0, max_epochs=10**6) == "epoch 1"


def test_zero_epochs_is_an_error(demo_folder, tmp_path):
    with pytest.raises(ValueError, match="max_epochs"):
        train_embedding_model(demo_folder, checkpoint_dir=str(tmp_path / "r"), **fast_config(trainer={"max_epochs": 0}))
    assert not os.path.exists(tmp_path / "r" / "last.ckpt")
    run = build_training(demo_folder, checkpoint_dir=str(tmp_path / "b"), **fast_config())
    with pytest.raises(ValueError, match="max_epochs must be at least 1"):
        run.trainer.train_embedding(max_epochs=0)


def test_too_few_images_warn(tmp_path):
    from tests.conftest import write_image

    folder = tmp_path / "three"
    for i in range(3):
        write_image(str(folder / f"{i}.png"), seed=i)
    with pytest.warns(UserWarning, match="only 3 images"):
        train_embedding_model(str(folder), checkpoint_dir=str(tmp_path / "r"),
                              **fast_config(loader={"batch_size": "auto"}, trainer={"max_epochs": 1}))


def test_enough_images_do_not_warn_about_size(demo_folder, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_embedding_model(demo_folder, checkpoint_dir=str(tmp_path / "r"), **fast_config())
    assert not any("images" in str(w.message) and "batch" in str(w.message) for w in caught)


def test_curve_and_csv_from_a_history(tmp_path):
    history = [{"epoch": e, "step": 10 * e, "loss": 5.0 - e, "lr": 0.1, "images_per_second": 100.0, "elapsed": 2.0 * e,
                "knn_top1": 0.2 + 0.1 * e, "eval_seconds": 0.1} for e in range(1, 5)]
    write_metrics(tmp_path / "m.csv", history)
    assert read_metrics(tmp_path / "m.csv")[3]["knn_top1"] == pytest.approx(0.6)
    path = plot_training_curve(history, tmp_path / "c.png", trace=[(s, 5.0 - s / 10) for s in range(0, 41, 5)])
    with Image.open(path) as image:
        plain = plot_training_curve(history[:0] + [{k: v for k, v in h.items() if k != "knn_top1"} for h in history], tmp_path / "p.png")
        with Image.open(plain) as without_knn:
            assert image.size[1] > without_knn.size[1]  # a second panel for kNN
    assert nice_ticks(0.0, 1.0) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
