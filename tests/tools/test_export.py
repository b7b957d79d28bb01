"""export_backbone / torchvision_model / load_backbone: the weights reach plain torchvision intact."""

import pytest
import torch
import torchvision
from torch import nn

from tests.conftest import fast_config
from easyssl import build_training, load_model, train_embedding_model
from easyssl.nn import BACKBONES, backbone
from easyssl.tools.export import BACKBONE_FORMAT, export_backbone, load_backbone, torchvision_model


def _randomise_batchnorm(net: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so a lost buffer changes the features."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return net.eval()


def _features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


@pytest.fixture(scope="module")
def small_stem_checkpoint(tmp_path_factory):
    """A width-1 resnet-18 trained two steps on 32 px images (small-image stem)."""
    from easyssl import make_demo_dataset

    root = tmp_path_factory.mktemp("export")
    images = make_demo_dataset(root / "images", images_per_class=4, image_size=32)
    config = fast_config(model={"width": 1.0}, trainer={"max_steps": 2, "max_epochs": 5})
    return train_embedding_model(images, checkpoint_dir=str(root / "run"), **config)


def test_exported_small_stem_weights_load_into_torchvision_and_match(small_stem_checkpoint, tmp_path):
    model, config = load_model(small_stem_checkpoint)
    assert config["model"]["small_input"] is True
    path = export_backbone(small_stem_checkpoint, tmp_path / "sub" / "backbone.pth")
    state = torch.load(path, weights_only=True)
    assert {"fc.weight", "fc.bias"} <= set(state) and state["conv1.weight"].shape == (64, 3, 3, 3)

    tv = torchvision.models.resnet18()
    with pytest.raises(RuntimeError):  # the 7x7 stem cannot hold the 3x3 small-image stem...
        tv.load_state_dict(state)
    tv.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)  # ...as documented
    tv.maxpool = nn.Identity()
    tv.load_state_dict(state)  # strict=True
    tv.fc = nn.Identity()

    x = torch.randn(3, 3, 32, 32)
    expected = _features(model.backbone, x)
    assert expected.shape == (3, 512)
    torch.testing.assert_close(_features(tv, x), expected, atol=1e-5, rtol=1e-5)
    # The checkpoint's BN statistics were exported, not torchvision's defaults.
    assert not torch.allclose(state["bn1.running_var"], torch.ones(64))


