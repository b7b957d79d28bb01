"""SimCLR's features for small images: the penalty on their correlations (``model.decorrelation_weight``) and the
BatchNorm on them (``model.feature_norm``): the penalty, the layer, the loss, training, the rules, old checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from easyssl import SSLDataset, build_training, defaults, embed_images, load_model, train_embedding_model
from easyssl.config import default_config
from easyssl.loss import CorrelationPenalty, NTXentLoss
from easyssl.methods.simclr import SimCLR
from easyssl.models import backbone
from easyssl.transforms import EvalTransform


def test_the_penalty_is_the_squared_off_diagonal_correlations_over_the_feature_count():
    features = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    features[:, 1] = 3 * features[:, 0] + 0.5 * features[:, 1]  # strongly correlated with the first
    corr = np.corrcoef(features.numpy(), rowvar=False)
    expected = ((corr - np.diag(np.diag(corr))) ** 2).sum() / 5
    penalty = CorrelationPenalty()
    assert penalty(features).item() == pytest.approx(expected, rel=1e-3)
    # it asks nothing of the features' mean or scale: shifted and scaled features (all positive) give the same
    assert penalty(features * torch.tensor([1.0, 10, 0.1, 2, 5]) + 7).item() == pytest.approx(expected, rel=1e-3)
    # perfectly correlated features: every off-diagonal entry is 1
    line = torch.arange(10.0).view(10, 1)
    assert penalty(torch.cat([line, 2 * line + 1, -line], dim=1)).item() == pytest.approx(6 / 3, rel=1e-3)
    # the gradient flows, in float32 for bf16 features too
    bf16 = features.bfloat16().requires_grad_()
    value = penalty(bf16)
    value.backward()
    assert value.dtype == torch.float32 and bf16.grad is not None and bf16.grad.abs().sum() > 0
    for bad in (torch.zeros(1, 4), torch.zeros(4)):
        with pytest.raises(ValueError, match=r"shape \(N, D\) with N >= 2"):
            penalty(bad)


def _model(decorrelation: float, rotation: float = 0.0, feature_norm: bool = False) -> SimCLR:
    torch.manual_seed(0)
    return SimCLR(backbone("resnet-18", width=0.125, input_size=16), hidden_dim=32, out_dim=16,
                  rotation_weight=rotation, decorrelation_weight=decorrelation, feature_norm=feature_norm)


def test_the_loss_adds_the_weighted_penalty_of_both_views_features():
    model, criterion = _model(0.1), NTXentLoss(temperature=0.2)
    views = [torch.randn(6, 3, 16, 16), torch.randn(6, 3, 16, 16)]
    features = model.embed(torch.cat(views))
    z0, z1 = model.projection_head(features).chunk(2)
    expected = criterion(z0, z1) + 0.1 * CorrelationPenalty()(features)
    assert torch.allclose(model.training_loss(views, criterion, None), expected, atol=1e-5)
    # with the rotation prediction too: one forward, both terms on the same (turned) features
    both = _model(0.1, rotation=0.4)
    assert torch.isfinite(both.training_loss(views, criterion, None))
    plain = _model(0.0)  # weight 0 is the paper's SimCLR
    assert torch.allclose(plain.training_loss(views, criterion, None), criterion(*plain(torch.cat(views)).chunk(2)), atol=1e-6)
    for bad in (-0.1, "auto", True):
        with pytest.raises(ValueError, match="decorrelation_weight must be a number of at least 0"):
            _model(bad)


def test_training_with_the_penalty_decorrelates_the_features_of_unseen_views(demo_folder):
    data = SSLDataset(demo_folder)
    to_tensor = EvalTransform(16)
    images = torch.stack([to_tensor(data.load(i)[0]) for i in range(len(data))])
    criterion = NTXentLoss(temperature=0.2)

    def trained(weight: float) -> float:
        model = _model(weight)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        generator = torch.Generator().manual_seed(0)
        for _ in range(30):
            views = [images + 0.2 * torch.randn(images.shape, generator=generator) for _ in range(2)]
            model.training_loss(views, criterion, None).backward()
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
        with torch.no_grad():
            return CorrelationPenalty()(model.embed(images.flip(3))).item()  # unseen views: mirrored images

    with_penalty, without = trained(1.0), trained(0.0)
    assert with_penalty < 0.6 * without, (with_penalty, without)


def test_the_feature_norm_standardises_the_features_that_heads_and_embeddings_use(demo_folder):
    data = SSLDataset(demo_folder)
    to_tensor = EvalTransform(16)
    images = torch.stack([to_tensor(data.load(i)[0]) for i in range(len(data))])
    model, plain = _model(0.0, feature_norm=True), _model(0.0)
    assert isinstance(model.feature_norm, torch.nn.BatchNorm1d) and not model.feature_norm.affine and plain.feature_norm is None
    assert not any("feature_norm" in name for name in plain.state_dict())  # the paper's SimCLR: nothing added
    raw = torch.flatten(model.backbone(images), 1)
    assert (raw >= 0).all()  # a ReLU network's pooled features: all positive, one corner of the space
    normed = model.embed(images)  # training mode: the batch's own statistics
    assert torch.allclose(normed.mean(0), torch.zeros(normed.shape[1]), atol=1e-4)
    assert torch.allclose(model(images), model.projection_head(normed))  # the head trains on the normed features
    with torch.no_grad():
        for _ in range(60):  # the running statistics follow the batches
            model.embed(images)
    model.eval()
    with torch.no_grad():
        embedded = model.embed(images)  # eval mode: the running statistics, as embed_images uses them
        backbone_features = torch.flatten(model.backbone(images), 1)
        expected = (backbone_features - model.feature_norm.running_mean) / (model.feature_norm.running_var + model.feature_norm.eps).sqrt()
    assert torch.allclose(embedded, expected, atol=1e-4)
    alive = raw.std(0) > 1e-3  # a feature no image moves stays 0
    assert alive.sum() > raw.shape[1] // 2
    # centred and scaled (up to the backbone's own batch norms, which use running statistics in eval mode too)
    assert embedded.mean(0).abs().max() < 0.2 and (embedded.std(0)[alive] - 1).abs().max() < 0.2
    assert (backbone_features.mean(0)[alive] / backbone_features.std(0)[alive]).min() > 0.5  # without it: far from centred
    with pytest.raises(ValueError, match="feature_norm must be True or False"):
        _model(0.0, feature_norm="auto")


def test_the_rule_the_config_key_and_an_older_checkpoint(demo_folder, tmp_path):
    assert defaults.default_decorrelation_weight(28, batch_size=128) == 0.1  # small images, batches of 128: the measured case
    assert defaults.default_decorrelation_weight(28, batch_size=64) == 0.0  # a correlation over few images is noise
    assert defaults.default_decorrelation_weight(224) == 0.0  # photos keep SimCLR as published
    assert defaults.default_feature_norm(28) is True and defaults.default_feature_norm(224) is False
    assert default_config("simclr")["model"]["feature_norm"] == "auto"
    assert default_config("simclr")["model"]["decorrelation_weight"] == "auto"
    assert "decorrelation_weight" not in default_config("vicreg")["model"]  # SimCLR's option only
    cpu = {"trainer": {"device": "cpu", "max_steps": 2, "progress_bar": False}, "loader": {"batch_size": 8, "num_workers": 0}}
    run = build_training(demo_folder, checkpoint_dir=tmp_path / "a", **cpu)  # 32 px images, batches of 8
    assert run.config["model"]["decorrelation_weight"] == 0.0 and run.trainer.model.decorrelation_weight == 0.0
    assert run.config["model"]["feature_norm"] is True and run.trainer.model.feature_norm is not None
    run = build_training(demo_folder, checkpoint_dir=tmp_path / "a2", model={"decorrelation_weight": 0.1}, **cpu)
    assert run.trainer.model.decorrelation_weight == 0.1  # asked for: kept
    run = build_training(demo_folder, checkpoint_dir=tmp_path / "b", model={"decorrelation_weight": 0}, **cpu)
    assert run.trainer.model.decorrelation_weight == 0.0
    run = build_training(demo_folder, checkpoint_dir=tmp_path / "c", collate={"input_size": 96}, **cpu)
    assert run.config["model"]["decorrelation_weight"] == 0.0 and run.config["model"]["feature_norm"] is False
    with pytest.raises(ValueError, match="decorrelation_weight"):
        build_training(demo_folder, checkpoint_dir=tmp_path / "d", model={"decorrelation_weight": -1}, **cpu)
    # trained with both: the checkpoint rebuilds the BatchNorm with its statistics
    checkpoint = train_embedding_model(demo_folder, checkpoint_dir=tmp_path / "new", **cpu)
    model, config = load_model(checkpoint)
    assert config["model"]["feature_norm"] is True and model.feature_norm.num_batches_tracked.item() == 2
    # A checkpoint written before the keys existed loads, embeds and resumes as it trained: no penalty, no BatchNorm.
    old = train_embedding_model(demo_folder, checkpoint_dir=tmp_path / "old", model={"feature_norm": False}, **cpu)
    state = torch.load(old, map_location="cpu", weights_only=True)
    del state["config"]["model"]["decorrelation_weight"], state["config"]["model"]["feature_norm"]
    torch.save(state, old)
    model, config = load_model(old)
    assert config["model"]["decorrelation_weight"] == 0.0 and model.decorrelation_weight == 0.0
    assert config["model"]["feature_norm"] is False and model.feature_norm is None
    assert embed_images(demo_folder, old, progress_bar=False, num_workers=0)[0].shape == (40, 192)
    resumed = train_embedding_model(demo_folder, checkpoint_dir=tmp_path / "old", resume=True,
                                    trainer={**cpu["trainer"], "max_steps": 3}, loader=cpu["loader"])
    again = torch.load(resumed, map_location="cpu", weights_only=True)
    assert again["step"] == 3 and again["config"]["model"]["decorrelation_weight"] == 0.0
    assert again["config"]["model"]["feature_norm"] is False and not any(key.startswith("feature_norm") for key in again["model"])
