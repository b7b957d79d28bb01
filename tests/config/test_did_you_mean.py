"""Unknown config keys, methods, backbones and command-line options suggest the name meant, LightlySSL's mapped (issue 14 item 6)."""

from __future__ import annotations

import pytest

import easyssl
from easyssl.cli import main
from easyssl.config import merge_config
from easyssl.runtime.suggest import closest, did_you_mean


@pytest.mark.parametrize("overrides, hint", [
    ({"model": {"name": "resnet-18"}}, "did you mean `model={'backbone': ...}`?"),  # LightlySSL's key
    ({"max_epochs": 3}, "did you mean `trainer={'max_epochs': ...}`?"),  # a section's key at the top level
    ({"gpus": 1}, "did you mean `trainer={'device': ...}`?"),
    ({"trainer": {"gpus": 1}}, "did you mean `trainer={'device': ...}`?"),
    ({"input_size": 32}, "did you mean `collate={'input_size': ...}`?"),
    ({"batch_size": 16}, "did you mean `loader={'batch_size': ...}`?"),
    ({"loader": {"max_epochs": 3}}, "did you mean `trainer={'max_epochs': ...}`?"),  # a key in the wrong section
    ({"model": {"seed": 3}}, "did you mean `seed=...`?"),
    ({"trainer": {"max_epoch": 3}}, "did you mean `trainer={'max_epochs': ...}`?"),  # a typo
    ({"trainr": {}}, "did you mean `trainer={...}`?"),
    ({"collate": {"image_size": 32}}, "did you mean `collate={'input_size': ...}`?"),
    ({"optimizer": {"learning_rate": 0.1}}, "did you mean `optimizer={'lr': ...}`?"),
    ({"num_ftrs": 512}, "easyssl finds the backbone's feature size itself"),
    ({"model": {"num_ftrs": 512}}, "easyssl finds the backbone's feature size itself"),
])
def test_unknown_config_keys_suggest_the_key_meant(overrides, hint):
    with pytest.raises(ValueError, match="unknown config key") as error:
        merge_config("simclr", overrides)
    assert hint in str(error.value) and "valid keys are" in str(error.value)


def test_an_unrelated_key_gets_no_guess():
    with pytest.raises(ValueError) as error:
        merge_config("simclr", {"model": {"flux": 1}})
    assert "did you mean" not in str(error.value)


@pytest.mark.parametrize("name, meant", [("simclear", "simclr"), ("mocov2", "moco"), ("dinov2", "dino"), ("byl", "byol")])
def test_unknown_method_suggests(name, meant):
    with pytest.raises(ValueError, match=rf"unknown method '{name}' \(did you mean `{meant}`\?\)"):
        easyssl.get_method(name)


@pytest.mark.parametrize("name, meant", [("resnet-19", "resnet-18"), ("resnt50", "resnet-50"), ("vit-smal", "vit-small")])
def test_unknown_backbone_suggests(name, meant):
    with pytest.raises(ValueError, match=rf"unknown backbone '{name}' \(did you mean `{meant}`\?\)"):
        easyssl.backbone(name)


def test_unknown_backbone_without_a_close_name_points_to_timm_and_torchvision():
    with pytest.raises(ValueError, match=r"name it `timm/efficientnet_b0` or `torchvision/efficientnet_b0`"):
        easyssl.backbone("efficientnet_b0")


def test_did_you_mean_helpers():
    assert closest("Batch_Size", ["batch_size", "num_workers"]) == "batch_size"
    assert did_you_mean("xyzzy", ["simclr"]) == ""


@pytest.mark.parametrize("argv, hint", [
    (["trian", "imgs/"], "did you mean `train`?"),
    (["embed", "imgs/", "--checkpoint", "c.ckpt", "--batchsize", "3"], "did you mean `--batch-size`?"),
    (["train", "imgs/", "trainer.max_epochs=10"], "LightlySSL's; easyssl's is --epochs"),
])
def test_cli_usage_errors_suggest(argv, hint, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and hint in capsys.readouterr().err
