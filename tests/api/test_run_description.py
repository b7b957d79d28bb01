"""The INFO line that says what a training call trains (``easyssl.config.describe_training``)."""

from __future__ import annotations

import logging

from conftest import fast_config

from easyssl import build_training, train_embedding_model

# the CPU in float32 wherever the tests run (a CPU with bf16 units, or a GPU, would train otherwise by default)
CPU_ONE_EPOCH = {"loader": {"num_workers": 0}, "trainer": {"max_epochs": 1, "progress_bar": False, "device": "cpu", "precision": "32"}}


def test_the_automatic_small_image_model_is_described(demo_folder):
    run = build_training(demo_folder, **CPU_ONE_EPOCH)
    line = run.trainer.run_description
    # 40 images of 32 px: the small-image recipe (quarter-width ResNet-18, two pooled stages, 24 px views)
    assert line.startswith("simclr on 40 images at 32 px (24 px views (32 px for the last 20%))"), line
    assert f"resnet-18 x0.25, 2 pooled stages, {run.trainer.model.backbone.num_features} features" in line, line
    assert f"batch {run.config['loader']['batch_size']}," in line and line.endswith("cpu float32"), line


def test_a_backbone_named_without_a_width_says_it_is_built_at_width_1(demo_folder):
    line = build_training(demo_folder, model={"backbone": "resnet-10"}, **CPU_ONE_EPOCH).trainer.run_description
    assert ": resnet-10, 512 features;" in line, line  # width 1, the last stage alone
    assert "named without a width is built at width 1" in line and "model={'width': 0.25}" in line, line
    line = build_training(demo_folder, model={"backbone": "resnet-10", "width": 0.25}, **CPU_ONE_EPOCH).trainer.run_description
    assert "resnet-10 x0.25, 2 pooled stages, 192 features" in line and "named without a width" not in line, line


def test_the_width_hint_names_the_width_the_rules_would_pick_for_this_run(demo_folder):
    # a bf16 CPU with a 10-minute budget: the small-image rule picks width 0.375 there, and the hint must say so
    trainer = {**CPU_ONE_EPOCH["trainer"], "max_epochs": None, "max_time": 600, "precision": "bf16"}
    line = build_training(demo_folder, model={"backbone": "resnet-18"}, loader={"num_workers": 0}, trainer=trainer).trainer.run_description
    assert "named without a width is built at width 1" in line and "model={'width': 0.375}" in line, line


def test_a_training_call_logs_the_description_once(demo_folder, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="easyssl")
    train_embedding_model(demo_folder, checkpoint_dir=str(tmp_path / "run"), **fast_config(trainer=CPU_ONE_EPOCH["trainer"]))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("easyssl: simclr on 40 images")]
    assert lines == ["easyssl: simclr on 40 images at 32 px (24 px views (32 px for the last 20%)): resnet-18 x0.125, 2 pooled stages, "
                     "96 features; batch 8, lr 0.0156, cpu float32"], [r.getMessage() for r in caplog.records]
