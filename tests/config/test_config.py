"""easyssl.config: one validator for overrides and saved configs, one evaluation transform, "auto" resolution."""

import ast
import os

import pytest
import torch

import easyssl
from easyssl import CheckpointError
from easyssl.config import check_saved_config, default_config, eval_transform, merge_config, resolve_auto
from easyssl.methods import get_method
from easyssl.transforms import IMAGENET_NORMALIZE, EvalTransform

PACKAGE = os.path.dirname(os.path.abspath(easyssl.__file__))


def _message(error: Exception) -> str:
    return str(error).split(": ", 1)[1] if isinstance(error, CheckpointError) else str(error)


@pytest.mark.parametrize("bad, fragment", [
    ({"trainr": {}}, "unknown config key 'trainr'"),
    ({"model": {"flux": 1}}, "unknown config key(s) 'flux' in model={...}"),
    ({"loader": 3}, "config section 'loader' must be a dict"),
])
def test_overrides_and_saved_configs_share_one_validator(bad, fragment):
    with pytest.raises(ValueError) as from_merge:
        merge_config("simclr", bad)
    saved = {**default_config("simclr"), "collate": {"input_size": 32}, **bad}
    with pytest.raises(CheckpointError) as from_checkpoint:
        check_saved_config(saved, "run/last.ckpt")
    assert fragment in str(from_merge.value)
    # The same words for the same key, the checkpoint's path in front.
    assert str(from_merge.value) in str(from_checkpoint.value) and "'run/last.ckpt'" in str(from_checkpoint.value)


def test_merge_keeps_defaults_and_does_not_share_sections_between_configs():
    config = merge_config("simclr", {"trainer": {"max_epochs": 3}, "seed": 7})
    assert config["trainer"]["max_epochs"] == 3 and config["trainer"]["device"] == "auto" and config["seed"] == 7
    config["loader"]["batch_size"] = 999
    assert default_config("simclr")["loader"]["batch_size"] == "auto"


def test_eval_transform_follows_the_saved_collate_settings():
    transform = eval_transform({"collate": {"input_size": 48, "normalize": None}})
    assert isinstance(transform, EvalTransform)
    from PIL import Image

    image = Image.new("RGB", (80, 60), (255, 0, 0))
    assert tuple(transform(image).shape) == (3, 48, 48) and float(transform(image).max()) == 1.0  # not normalised
    normalised = eval_transform({"collate": {"input_size": 32}})(image)  # normalize missing: ImageNet's
    assert float(normalised[0].max()) == pytest.approx((1.0 - IMAGENET_NORMALIZE["mean"][0]) / IMAGENET_NORMALIZE["std"][0], rel=1e-4)


def test_the_evaluation_transform_is_built_in_one_place():
    builders = []
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".py") and os.sep + "transforms" + os.sep not in path:
                with open(path, encoding="utf-8") as handle:
                    tree = ast.parse(handle.read())
                calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
                if any(getattr(call.func, "id", getattr(call.func, "attr", None)) == "EvalTransform" for call in calls):
                    builders.append(os.path.relpath(path, PACKAGE))
    assert builders == ["config.py"]


@pytest.mark.parametrize("method", ["dino", "mae"])
def test_adamw_methods_have_no_momentum(method):
    assert "momentum" not in get_method(method).optimizer_defaults
    config = merge_config(method, {"collate": {"input_size": 32}, "optimizer": {"momentum": 0.5}})
    resolved = resolve_auto(config, get_method(method), list(range(40)), torch.device("cpu"))
    assert resolved["optimizer"]["name"] == "adamw" and resolved["optimizer"]["momentum"] is None


def test_sgd_momentum_and_gathering_resolve_from_auto():
    spec = get_method("simclr")
    config = default_config("simclr")
    assert config["criterion"]["gather_distributed"] == "auto"  # written by the method, not found by reflection
    config["collate"]["input_size"] = 32
    resolved = resolve_auto(config, spec, list(range(40)), torch.device("cpu"))
    assert resolved["criterion"]["gather_distributed"] is False  # not distributed
    assert resolved["optimizer"]["momentum"] == spec.optimizer_defaults.get("momentum", 0.9)
    assert resolved["model"]["small_input"] is True and resolved["loader"]["batch_size"] == 20
