"""Warnings about models that will embed poorly, and run folders accepted as checkpoints (issue 14.5)."""

from __future__ import annotations

import warnings

import pytest

from easyssl import embed_images, load_model, make_demo_dataset, train_embedding_model
from easyssl.inference.checks import warn_if_barely_trained, warn_if_other_input_size
from easyssl.runtime.checkpoint import checkpoint_file
from tests.conftest import fast_config


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    folder = make_demo_dataset(tmp_path_factory.mktemp("demo32"), images_per_class=8, image_size=32)
    run = str(tmp_path_factory.mktemp("run") / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_embedding_model(folder, checkpoint_dir=run, **fast_config())
    return folder, run


def test_a_run_folder_is_accepted_wherever_a_checkpoint_is(small_run, tmp_path):
    folder, run = small_run
    assert checkpoint_file(run).endswith("last.ckpt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, config = load_model(run)
        embeddings, labels, _ = embed_images(folder, run, progress_bar=False)
    assert embeddings.shape[0] == 40
    with pytest.raises(FileNotFoundError, match="holds no last.ckpt"):
        checkpoint_file(tmp_path)


def test_a_barely_trained_model_warns(small_run):
    _, run = small_run
    with pytest.warns(UserWarning, match="trained for only 5 steps"):
        load_model(run)
    assert not warn_if_barely_trained({"step": 5000}, "x.ckpt")


def test_images_of_another_size_than_the_model_warn(small_run, tmp_path):
    _, run = small_run
    big = make_demo_dataset(tmp_path / "demo96", images_per_class=4, image_size=96)
    with pytest.warns(UserWarning, match="trained at 32 px but these images are about 96 px"):
        embed_images(big, run, progress_bar=False)
    same = make_demo_dataset(tmp_path / "demo32", images_per_class=4, image_size=32)
    from easyssl.data import open_dataset

    assert not warn_if_other_input_size({"collate": {"input_size": 32}}, open_dataset(same))
