"""Small images' views finish training at the size images are embedded at (``collate.final_size_fraction``)."""

from __future__ import annotations

import pytest
import torch

from easyssl import build_training, defaults, load_checkpoint, train_embedding_model
from easyssl.transforms import FinalSizeViews
from easyssl.transforms.batched import batch_multi_crop_augment, batch_two_view_augment
from tests.conftest import fast_config

IMAGES = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)


def sizes(views):
    return [v.shape[-1] for v in views]


def test_the_views_switch_to_the_final_size_for_the_last_fraction():
    views = FinalSizeViews(batch_two_view_augment(input_size=24), final_size=32, final_fraction=0.2)
    assert sizes(views(IMAGES)) == [24, 24]  # before any progress: the crop size
    views.set_progress(0.79)
    assert sizes(views(IMAGES)) == [24, 24]
    views.set_progress(0.8)
    assert sizes(views(IMAGES)) == [32, 32]
    never = FinalSizeViews(batch_two_view_augment(input_size=24), final_size=32, final_fraction=0.0)
    never.set_progress(1.0)
    assert sizes(never(IMAGES)) == [24, 24]


def test_multi_crop_local_views_keep_their_size():
    views = FinalSizeViews(batch_multi_crop_augment(input_size=24, local_size=12, n_local_views=2), final_size=32, final_fraction=0.5)
    views.set_progress(0.6)
    assert sizes(views(IMAGES)) == [32, 32, 12, 12]


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan")])
def test_a_fraction_outside_0_1_is_refused(fraction):
    with pytest.raises(ValueError, match="final_fraction"):
        FinalSizeViews(batch_two_view_augment(input_size=24), final_size=32, final_fraction=fraction)


def test_the_rule_is_for_small_images_with_smaller_batched_views():
    assert defaults.default_final_size_fraction(28, 20, True) == defaults.SMALL_IMAGE_FINAL_SIZE_FRACTION == 0.2
    assert defaults.default_final_size_fraction(28, 28, True) == 0.0  # views already at the input size (a ViT)
    assert defaults.default_final_size_fraction(224, 224, True) == 0.0  # photos
    assert defaults.default_final_size_fraction(28, 20, False) == 0.0  # views made in loader workers keep one size


def test_the_trainer_makes_the_last_fifth_of_its_views_at_the_input_size(demo_folder, tmp_path):
    run = build_training(demo_folder, checkpoint_dir=tmp_path, trainer={"device": "cpu"})
    collate = run.config["collate"]
    assert (collate["input_size"], collate["train_crop_size"], collate["final_size_fraction"]) == (32, 24, 0.2)
    run.trainer.progress.max_steps = 10
    run.trainer.progress.step = 7
    assert sizes(run.trainer.views(IMAGES)) == [24, 24]
    run.trainer.progress.step = 8
    assert sizes(run.trainer.views(IMAGES)) == [32, 32]


def test_a_run_trains_through_the_switch_and_saves_the_fraction(demo_folder, tmp_path):
    checkpoint = train_embedding_model(demo_folder, checkpoint_dir=tmp_path, **fast_config(trainer={"max_epochs": None, "max_steps": 5}))
    state = load_checkpoint(checkpoint)
    assert state["config"]["collate"]["final_size_fraction"] == 0.2 and state["step"] == 5


def test_explicit_values_and_the_per_image_path(demo_folder, tmp_path):
    run = build_training(demo_folder, checkpoint_dir=tmp_path, trainer={"device": "cpu"}, collate={"final_size_fraction": 0})
    run.trainer.progress.max_steps, run.trainer.progress.step = 10, 9
    assert sizes(run.trainer.views(IMAGES)) == [24, 24]
    run = build_training(demo_folder, checkpoint_dir=tmp_path, trainer={"device": "cpu"}, loader={"batch_augment": False, "num_workers": 0})
    assert run.config["collate"]["final_size_fraction"] == 0.0
    with pytest.raises(ValueError, match="final_size_fraction=0.5 needs the batched views"):
        build_training(demo_folder, checkpoint_dir=tmp_path, trainer={"device": "cpu"}, collate={"final_size_fraction": 0.5},
                       loader={"batch_augment": False, "num_workers": 0})
    with pytest.raises(ValueError, match="from 0 to 1"):
        build_training(demo_folder, checkpoint_dir=tmp_path, trainer={"device": "cpu"}, collate={"final_size_fraction": "half"})


def test_resuming_a_run_saved_before_the_key_keeps_one_view_size(demo_folder, tmp_path):
    checkpoint = train_embedding_model(demo_folder, checkpoint_dir=tmp_path, **fast_config())
    state = load_checkpoint(checkpoint)
    del state["config"]["collate"]["final_size_fraction"]  # as written by easyssl before the key existed
    torch.save(state, checkpoint)
    run = build_training(demo_folder, checkpoint_dir=tmp_path, resume=True, **fast_config(trainer={"max_epochs": 2}))
    assert run.config["collate"]["final_size_fraction"] == 0.0
    run.trainer.progress.max_steps, run.trainer.progress.step = 10, 9
    assert sizes(run.trainer.views(IMAGES)) == [24, 24]
