"""Embedding statistics: whitening fitted at the end of training, whitened embeddings, old checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from easyssl import (EvalTransform, SSLDataset, SelfSupervisedEmbedding, calibrate_embeddings, embed_images, fit_whitening,
                     train_embedding_model)
from easyssl.inference import load_model
from easyssl.data.collate import MultiViewCollate
from easyssl.runtime.budget import TimeBudget
from easyssl.train.timing import BudgetPlan
from easyssl.train import CALIBRATION_IMAGES
from easyssl.loss import NTXentLoss
from easyssl.models import SimCLR, backbone

from conftest import fast_config


def _model() -> SimCLR:
    torch.manual_seed(0)
    return SimCLR(backbone("resnet-18", width=0.125, input_size=32), out_dim=16)


def _eval_loader(folder: str, batch_size: int = 5) -> DataLoader:
    return DataLoader(SSLDataset(folder, transform=EvalTransform(32)), batch_size=batch_size, collate_fn=MultiViewCollate())


def _features(model, loader) -> np.ndarray:
    model.eval()  # as calibration runs it: batch norms with their running statistics
    with torch.no_grad():
        return np.concatenate([model.backbone(x).double().numpy() for x, _, _ in loader])


def test_whitened_embeddings_are_centred_and_decorrelated(tmp_path):
    from easyssl import make_demo_dataset

    folder = make_demo_dataset(tmp_path / "demo", images_per_class=40, image_size=32)  # 200 images > 64 dimensions
    model = _model()
    loader = _eval_loader(folder, batch_size=64)
    assert not model.has_embedding_statistics
    count = calibrate_embeddings(model, loader, device="cpu", precision="32", shrinkage=1e-6)
    assert count == 200
    dims = model.backbone.num_features
    assert model.embedding_mean.shape == (dims,) and model.embedding_whitening.shape == (dims, dims)
    trainer = SelfSupervisedEmbedding(model, NTXentLoss(), torch.optim.SGD(model.parameters(), lr=0.1), None, device="cpu", precision="32")
    white, _, _ = trainer.embed(loader, progress_bar=False)
    raw, _, _ = trainer.embed(loader, progress_bar=False, whiten=False)
    np.testing.assert_allclose(raw, _features(model, loader), rtol=1e-4, atol=1e-5)
    assert np.corrcoef(raw.T)[np.triu_indices(dims, 1)].__abs__().max() > 0.3  # raw features are correlated
    np.testing.assert_allclose(white.mean(0), 0.0, atol=1e-3)
    # covariance of the whitened features: the identity on the directions the images span
    cov = np.cov(white.T, bias=True)
    rank = np.linalg.matrix_rank(np.cov(raw.T, bias=True), tol=1e-6 * np.abs(np.cov(raw.T)).max())
    eig = np.sort(np.linalg.eigvalsh(cov))[::-1]
    np.testing.assert_allclose(eig[: rank - 1], 1.0, atol=2e-2)
    # the formula, by hand (ZCA: symmetric W = U diag(1/sqrt(l + eps)) U^T)
    m = raw.astype(np.float64).mean(0)
    l, u = np.linalg.eigh(np.cov(raw.T.astype(np.float64), bias=True))
    l = np.clip(l, 0, None)
    w = (u / np.sqrt(l + 1e-6 * l.mean() + 1e-12)) @ u.T
    np.testing.assert_allclose(model.embedding_mean.numpy(), m, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.embedding_whitening.numpy(), w, rtol=2e-2, atol=2e-2 * np.abs(w).max())
    np.testing.assert_allclose(model.embedding_whitening.numpy(), model.embedding_whitening.numpy().T, atol=1e-5)


def test_default_shrinkage_grows_when_images_are_few(demo_folder):
    # 40 images, 64 dimensions: shrinkage max(0.01, 64 / 400) = 0.16 of the mean eigenvalue
    model = _model()
    loader = _eval_loader(demo_folder)
    calibrate_embeddings(model, loader, device="cpu", precision="32")
    raw = _features(model, loader)
    l, u = np.linalg.eigh(np.cov(raw.T, bias=True))
    l = np.clip(l, 0, None)
    expected = (u / np.sqrt(l + 0.16 * l.mean())) @ u.T
    np.testing.assert_allclose(model.embedding_whitening.numpy(), expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
    assert torch.isfinite(model.embedding_whitening).all()


def test_calibration_stops_at_max_images_and_restores_training_mode(demo_folder):
    model = _model().train()
    count = calibrate_embeddings(model, _eval_loader(demo_folder, batch_size=8), device="cpu", precision="32", max_images=12)
    assert count == 12
    assert model.training


def test_train_embedding_model_saves_statistics_and_embed_images_uses_them(demo_folder, tmp_path):
    checkpoint = train_embedding_model(demo_folder, checkpoint_dir=str(tmp_path / "run"), **fast_config())
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model, _ = load_model(checkpoint)
    dims = model.backbone.num_features
    assert state["model"]["embedding_mean"].shape == (dims,) and state["model"]["embedding_whitening"].shape == (dims, dims)
    assert model.has_embedding_statistics
    emb, labels, names = embed_images(demo_folder, checkpoint, progress_bar=False)
    raw, labels_raw, names_raw = embed_images(demo_folder, checkpoint, progress_bar=False, whiten=False)
    assert names == names_raw and labels == labels_raw
    expected = (raw - state["model"]["embedding_mean"].numpy()) @ state["model"]["embedding_whitening"].numpy()
    np.testing.assert_allclose(emb, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    # Calibrated on these very images: every dimension is centred.
    np.testing.assert_allclose(emb.mean(0), 0.0, atol=1e-3 * np.abs(emb).max())
    # the raw features are the model's own: for small images through SimCLR's BatchNorm, which the calibration refitted
    # to these images (easyssl.train.whitening.refit_feature_norm), so they are centred on them too
    assert state["config"]["model"]["feature_norm"] is True
    np.testing.assert_allclose(raw.mean(0), 0.0, atol=1e-4)
    assert np.abs(np.cov(raw.T)[np.triu_indices(raw.shape[1], 1)]).max() > 0.2  # but not decorrelated: not whitened


def test_checkpoint_without_statistics_loads_and_gives_raw_features(demo_folder):
    model = _model()
    old_state = {k: v for k, v in model.state_dict().items() if not k.startswith("embedding_")}
    calibrated = _model()
    calibrate_embeddings(calibrated, _eval_loader(demo_folder), device="cpu", precision="32")
    calibrated.load_state_dict(old_state)  # an easyssl checkpoint from before statistics: no error
    assert not calibrated.has_embedding_statistics
    x = torch.randn(3, 3, 32, 32)
    calibrated.eval()
    torch.testing.assert_close(calibrated.embedding(x), calibrated.embed(x).float())
    assert calibrated.embedding_whitening.shape == (0, 0)
    # and a calibrated state loads into a fresh model, statistics included
    fresh = _model()
    source = _model()
    calibrate_embeddings(source, _eval_loader(demo_folder), device="cpu", precision="32")
    fresh.load_state_dict(source.state_dict())
    torch.testing.assert_close(fresh.embedding_mean, source.embedding_mean)


def test_set_embedding_statistics_checks_its_arguments():
    model = _model()
    with pytest.raises(ValueError, match=r"\(4, 4\) matrix"):
        model.set_embedding_statistics(torch.zeros(4), torch.ones(5, 5))
    with pytest.raises(ValueError, match="finite"):
        model.set_embedding_statistics(torch.zeros(4), torch.full((4, 4), float("inf")))
    model.set_embedding_statistics(torch.ones(4), 2 * torch.eye(4))
    torch.testing.assert_close(model.whiten(torch.full((2, 4), 3.0)), torch.full((2, 4), 4.0))
    with pytest.raises(ValueError, match="clear_embedding_statistics"):
        model.whiten(torch.zeros(2, 8))
    model.clear_embedding_statistics()
    assert not model.has_embedding_statistics


def test_time_budget_sets_aside_the_calibration_pass():
    budget = TimeBudget(100.0)
    plan = BudgetPlan(budget, calibration_images=CALIBRATION_IMAGES)
    assert plan.calibration_seconds() == 0.0  # nothing measured yet
    plan.seed_from_history([{"images": 1000, "seconds": 20.0}])  # 50 training images/s
    # 10,000 images embedded at 8x the training rate (EMBED_COST): 25 s, of which at most a fifth of the budget is kept back
    assert plan.calibration_seconds(1000) == pytest.approx(1000 / 400)
    assert plan.calibration_seconds() == pytest.approx(20.0) and plan.calibration_seconds(0) == 0.0
    plan.record_checkpoint(0.0)
    plan.update()
    assert budget.stop_at == pytest.approx(80.0)
    assert not budget.exhausted(60.0) and budget.exhausted(80.0)


def test_fit_whitening_matches_calibration_and_whitens_any_features():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(6, 6))
    x = rng.normal(size=(5000, 6)) @ mixing + 3.0  # correlated, off-centre
    mean, w = fit_whitening(x, shrinkage=0.0)
    white = (x - mean) @ w
    np.testing.assert_allclose(white.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.cov(white.T, bias=True), np.eye(6), atol=1e-3)
    np.testing.assert_allclose(w, w.T, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        fit_whitening(np.zeros(5))
