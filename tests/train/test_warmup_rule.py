"""Small images warm the learning rate up over at least 10 % of training (``defaults.default_warmup``)."""

from __future__ import annotations

from easyssl import build_training, defaults


def test_the_rule_lengthens_the_warmup_of_small_images_only():
    assert defaults.default_warmup(28, 0.02) == 0.1  # Fashion-MNIST with SimCLR's preset: the measured case
    assert defaults.default_warmup(64, 0.02) == 0.1 and defaults.default_warmup(96, 0.02) == 0.02  # photos keep the preset
    assert defaults.default_warmup(28, 0.2) == 0.2  # a longer preset stays


def test_the_resolved_config_uses_it_and_an_explicit_value_wins(demo_folder, tmp_path):
    options = {"trainer": {"device": "cpu"}, "loader": {"num_workers": 0}}
    run = build_training(demo_folder, checkpoint_dir=tmp_path / "a", **options)  # 32 px images, SimCLR (preset 2 %)
    assert run.config["optimizer"]["warmup"] == 0.1
    run = build_training(demo_folder, checkpoint_dir=tmp_path / "b", optimizer={"warmup": 0.02}, **options)
    assert run.config["optimizer"]["warmup"] == 0.02
