"""Any backbone and starting weights through the one-call API (issue 16, items 1 and 2)."""

import importlib
import pytest
import torch
from torch import nn

import easyssl
from easyssl import build_training, embed_images, load_model, train_embedding_model
from easyssl.runtime.checkpoint import load_checkpoint

from tests.conftest import fast_config


class TinyNet(nn.Module):
    """A user's own backbone: feature maps of 16 channels, no num_features attribute."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(16)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


def _custom(**sections):
    return fast_config(model={"backbone": TinyNet(), "width": "auto"}, **sections)


@pytest.mark.parametrize("method", ["simclr", "byol"])
def test_a_module_trains_and_its_checkpoint_says_what_to_pass(class_folder, tmp_path, method):
    checkpoint = train_embedding_model(class_folder, method=method, checkpoint_dir=str(tmp_path / "run"), **_custom())
    config = load_checkpoint(checkpoint)["config"]
    assert config["model"]["backbone"] == f"custom:{TinyNet.__module__}.TinyNet"  # a description, not the module
    with pytest.raises(ValueError, match=r"embed_images\(folder, checkpoint, backbone=module\)"):
        embed_images(class_folder, checkpoint, progress_bar=False)
    with pytest.raises(ValueError, match=r"load_model\(checkpoint, backbone=module\)"):
        load_model(checkpoint)
    embeddings, _, filenames = embed_images(class_folder, checkpoint, progress_bar=False, backbone=TinyNet())
    assert embeddings.shape == (len(filenames), 16)
    fresh = TinyNet()
    model, _ = load_model(checkpoint, backbone=fresh)
    trained = load_checkpoint(checkpoint)["model"]["backbone.model.conv.weight"]
    assert torch.equal(model.backbone.model.conv.weight, trained)
    assert not torch.equal(fresh.conv.weight, trained)  # the module passed is left as it was: a copy gets the weights


def test_a_module_of_another_shape_is_refused_with_the_reason(class_folder, tmp_path):
    checkpoint = train_embedding_model(class_folder, checkpoint_dir=str(tmp_path / "run"), **_custom())
    with pytest.raises(ValueError, match="does not fit the checkpoint's weights"):
        load_model(checkpoint, backbone=nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()))


def test_resuming_a_custom_run_takes_the_module_again(class_folder, tmp_path):
    run_dir = str(tmp_path / "run")
    train_embedding_model(class_folder, checkpoint_dir=run_dir, **_custom())
    checkpoint = train_embedding_model(class_folder, checkpoint_dir=run_dir, resume=True, **_custom(trainer={"max_epochs": 2}))
    assert load_checkpoint(checkpoint)["epoch"] >= 1


@pytest.mark.parametrize("name", ["torchvision/resnet18", "timm/resnet18"])
def test_named_external_backbones_embed_from_the_checkpoint_alone(class_folder, tmp_path, name):
    if name.startswith("timm/"):
        importlib.import_module("timm")
    checkpoint = train_embedding_model(class_folder, checkpoint_dir=str(tmp_path / "run"), **fast_config(model={"backbone": name, "width": "auto"}))
    assert load_checkpoint(checkpoint)["config"]["model"]["backbone"] == name
    embeddings, _, _ = embed_images(class_folder, checkpoint, progress_bar=False)
    assert embeddings.shape[1] == 512


def test_training_starts_from_a_state_dict_file(class_folder, tmp_path):
    start = easyssl.backbone("resnet-18", width=0.125, input_size=32)
    with torch.no_grad():
        start.conv1.weight.fill_(0.5)
    path = tmp_path / "start.pth"
    torch.save({"module." + k: v for k, v in start.state_dict().items()}, path)
    run = build_training(class_folder, method="byol", checkpoint_dir=str(tmp_path / "run"), **fast_config(model={"weights": str(path)}))
    model = run.trainer.model
    assert torch.all(model.backbone.conv1.weight == 0.5)
    assert torch.all(model.backbone_momentum.conv1.weight == 0.5)  # the momentum copy starts from the weights too
    assert run.config["model"]["weights"] == str(path)


def test_weights_that_do_not_match_stop_training_before_it_starts(class_folder, tmp_path):
    path = tmp_path / "other.pth"
    torch.save(easyssl.backbone("resnet-34", width=0.125, input_size=32).state_dict(), path)
    with pytest.raises(ValueError, match="missing keys|unexpected keys"):
        build_training(class_folder, checkpoint_dir=str(tmp_path / "run"), **fast_config(model={"weights": str(path)}))


def test_a_checkpoint_with_weights_loads_without_the_weights_file(class_folder, tmp_path):
    path = tmp_path / "start.pth"
    torch.save(easyssl.backbone("resnet-18", width=0.125, input_size=32).state_dict(), path)
    checkpoint = train_embedding_model(class_folder, checkpoint_dir=str(tmp_path / "run"), **fast_config(model={"weights": str(path)}))
    path.unlink()  # the checkpoint holds the trained weights: the start file is not read again
    load_model(checkpoint)
    train_embedding_model(class_folder, checkpoint_dir=str(tmp_path / "run"), resume=True, **fast_config(trainer={"max_epochs": 2}))


def test_a_run_starts_from_another_runs_checkpoint_or_exported_backbone(class_folder, tmp_path):
    first = train_embedding_model(class_folder, checkpoint_dir=str(tmp_path / "first"), **fast_config())
    trained = load_model(first)[0].backbone.state_dict()
    exported = easyssl.export_backbone(first, tmp_path / "backbone.pt", format="easyssl")
    for source in (first, exported):
        run = build_training(class_folder, method="byol", checkpoint_dir=str(tmp_path / "second"), **fast_config(model={"weights": str(source)}))
        start = run.trainer.model.backbone.state_dict()
        assert all(torch.equal(start[k].cpu(), v) for k, v in trained.items())
