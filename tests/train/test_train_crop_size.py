"""Small images train on smaller views than the size they are embedded at (``collate.train_crop_size``)."""

from __future__ import annotations

import torch

from easyssl import build_training, embed_images, load_checkpoint, train_embedding_model
from easyssl import defaults
from easyssl.config import view_config
from tests.conftest import fast_config


def test_the_rule_shrinks_small_views_on_a_cpu_only():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert defaults.default_train_crop_size(28, cpu) == 20  # Fashion-MNIST: the measured case
    assert defaults.default_train_crop_size(32, cpu) == 24 and defaults.default_train_crop_size(64, cpu) == 44
    assert defaults.default_train_crop_size(16, cpu) == 16  # never below 16 px
    assert defaults.default_train_crop_size(224, cpu) == 224  # photos keep their size
    assert defaults.default_train_crop_size(28, gpu) == 20  # the small-image recipe on every device
    assert defaults.default_train_crop_size(28, cpu, "vit-tiny") == 28  # a ViT is built for one size


def test_views_are_made_at_the_train_crop_size_and_images_embedded_at_the_input_size(demo_folder, tmp_path):
    run = build_training(demo_folder, checkpoint_dir=tmp_path / "a", trainer={"device": "cpu"})
    collate = run.config["collate"]
    assert collate["input_size"] == 32 and collate["train_crop_size"] == 24
    views = run.trainer.batch_transform(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8))
    assert [tuple(v.shape[-2:]) for v in views] == [(24, 24), (24, 24)]

    checkpoint = train_embedding_model(demo_folder, checkpoint_dir=tmp_path / "b", **fast_config())
    state = load_checkpoint(checkpoint)
    assert state["config"]["collate"]["input_size"] == 32 and state["config"]["collate"]["train_crop_size"] == 24
    embeddings, _, _ = embed_images(demo_folder, checkpoint, progress_bar=False)
    assert embeddings.shape[0] == 40


def test_an_explicit_size_and_the_per_image_path_are_respected(demo_folder, tmp_path):
    run = build_training(demo_folder, checkpoint_dir=tmp_path, trainer={"device": "cpu"},
                         collate={"train_crop_size": 32}, loader={"batch_augment": False, "num_workers": 0})
    assert run.config["collate"]["train_crop_size"] == 32
    (view0, view1), _, _ = run.dataset[0]
    assert view0.shape[-2:] == (32, 32) == view1.shape[-2:]
    run = build_training(demo_folder, checkpoint_dir=tmp_path, trainer={"device": "cpu"},
                         loader={"batch_augment": False, "num_workers": 0})
    (view0, _), _, _ = run.dataset[0]
    assert view0.shape[-2:] == (24, 24)


def test_configs_saved_before_the_key_train_their_views_at_the_input_size():
    assert view_config({"input_size": 28, "min_scale": 0.08})["input_size"] == 28
    assert view_config({"input_size": 28, "train_crop_size": 20})["input_size"] == 20
    assert "train_crop_size" not in view_config({"input_size": 28, "train_crop_size": 20})


def test_a_vit_trains_at_its_input_size(demo_folder, tmp_path):
    run = build_training(demo_folder, method="mae", checkpoint_dir=tmp_path, trainer={"device": "cpu"})
    assert run.config["collate"]["train_crop_size"] == run.config["collate"]["input_size"] == 32


def test_resuming_a_run_saved_before_the_key_keeps_its_views_at_the_input_size(demo_folder, tmp_path):
    checkpoint = train_embedding_model(demo_folder, checkpoint_dir=tmp_path, **fast_config())
    state = load_checkpoint(checkpoint)
    del state["config"]["collate"]["train_crop_size"]  # as written by easyssl before train_crop_size existed
    torch.save(state, checkpoint)
    run = build_training(demo_folder, checkpoint_dir=tmp_path, resume=True, **fast_config(trainer={"max_epochs": 2}))
    assert run.config["collate"]["train_crop_size"] == 32
    views = run.trainer.batch_transform(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8))
    assert views[0].shape[-2:] == (32, 32)
