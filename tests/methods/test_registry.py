"""The method registry: every method is one module with an explicit METHOD, and the defaults keep their contracts."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

import easyssl
from easyssl.methods import METHODS, Method, available_methods, build_model, get_method, register_method
from easyssl.transforms import BATCHED_TWINS

#: Loss arguments that make a loss use the global batch under torch.distributed.
GATHER_KEYS = ("gather_distributed", "sinkhorn_gather_distributed")


def test_every_method_is_registered_by_name():
    assert available_methods() == sorted(METHODS) == easyssl.available_methods()
    assert set(METHODS) == {"simclr", "moco", "mocov3", "byol", "simsiam", "barlowtwins", "vicreg", "dino", "swav", "nnclr", "mae"}
    for name, method in METHODS.items():
        assert method.name == name and get_method(name) is method
        assert method.description and method.optimizer_defaults["name"] in ("sgd", "adamw", "lars")
        assert method.model.method == name  # saved in checkpoints
    assert get_method("MoCo-v3").name == "mocov3" and get_method("barlow_twins").name == "barlowtwins"
    with pytest.raises(ValueError, match="unknown method 'nope'.*simclr"):
        get_method("nope")


@pytest.mark.parametrize("name", list(METHODS))
def test_method_module_sets_batch_transform_explicitly(name):
    # In the source: the METHOD = Method(...) call of easyssl/methods/<name>.py names batch_transform.
    module = importlib.import_module(f"easyssl.methods.{name}")
    tree = ast.parse(Path(inspect.getsourcefile(module)).read_text())
    calls = [node.value for node in tree.body if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["METHOD"]]
    assert len(calls) == 1 and isinstance(calls[0], ast.Call), "one METHOD = Method(...) per method module"
    assert "batch_transform" in {k.arg for k in calls[0].keywords}
    method = module.METHOD
    assert METHODS[name] is method
    # ... and what it set: the batched twin of the method's transform, whenever the transform has one.
    if method.transform in BATCHED_TWINS:
        assert method.batch_transform is not None and method.batch_transform.__name__ == f"batched_{method.transform.__name__}"
    else:
        assert method.batch_transform is None


def test_methods_are_not_patched_after_import():
    with pytest.raises(dataclasses.FrozenInstanceError):
        METHODS["simclr"].batch_transform = None  # type: ignore[misc]


@pytest.mark.parametrize("name", list(METHODS))
def test_criterion_defaults_hold_auto_gather_keys_exactly_where_the_loss_takes_them(name):
    method = METHODS[name]
    parameters = inspect.signature(method.criterion).parameters
    for key in GATHER_KEYS:
        if key in parameters:
            assert method.criterion_defaults.get(key) == "auto", f"{name}: {key} must be 'auto'"
        else:
            assert key not in method.criterion_defaults
    # every other key is an argument of the loss
    assert set(method.criterion_defaults) <= set(parameters)


@pytest.mark.parametrize("name", list(METHODS))
def test_optimizer_defaults_have_momentum_only_where_the_optimiser_uses_it(name):
    optimizer = METHODS[name].optimizer_defaults
    assert {"name", "base_lr", "weight_decay", "warmup"} <= set(optimizer)
    if optimizer["name"] == "adamw":
        assert "momentum" not in optimizer
    else:
        assert optimizer["name"] in ("sgd", "lars") and optimizer["momentum"] == 0.9


@pytest.mark.parametrize("name", list(METHODS))
def test_defaults_are_arguments_of_the_model_and_transform(name):
    method = METHODS[name]
    model_args = set(inspect.signature(method.model).parameters) | {"backbone", "width", "small_input"}
    assert set(method.model_defaults) <= model_args
    method.transform(input_size=32, **method.collate_defaults)  # every collate key is a view argument
    method.batch_transform(input_size=32, **method.collate_defaults)


def test_view_presets_are_the_transforms_own():
    from easyssl.transforms import BYOL_VIEWS, DINO_VIEWS, MAE_VIEW, MOCO_V2_VIEW, SIMCLR_VIEW, SWAV_VIEWS

    assert METHODS["moco"].collate_defaults == MOCO_V2_VIEW == METHODS["simsiam"].collate_defaults
    for name in ("mocov3", "byol", "barlowtwins", "vicreg", "nnclr"):
        assert METHODS[name].collate_defaults == BYOL_VIEWS
    assert METHODS["dino"].collate_defaults == DINO_VIEWS and METHODS["swav"].collate_defaults == SWAV_VIEWS
    assert METHODS["mae"].collate_defaults == MAE_VIEW
    assert METHODS["simclr"].collate_defaults == {**SIMCLR_VIEW, "cj_strength": 0.5}
    # copies: a method's defaults can change without changing the transform's
    assert METHODS["byol"].collate_defaults is not BYOL_VIEWS


def test_default_configs_are_complete():
    config = easyssl.default_config("dino")
    assert config["model"]["output_dim"] == config["criterion"]["output_dim"]
    assert config["collate"]["n_local_views"] == 6
    assert easyssl.default_config("mae")["model"]["backbone"] == "vit-tiny"
    moco = easyssl.default_config("moco")["criterion"]
    assert moco["temperature"] == 0.2 and moco["memory_bank_size"] == 4096
    assert easyssl.default_config("byol")["collate"]["solarization_prob"] == (0.0, 0.2)


def test_register_method_adds_a_user_method():
    simclr = METHODS["simclr"]
    mine = dataclasses.replace(simclr, name="MySimCLR", description="mine")
    try:
        assert register_method(mine) is mine
        assert get_method("mysimclr") is mine and "mysimclr" in available_methods()
        model = build_model("mysimclr", {"backbone": "resnet-18", "width": 0.125}, input_size=32)
        assert isinstance(model, simclr.model) and model.backbone.small_input
    finally:
        METHODS.pop("mysimclr", None)
    assert isinstance(mine, Method)
