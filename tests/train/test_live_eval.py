"""Live evaluation (issue 16.3): kNN top-1 on a labelled folder during training, in metrics.csv, history and the curve."""

from __future__ import annotations

import os

import numpy as np
import pytest

from easyssl import train_embedding_model
from easyssl.config import check_values, merge_config
from easyssl.runtime.checkpoint import load_checkpoint
from easyssl.tools.evaluation import knn_predict as tools_knn_predict
from easyssl.train.live_eval import LiveEvaluation, knn_predict, spread_indices
from easyssl.train.metrics import read_metrics
from tests.conftest import fast_config


def test_leave_one_out_knn_never_votes_for_itself():
    # Two tight clusters; one point of cluster 0 mislabelled 1: with itself voting it would be "right".
    emb = np.array([[1, 0], [0.99, 0.1], [0.98, 0.12], [0, 1], [0.1, 0.99], [0.12, 0.98]], dtype=np.float32)
    labels = [0, 0, 1, 1, 1, 1]
    with_self = knn_predict(emb, labels, emb, k=1)
    assert (with_self == labels).all()
    loo = knn_predict(emb, labels, emb, k=1, leave_one_out=True)
    assert loo[2] == 0 and loo[3] == 1
    assert tools_knn_predict is knn_predict  # tools re-use the one routine
    with pytest.raises(ValueError, match="leave_one_out"):
        knn_predict(emb, labels, emb[:2], leave_one_out=True)


def test_spread_indices_cap_evenly():
    assert spread_indices(10, None) == list(range(10))
    picked = spread_indices(1000, 10)
    assert len(picked) == 10 and picked[0] == 0 and picked[-1] == 999


def test_training_with_live_evaluation_records_knn(demo_folder, tmp_path):
    run = str(tmp_path / "run")
    checkpoint = train_embedding_model(demo_folder, checkpoint_dir=run, evaluation={"knn_dir": demo_folder, "k": 5, "every": 2},
                                       **fast_config(trainer={"max_epochs": 3}))
    rows = read_metrics(os.path.join(run, "metrics.csv"))
    # every=2: after epoch 2, and after the last epoch (3) whatever `every` says
    assert ["knn_top1" in row for row in rows] == [False, True, True]
    assert 0.0 <= rows[1]["knn_top1"] <= 1.0 and rows[1]["eval_seconds"] > 0
    history = load_checkpoint(checkpoint)["history"]
    assert "knn_top1" in history[-1]
    assert load_checkpoint(checkpoint)["config"]["evaluation"]["knn_dir"] == demo_folder


def test_live_evaluation_with_a_train_val_pair(demo_folder, tmp_path):
    from easyssl.config import eval_transform
    from easyssl.data import open_dataset
    from easyssl.inference import load_model

    checkpoint = train_embedding_model(demo_folder, checkpoint_dir=str(tmp_path / "r"), **fast_config())
    model, config = load_model(checkpoint)
    data = open_dataset(demo_folder, transform=eval_transform(config))
    import torch

    pair = LiveEvaluation(data, bank=data, k=1, max_images=20)
    result = pair(model, torch.device("cpu"))
    assert result["knn_top1"] == 1.0  # with the same images as bank, each finds itself
    loo = LiveEvaluation(data, k=1)(model, torch.device("cpu"))
    assert loo["knn_top1"] < 1.0 or len(data) == 0


def test_evaluation_section_is_validated(tmp_path):
    for bad, message in [({"every": 0}, "every"), ({"k": 0}, "k"), ({"max_images": -1}, "max_images"),
                         ({"knn_dir": str(tmp_path / "missing")}, "not a folder")]:
        config = merge_config("simclr", {"evaluation": bad})
        with pytest.raises(ValueError, match=message):
            check_values(config)
    with pytest.raises(ValueError, match="unknown config key"):
        merge_config("simclr", {"evaluation": {"knn_folder": "x"}})
    assert merge_config("simclr", {})["evaluation"] == {"knn_dir": None, "knn_train_dir": None, "every": 1, "k": 200, "max_images": 2000}


def test_an_unlabelled_eval_folder_is_refused(tmp_path):
    from tests.conftest import write_image

    for i in range(4):
        write_image(str(tmp_path / "flat" / f"{i}.png"), seed=i)
    with pytest.raises(ValueError, match="class sub-folders"):
        train_embedding_model(str(tmp_path / "flat"), checkpoint_dir=str(tmp_path / "r"), evaluation={"knn_dir": str(tmp_path / "flat")},
                              **fast_config())


def test_the_evaluation_size_keeps_to_a_share_of_training_time(demo_folder):
    from easyssl.data import open_dataset
    from easyssl.train.live_eval import MIN_IMAGES, TIME_SHARE

    data = open_dataset(demo_folder)
    live = LiveEvaluation(data, max_images=2000)
    # 60 s of training at 100 images/s: forward passes at 300 images/s, 5 % of 60 s -> 900 images
    assert live.choose_images(60.0, 100.0) == int(TIME_SHARE * 60 * 300) == 900
    assert live.choose_images(1.0, 1.0) == 900  # fixed at the first evaluation: later accuracies stay comparable
    assert LiveEvaluation(data, max_images=2000).choose_images(10.0, 1.0) == MIN_IMAGES
    assert LiveEvaluation(data, max_images=100).choose_images(600.0, 1000.0) == 100
    assert LiveEvaluation(data, max_images=2000).estimate_seconds(100.0) == pytest.approx(len(data) / 300)


def test_voters_are_capped_by_the_smallest_class(demo_folder):
    from easyssl.data import open_dataset

    live = LiveEvaluation(open_dataset(demo_folder), k=200)
    assert live.voters([0] * 100 + [1] * 40) == 20 and live.voters([0] * 1000 + [1] * 1000) == 200


def test_live_evaluation_leaves_training_unchanged(demo_folder, tmp_path):
    """The evaluation reads its folder's labels and nothing else: same seed, same weights, with or without it."""
    import torch

    config = fast_config(trainer={"max_epochs": 2})
    plain = load_checkpoint(train_embedding_model(demo_folder, checkpoint_dir=str(tmp_path / "a"), **config))
    watched = load_checkpoint(train_embedding_model(demo_folder, checkpoint_dir=str(tmp_path / "b"),
                                                    evaluation={"knn_dir": demo_folder, "k": 5}, **config))
    assert "knn_top1" in watched["history"][0] and "knn_top1" not in plain["history"][0]
    for key, value in plain["model"].items():
        assert torch.equal(value, watched["model"][key]), key
