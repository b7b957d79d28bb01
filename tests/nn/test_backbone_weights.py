"""Starting a backbone from weights (issue 16, item 2): files, prefixes, strict matching, torchvision names from the hub cache."""

import importlib
import os
import pickle

import pytest
import torch
import torchvision

from easyssl.nn import backbone
from easyssl.nn.weights import load_backbone_weights, read_state_dict


def _same(a: torch.nn.Module, state: dict) -> bool:
    mine = a.state_dict()
    return all(torch.equal(mine[k], v) for k, v in state.items())


def test_a_saved_state_dict_loads_strictly(tmp_path):
    source = backbone("resnet-18", width=0.25, input_size=32)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    target = backbone("resnet-18", width=0.25, input_size=32)
    report = load_backbone_weights(target, path)
    assert report.loaded == len(source.state_dict()) and _same(target, source.state_dict())


@pytest.mark.parametrize("prefix", ["backbone.", "module.", "model.", "module.backbone."])
def test_the_usual_prefixes_are_stripped(tmp_path, prefix):
    source = backbone("resnet-18", width=0.125, input_size=32)
    state = {prefix + k: v for k, v in source.state_dict().items()}
    state["projection_head.layer.weight"] = torch.zeros(3)  # a full model's head, outside the backbone
    torch.save(state, tmp_path / "w.pth")
    target = backbone("resnet-18", width=0.125, input_size=32)
    report = load_backbone_weights(target, tmp_path / "w.pth")
    assert report.prefix == prefix and _same(target, source.state_dict())
    assert report.ignored == [f"(outside {prefix!r}: 1 keys)"]  # the head is left out, and said so


def test_an_explicit_prefix_selects_and_strips(tmp_path):
    source = backbone("resnet-18", width=0.125, input_size=32)
    torch.save({"encoder_q.net." + k: v for k, v in source.state_dict().items()}, tmp_path / "w.pth")
    target = backbone("resnet-18", width=0.125, input_size=32)
    load_backbone_weights(target, tmp_path / "w.pth", prefix="encoder_q.net.")
    assert _same(target, source.state_dict())
    with pytest.raises(ValueError, match="no key .* starts with weights_prefix 'nope.'"):
        load_backbone_weights(target, tmp_path / "w.pth", prefix="nope.")


def test_a_mismatch_lists_the_missing_and_unexpected_keys(tmp_path):
    state = backbone("resnet-18", width=0.125, input_size=32).state_dict()
    del state["layer4.1.bn2.weight"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(ValueError, match=r"1 missing keys \(layer4.1.bn2.weight\), 1 unexpected keys \(extra.weight\)"):
        load_backbone_weights(backbone("resnet-18", width=0.125, input_size=32), tmp_path / "w.pth")
    torch.save(backbone("resnet-18", width=0.25, input_size=32).state_dict(), tmp_path / "wide.pth")
    with pytest.raises(ValueError, match="do not fit the backbone: .* differ in shape .*conv1.weight \\(16, 3, 3, 3\\) vs \\(8, 3, 3, 3\\)"):
        load_backbone_weights(backbone("resnet-18", width=0.125, input_size=32), tmp_path / "wide.pth")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_backbone_weights(backbone("resnet-18", width=0.125), tmp_path / "missing.pth")


def test_files_are_read_weights_only(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.getcwd, ())

    path = tmp_path / "code.pth"
    with open(path, "wb") as handle:
        pickle.dump({"x": Payload()}, handle)
    with pytest.raises(ValueError, match="weights_only=True"):
        read_state_dict(path)


def test_a_torchvision_file_loads_into_easyssl_and_torchvision_backbones(tmp_path):
    theirs = torchvision.models.resnet18()
    torch.save(theirs.state_dict(), tmp_path / "tv.pth")
    for net in (backbone("resnet-18", input_size=224), backbone("torchvision/resnet18", input_size=32)):
        report = load_backbone_weights(net, tmp_path / "tv.pth")
        assert report.ignored == ["fc.bias", "fc.weight"]  # the classifier easyssl has no use for, named
        inner = getattr(net, "model", net)
        assert torch.equal(inner.conv1.weight, theirs.conv1.weight)


def test_torchvision_weight_names_come_from_the_hub_cache_only(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    net = backbone("torchvision/resnet18", input_size=32)
    with pytest.raises(FileNotFoundError, match="not in the torch hub cache.*never downloads.*weights='IMAGENET1K_V1'"):
        load_backbone_weights(net, "IMAGENET1K_V1")
    cached = torchvision.models.resnet18()
    os.makedirs(tmp_path / "hub" / "checkpoints")
    torch.save(cached.state_dict(), tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")  # IMAGENET1K_V1's file name
    load_backbone_weights(net, "IMAGENET1K_V1")
    assert torch.equal(net.model.layer4[1].conv2.weight, cached.layer4[1].conv2.weight)
    with pytest.raises(ValueError, match="no weights 'IMAGENET9K'.*IMAGENET1K_V1"):
        load_backbone_weights(net, "IMAGENET9K")


def test_safetensors_files_load_too(tmp_path):
    save_file = importlib.import_module("safetensors.torch").save_file
    source = backbone("resnet-18", width=0.125, input_size=32)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "model.safetensors"))
    target = backbone("resnet-18", width=0.125, input_size=32)
    load_backbone_weights(target, tmp_path / "model.safetensors")
    assert _same(target, source.state_dict())
