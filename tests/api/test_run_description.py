"""The INFO line that says what a training call trains (``easyssl.config.describe_training``)."""

from __future__ import annotations

import logging

from easyssl import build_training


def _line(caplog) -> str:
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("easyssl") and r.getMessage().startswith("easyssl: simclr on")]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    return lines[0]


def test_the_automatic_small_image_model_is_described(demo_folder, caplog):
    caplog.set_level(logging.INFO, logger="easyssl")
    run = build_training(demo_folder, loader={"num_workers": 0}, trainer={"max_epochs": 1, "progress_bar": False, "device": "cpu"})
    line = _line(caplog)
    # 40 images of 32 px: the small-image recipe (quarter-width ResNet-18, two pooled stages, 24 px views)
    assert "on 40 images at 32 px (24 px views (32 px for the last 20%))" in line, line
    assert f"resnet-18 x0.25, 2 pooled stages, {run.trainer.model.backbone.num_features} features" in line, line
    assert f"batch {run.config['loader']['batch_size']}," in line and "cpu float32" in line, line
    assert "named without a width" not in line


def test_a_backbone_named_without_a_width_says_it_is_built_at_width_1(demo_folder, caplog):
    caplog.set_level(logging.INFO, logger="easyssl")
    build_training(demo_folder, model={"backbone": "resnet-10"}, loader={"num_workers": 0},
                   trainer={"max_epochs": 1, "progress_bar": False, "device": "cpu"})
    line = _line(caplog)
    assert ": resnet-10, 512 features;" in line, line  # width 1, the last stage alone
    assert "named without a width is built at width 1" in line and "model={'width': 0.25}" in line, line
    caplog.clear()
    build_training(demo_folder, model={"backbone": "resnet-10", "width": 0.25}, loader={"num_workers": 0},
                   trainer={"max_epochs": 1, "progress_bar": False, "device": "cpu"})
    line = _line(caplog)
    assert "resnet-10 x0.25, 2 pooled stages, 192 features" in line and "named without a width" not in line, line