def test_torchvision_model_helper_matches_and_resizes_classifier(small_stem_checkpoint):
    model, _ = load_model(small_stem_checkpoint)
    x = torch.randn(2, 3, 32, 32)
    expected = _features(model.backbone, x)

    tv = torchvision_model(small_stem_checkpoint)
    assert isinstance(tv, torchvision.models.ResNet) and tv.fc.out_features == 1000
    assert isinstance(tv.maxpool, nn.Identity) and tv.conv1.kernel_size == (3, 3)
    tv.fc = nn.Identity()
    torch.testing.assert_close(_features(tv, x), expected, atol=1e-5, rtol=1e-5)

    clf = torchvision_model(small_stem_checkpoint, num_classes=5)
    assert clf.fc.out_features == 5
    assert _features(clf, x).shape == (2, 5)
    clf.fc = nn.Identity()
    torch.testing.assert_close(_features(clf, x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,ctor,dim", [("resnet-18", "resnet18", 512), ("resnet-50", "resnet50", 2048)])
def test_standard_stem_loads_into_plain_torchvision_constructor(name, ctor, dim, tmp_path):
    net = _randomise_batchnorm(backbone(name, small_input=False), seed=1)
    path = export_backbone(net, tmp_path / "b.pth")
    tv = getattr(torchvision.models, ctor)()
    tv.load_state_dict(torch.load(path, weights_only=True))  # no changes needed, strict=True
    tv.fc = nn.Identity()
    x = torch.randn(2, 3, 64, 64)
    out = _features(tv, x)
    assert out.shape == (2, dim)
    torch.testing.assert_close(out, _features(net, x), atol=1e-4, rtol=1e-4)


def _untrained_checkpoint(folder, path, **sections):
    """A checkpoint written without training (random weights, non-trivial BN statistics): fast."""
    run = build_training(folder, checkpoint_dir=str(path.parent), **fast_config(**sections))
    _randomise_batchnorm(run.trainer.model.backbone, seed=3)
    return run.trainer.save_checkpoint(path, 1)


def test_standard_stem_checkpoint_and_frozen_bn_for_detection(demo_folder, tmp_path):
    ckpt = _untrained_checkpoint(demo_folder, tmp_path / "run" / "last.ckpt", model={"width": 1.0, "small_input": False})
    model, _ = load_model(ckpt)
    frozen = torchvision_model(ckpt, norm_layer=torchvision.ops.misc.FrozenBatchNorm2d)
    assert isinstance(frozen.bn1, torchvision.ops.misc.FrozenBatchNorm2d)
    assert isinstance(frozen.maxpool, nn.MaxPool2d)
    frozen.fc = nn.Identity()
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(_features(frozen, x), _features(model.backbone, x), atol=1e-4, rtol=1e-4)


def test_width_other_than_one_is_refused_for_torchvision_but_exports_as_easyssl(tmp_path, demo_folder):
    ckpt = _untrained_checkpoint(demo_folder, tmp_path / "run" / "last.ckpt")
    with pytest.raises(ValueError, match=r"width 0\.125.*format='easyssl'"):
        export_backbone(ckpt, tmp_path / "b.pth")
    with pytest.raises(ValueError, match="format='easyssl'"):
        torchvision_model(ckpt)
    assert not (tmp_path / "b.pth").exists()

    path = export_backbone(ckpt, tmp_path / "b.pt", format="easyssl")
    saved = torch.load(path, weights_only=True)  # an export loads without unpickling code
    assert saved["format"] == BACKBONE_FORMAT and saved["args"]["width"] == 0.125 and saved["num_features"] == 96 and saved["args"]["pooled_stages"] == 2
    # The documented recipe: easyssl.models.backbone(**args).load_state_dict(state_dict).
    rebuilt = backbone(**saved["args"])
    rebuilt.load_state_dict(saved["state_dict"])
    model, _ = load_model(ckpt)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(_features(rebuilt, x), _features(model.backbone, x))
    torch.testing.assert_close(_features(load_backbone(path), x), _features(model.backbone, x))


def test_non_resnet_backbone_exports_generically(tmp_path, demo_folder, monkeypatch):
    class TinyViTLike(nn.Module):
        def __init__(self, width=1.0, small_input=False, input_size=None):
            super().__init__()
            self.num_features = 16
            self.proj = nn.Conv2d(3, 16, kernel_size=8, stride=8)
            self.norm = nn.LayerNorm(16)

        def forward(self, x):
            return self.norm(self.proj(x).flatten(2).mean(dim=2))

    monkeypatch.setitem(BACKBONES, "vit-test", TinyViTLike)
    run = build_training(demo_folder, checkpoint_dir=str(tmp_path / "run"), **fast_config(model={"backbone": "vit-test"}))
    with torch.no_grad():
        run.trainer.model.backbone.proj.weight.mul_(3.0)
    ckpt = run.trainer.save_checkpoint(tmp_path / "run" / "last.ckpt", 1)

    with pytest.raises(ValueError, match="torchvision has no model.*format='easyssl'"):
        export_backbone(ckpt, tmp_path / "b.pth")
    path = export_backbone(ckpt, tmp_path / "b.pt", format="easyssl")
    net = load_backbone(path)
    assert isinstance(net, TinyViTLike)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(_features(net, x), _features(run.trainer.model.backbone, x))


def test_bad_arguments(tmp_path, small_stem_checkpoint):
    with pytest.raises(ValueError, match="format must be one of"):
        export_backbone(small_stem_checkpoint, tmp_path / "b.pth", format="onnx")
    with pytest.raises(FileNotFoundError):
        export_backbone(tmp_path / "missing.ckpt", tmp_path / "b.pth")
    torch.save({"x": 1}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="format='easyssl'"):
        load_backbone(tmp_path / "other.pth")
    with pytest.raises(TypeError):
        export_backbone(42, tmp_path / "b.pth")


def test_vit_backbone_exports_in_easyssl_format(tmp_path, demo_folder):
    run = build_training(demo_folder, checkpoint_dir=str(tmp_path / "run"), **fast_config(model={"backbone": "vit-tiny", "width": 0.5}))
    ckpt = run.trainer.save_checkpoint(tmp_path / "run" / "last.ckpt", 1)
    with pytest.raises(ValueError, match="format='easyssl'"):
        export_backbone(ckpt, tmp_path / "b.pth")
    net = load_backbone(export_backbone(ckpt, tmp_path / "vit.pt", format="easyssl"))
    model, _ = load_model(ckpt)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(_features(net, x), _features(model.backbone, x))
