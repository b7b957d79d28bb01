"""ResNet backbones: feature sizes, the small-image stem, torchvision's weight layout, the registry's names."""

import pytest
import torch
import torchvision

from easyssl.nn import RESNETS, SMALL_INPUT_MAX_SIZE, available_backbones, backbone


@pytest.mark.parametrize("name,features", [("resnet-10", 512), ("resnet-18", 512), ("resnet-34", 512), ("resnet-50", 2048)])
def test_resnet_feature_sizes(name, features):
    net = backbone(name, width=0.25, input_size=32)
    assert net.num_features == features // 4
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, features // 4)
    blocks = {"resnet-10": 1, "resnet-18": 2, "resnet-34": 3, "resnet-50": 3}[name]
    assert len(net.layer1) == blocks


def test_small_input_stem_is_chosen_for_small_images():
    assert backbone("resnet-18", input_size=32).small_input is True
    assert backbone("resnet-18", input_size=224).small_input is False
    small = backbone("resnet-18", width=0.25, input_size=32)
    assert small.conv1.kernel_size == (3, 3) and isinstance(small.maxpool, torch.nn.Identity)
    # The small stem keeps resolution: 32 px -> 4x4 final map instead of 1x1.
    assert small.forward_features(torch.randn(1, 3, 32, 32)).shape[-1] == 4


def torchvision_resnet10() -> torchvision.models.ResNet:
    return torchvision.models.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1])


@pytest.mark.parametrize("name,constructor", [("resnet-10", torchvision_resnet10), ("resnet-18", torchvision.models.resnet18),
                                              ("resnet-50", torchvision.models.resnet50)])
def test_width_one_resnet_has_torchvision_weights_layout(name, constructor):
    ours = backbone(name, input_size=224)
    theirs = constructor()
    theirs.fc = torch.nn.Identity()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ours.eval(), theirs.eval()
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(ours(x), theirs(x), atol=1e-5)


def test_backbone_name_spellings_and_errors():
    assert backbone("ResNet18", width=0.125).num_features == 64
    assert "resnet-152" in available_backbones()
    with pytest.raises(ValueError, match="unknown backbone 'resnet-7'.*resnet-18"):
        backbone("resnet-7")
    with pytest.raises(ValueError, match="width"):
        backbone("resnet-18", width=0)


def test_small_input_threshold_is_one_constant():
    assert SMALL_INPUT_MAX_SIZE == 64
    assert backbone("resnet-18", width=0.125, input_size=SMALL_INPUT_MAX_SIZE).small_input is True
    assert backbone("resnet-18", width=0.125, input_size=SMALL_INPUT_MAX_SIZE + 1).small_input is False
    assert set(RESNETS) == {"resnet-10", "resnet-18", "resnet-34", "resnet-50", "resnet-101", "resnet-152"}
