import os

import numpy as np
import pytest
import torch

from easyssl import (
    CheckpointError, build_training, default_config, embed_images, knn_accuracy, load_checkpoint, train_embedding_model,
    train_model_and_embed_images,
)
from tests.conftest import fast_config


def test_three_lines_on_a_folder(demo_folder, tmp_path):
    checkpoint = train_embedding_model(input_dir=demo_folder, checkpoint_dir=tmp_path / "run", **fast_config())
    assert os.path.isfile(checkpoint)
    embeddings, labels, filenames = embed_images(input_dir=demo_folder, checkpoint=checkpoint, progress_bar=False)
    assert embeddings.shape == (40, 96)  # width 0.125: 32 + 64 features of the last two stages (small images on a CPU)
    assert embeddings.dtype == np.float32 and np.isfinite(embeddings).all()
    assert labels == [i // 8 for i in range(40)] and filenames[0] == "circle/circle_0000.png"
    state = load_checkpoint(checkpoint)
    from easyssl import __version__

    assert state["easyssl_version"] == __version__ and state["method"] == "simclr"
    assert state["config"]["model"]["width"] == 0.125 and state["config"]["collate"]["input_size"] == 32


def test_train_model_and_embed_images(demo_folder, tmp_path):
    embeddings, labels, filenames = train_model_and_embed_images(demo_folder, checkpoint_dir=tmp_path, **fast_config())
    assert embeddings.shape[0] == len(labels) == len(filenames) == 40


def test_training_learns_something_on_the_demo_set(demo_folder, tmp_path):
    # Untrained vs. trained nearest-neighbour agreement on shape classes (labels unused in training).
    config = fast_config(trainer={"max_epochs": 6}, loader={"batch_size": 20}, model={"width": 0.25})
    checkpoint = train_embedding_model(demo_folder, checkpoint_dir=tmp_path, **config)
    embeddings, labels, _ = embed_images(demo_folder, checkpoint, progress_bar=False)
    assert knn_accuracy(embeddings, labels, embeddings, labels, k=5) > 0.5


def test_auto_defaults_follow_the_images(demo_folder, tmp_path):
    run = build_training(demo_folder, checkpoint_dir=tmp_path, trainer={"device": "cpu"})
    config = run.config
    assert config["collate"]["input_size"] == 32 and config["model"]["small_input"] is True
    assert config["model"]["backbone"] == "resnet-18" and config["loader"]["batch_size"] == 20  # half of 40 images
    assert config["optimizer"]["lr"] == pytest.approx(config["optimizer"]["base_lr"] * 20 / 256)


def test_an_explicit_auto_backbone_keeps_the_methods_own_choice(demo_folder, tmp_path):
    # MAE needs a ViT: backbone="auto" must not fall back to the ResNet that suits SimCLR.
    run = build_training(demo_folder, method="mae", checkpoint_dir=tmp_path, model={"backbone": "auto", "width": "auto"},
                         trainer={"device": "cpu"})
    assert run.config["model"]["backbone"] == "vit-tiny"
    assert build_training(demo_folder, method="simclr", checkpoint_dir=tmp_path, model={"backbone": "auto"},
                          trainer={"device": "cpu"}).config["model"]["backbone"] == "resnet-18"


def test_unknown_keys_name_the_key_and_valid_ones(demo_folder):
    with pytest.raises(ValueError, match=r"unknown config key 'trainr'.*trainer"):
        train_embedding_model(demo_folder, trainr={"max_epochs": 1})
    with pytest.raises(ValueError, match=r"unknown config key\(s\) 'max_epoch' in trainer=.*max_epochs"):
        train_embedding_model(demo_folder, trainer={"max_epoch": 1})
    with pytest.raises(ValueError, match=r"unknown method 'simclear'.*simclr"):
        train_embedding_model(demo_folder, method="simclear")
    with pytest.raises(ValueError, match="input_dir"):
        train_embedding_model()


def test_default_config_lists_every_section():
    config = default_config()
    assert set(config) == {"method", "checkpoint_dir", "resume", "seed", "model", "criterion", "optimizer", "collate", "loader", "trainer",
                           "evaluation"}
    assert config["criterion"]["temperature"] > 0


def test_embed_images_rejects_foreign_checkpoints(demo_folder, tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "lightning.ckpt")
    with pytest.raises(CheckpointError, match="not an easyssl checkpoint"):
        embed_images(demo_folder, tmp_path / "lightning.ckpt")
    (tmp_path / "garbage.ckpt").write_bytes(b"\x00\x01garbage")
    with pytest.raises(CheckpointError, match="not an easyssl checkpoint"):
        embed_images(demo_folder, tmp_path / "garbage.ckpt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        embed_images(demo_folder, tmp_path / "missing.ckpt")


def test_wraps_a_torchvision_dataset(tmp_path):
    from torchvision.datasets import FakeData

    data = FakeData(size=16, image_size=(3, 32, 32), num_classes=2)
    checkpoint = train_embedding_model(dataset=data, checkpoint_dir=tmp_path, **fast_config())
    embeddings, labels, filenames = embed_images(dataset=data, checkpoint=checkpoint, progress_bar=False)
    assert embeddings.shape == (16, 96) and filenames[0] == "00"


def _global_random_state():
    import random

    return random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()


def test_build_and_train_leave_the_global_random_state_alone(demo_folder, tmp_path):
    import random

    random.seed(11), np.random.seed(11), torch.manual_seed(11)
    python, numpy, torch_state = _global_random_state()
    run = build_training(demo_folder, checkpoint_dir=tmp_path / "a", seed=4, **fast_config())
    train_embedding_model(demo_folder, checkpoint_dir=tmp_path / "b", seed=4, **fast_config())
    after = _global_random_state()
    assert after[0] == python and np.array_equal(after[1], numpy) and torch.equal(after[2], torch_state)
    # ...and a run is still reproducible from its seed.
    again = build_training(demo_folder, checkpoint_dir=tmp_path / "c", seed=4, **fast_config())
    other = build_training(demo_folder, checkpoint_dir=tmp_path / "d", seed=5, **fast_config())
    first, second, third = (r.trainer.model.state_dict() for r in (run, again, other))
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], third[k]) for k in first)
