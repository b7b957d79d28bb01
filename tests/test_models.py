import pytest
import torch
import torchvision

from easyssl import backbone
from easyssl.models import SimCLR, SimCLRProjectionHead, available_backbones


@pytest.mark.parametrize("name,features", [("resnet-18", 512), ("resnet-34", 512), ("resnet-50", 2048)])
def test_resnet_feature_sizes(name, features):
    net = backbone(name, width=0.25, input_size=32)
    assert net.num_features == features // 4
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, features // 4)


def test_small_input_stem_is_chosen_for_small_images():
    assert backbone("resnet-18", input_size=32).small_input is True
    assert backbone("resnet-18", input_size=224).small_input is False
    small = backbone("resnet-18", width=0.25, input_size=32)
    assert small.conv1.kernel_size == (3, 3) and isinstance(small.maxpool, torch.nn.Identity)
    # The small stem keeps resolution: 32 px -> 4x4 final map instead of 1x1.
    assert small.forward_features(torch.randn(1, 3, 32, 32)).shape[-1] == 4


@pytest.mark.parametrize("name,constructor", [("resnet-18", torchvision.models.resnet18), ("resnet-50", torchvision.models.resnet50)])
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


def test_simclr_projection_head_layers():
    head = SimCLRProjectionHead(64, 32, 16, num_layers=3)
    linear = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linear] == [(64, 32), (32, 32), (32, 16)]
    assert head(torch.randn(4, 64)).shape == (4, 16)


def test_simclr_model_forward_embed_and_loss():
    from easyssl.loss import NTXentLoss
    from easyssl.models import TrainingProgress

    model = SimCLR(backbone("resnet-18", width=0.125, input_size=32), out_dim=16)
    x = torch.randn(4, 3, 32, 32)
    assert model(x).shape == (4, 16) and model.embed(x).shape == (4, 64)
    loss = model.training_loss([x, x.flip(-1)], NTXentLoss(), TrainingProgress())
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())
