"""Backbones from elsewhere (issue 16, item 1): any nn.Module, "timm/..." and "torchvision/..." names, the dry-forward feature size."""

import importlib
import subprocess
import sys

import pytest
import torch
from torch import nn

from easyssl.methods import build_model
from easyssl.nn import backbone, feature_dim
from easyssl.nn.external import ExternalBackbone, describe_backbone, is_external_name


class MapNet(nn.Module):
    """Returns (N, 12, H/2, W/2) feature maps, and has no num_features."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(12)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class FlatNet(nn.Module):
    """Flattens its map: the feature size depends on the input size, which only a forward pass finds."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 4, stride=4)

    def forward(self, x):
        return torch.flatten(self.conv(x), 1)


def test_feature_dim_is_found_by_a_dry_forward_at_the_input_size():
    assert feature_dim(MapNet(), 32) == 12  # (N, C, H, W): C, the maps are pooled
    assert feature_dim(FlatNet(), 32) == 2 * 8 * 8  # (N, D): D, at this input size
    assert feature_dim(FlatNet(), 16) == 2 * 4 * 4
    net = MapNet().train()
    before = net.bn.running_mean.clone()
    feature_dim(net, 32)
    assert net.training and torch.equal(net.bn.running_mean, before)  # eval mode inside, training mode restored


def test_feature_dim_says_what_failed():
    class Tokens(nn.Module):
        def forward(self, x):
            return x.flatten(2).transpose(1, 2)  # (N, L, D)

    with pytest.raises(ValueError, match=r"\(N, D\) feature vectors or \(N, C, H, W\)"):
        feature_dim(Tokens(), 8)
    with pytest.raises(ValueError, match="failed on a dummy batch of shape \\(2, 3, 8, 8\\)"):
        feature_dim(nn.Linear(5, 5), 8)


def test_any_module_becomes_a_backbone_with_pooled_features():
    net = backbone(MapNet(), input_size=32)
    assert isinstance(net, ExternalBackbone) and net.num_features == 12
    assert net(torch.randn(3, 3, 32, 32)).shape == (3, 12)
    assert describe_backbone(net) == f"custom:{__name__}.MapNet"  # configs hold a description, not the module
    assert is_external_name(MapNet()) and is_external_name("timm/resnet18") and not is_external_name("resnet-18")
    with pytest.raises(ValueError, match="width"):
        backbone(MapNet(), width=0.5, input_size=32)


@pytest.mark.parametrize("method", ["simclr", "moco", "byol", "simsiam", "barlowtwins", "vicreg", "dino", "swav", "nnclr", "mocov3"])
def test_every_method_builds_its_heads_on_the_found_feature_size(method):
    model = build_model(method, {"backbone": FlatNet(), "width": 1.0, "small_input": True}, input_size=16)
    assert model.backbone.num_features == 32
    model.eval()
    with torch.no_grad():
        assert model.embed(torch.randn(2, 3, 16, 16)).shape == (2, 32)
        model(torch.randn(2, 3, 16, 16))  # the heads take 32 inputs


@pytest.mark.parametrize("name,features", [("torchvision/resnet18", 512), ("torchvision/convnext_tiny", 768), ("torchvision/efficientnet_b0", 1280)])
def test_torchvision_names_drop_the_classifier(name, features):
    net = backbone(name, input_size=32)
    assert net.num_features == features and net.name == name and describe_backbone(net) == name
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, features)
    assert not any(isinstance(m, nn.Linear) and m.out_features == 1000 for m in net.modules())  # no ImageNet classifier left


def test_torchvision_vit_is_built_for_the_input_size_and_unknown_names_are_named():
    net = backbone("torchvision/vit_b_16", input_size=32)
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 768)
    with pytest.raises(ValueError, match="unknown torchvision model 'resnet7'.*resnet18"):
        backbone("torchvision/resnet7", input_size=32)


def test_timm_names_need_timm_only_when_used():
    code = "import sys, easyssl; easyssl.backbone('resnet-18', width=0.125, input_size=32); print('timm' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


@pytest.mark.parametrize("name,features", [("timm/resnet18", 512), ("timm/convnext_atto", 320), ("timm/vit_tiny_patch16_224", 192)])
def test_timm_names_build_headless_models_without_downloading(name, features, monkeypatch):
    timm = importlib.import_module("timm")
    created = []
    original = timm.create_model

    def spy(*args, **kwargs):
        created.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(timm, "create_model", spy)
    net = backbone(name, input_size=32)
    assert all(k.get("pretrained") is False and k.get("num_classes") == 0 for k in created)
    assert net.num_features == features
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, features)  # ViTs too: (N, D) through num_classes=0


def test_unknown_timm_name_suggests_close_ones():
    importlib.import_module("timm")
    with pytest.raises(ValueError, match="unknown timm model 'resnet18x'.*resnet18"):
        backbone("timm/resnet18x", input_size=32)
