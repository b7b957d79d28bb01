"""ResNet features pooled from the last stages (``pooled_stages``), the rule that picks it, and old checkpoints."""

from __future__ import annotations

import pytest
import torch

from easyssl import build_training, defaults, embed_images, load_model, train_embedding_model
from easyssl.models import backbone
from easyssl.tools.export import backbone_from_checkpoint


def test_the_features_are_the_pooled_stages_concatenated():
    torch.manual_seed(0)
    net = backbone("resnet-18", width=0.25, input_size=28, pooled_stages=2).eval()
    assert net.num_features == 64 + 128
    x = torch.randn(3, 3, 28, 28)
    with torch.no_grad():
        h3 = net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x)))))))
        expected = torch.cat([h3.mean((2, 3)), net.layer4(h3).mean((2, 3))], 1)
        assert torch.allclose(net(x), expected, atol=1e-5)
        assert torch.allclose(net(x)[:, 64:], net.forward_features(x).mean((2, 3)), atol=1e-5)  # the last stage's part
    assert backbone("resnet-50", width=0.25, pooled_stages=4).num_features == 16 * 4 + 32 * 4 + 64 * 4 + 128 * 4
    assert backbone("resnet-18").num_features == 512  # torchvision's features by default


def test_bad_values_say_what_to_do():
    with pytest.raises(ValueError, match="pooled_stages must be 1, 2, 3 or 4"):
        backbone("resnet-18", pooled_stages=5)
    with pytest.raises(ValueError, match="ResNets only.*vit-tiny"):
        backbone("vit-tiny", input_size=32, pooled_stages=2)


def test_the_rule_and_an_explicit_value(demo_folder, tmp_path):
    cpu = torch.device("cpu")
    assert defaults.default_pooled_stages(28, cpu, "resnet-18") == 2  # the measured case
    assert defaults.default_pooled_stages(128, cpu, "resnet-18") == 1  # photos keep torchvision's features
    assert defaults.default_pooled_stages(28, cpu, "vit-tiny") == 1
    assert defaults.default_pooled_stages(28, torch.device("cuda"), "resnet-18") == 2  # the small-image recipe on every device
    assert defaults.default_pooled_stages(28, cpu, "resnet-18", width=1.0) == 1  # exports to torchvision as it embeds
    options = {"trainer": {"device": "cpu"}, "loader": {"num_workers": 0}}
    run = build_training(demo_folder, checkpoint_dir=tmp_path / "a", **options)  # 32 px images
    assert run.config["model"]["pooled_stages"] == 2 and run.trainer.model.backbone.num_features == 192
    run = build_training(demo_folder, checkpoint_dir=tmp_path / "b", model={"pooled_stages": 1}, **options)
    assert run.config["model"]["pooled_stages"] == 1 and run.trainer.model.backbone.num_features == 128


def test_a_trained_model_embeds_with_them_and_an_older_checkpoint_still_loads(demo_folder, tmp_path):
    options = dict(trainer={"max_steps": 2, "device": "cpu", "progress_bar": False}, loader={"batch_size": 8, "num_workers": 0})
    checkpoint = train_embedding_model(demo_folder, checkpoint_dir=tmp_path / "new", **options)
    embeddings, _, _ = embed_images(demo_folder, checkpoint, progress_bar=False, num_workers=0)
    assert embeddings.shape[1] == 192
    assert backbone_from_checkpoint(checkpoint)[1]["pooled_stages"] == 2  # export rebuilds the same backbone
    # A checkpoint written before the key existed: its config has no pooled_stages, its model pooled the last stage.
    old = train_embedding_model(demo_folder, checkpoint_dir=tmp_path / "old", model={"pooled_stages": 1}, **options)
    state = torch.load(old, map_location="cpu", weights_only=True)
    del state["config"]["model"]["pooled_stages"]
    torch.save(state, old)
    model, config = load_model(old)
    assert model.backbone.num_features == 128
    assert embed_images(demo_folder, old, progress_bar=False, num_workers=0)[0].shape[1] == 128
