"""The calibration pass refits the feature BatchNorm to the embedded images, and sees a random sample of them."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from easyssl import EvalTransform, SSLDataset, calibrate_embeddings, fit_whitening, make_demo_dataset
from easyssl.data.collate import MultiViewCollate
from easyssl.models import SimCLR, backbone
from easyssl.train.whitening import MIN_REFIT_VARIANCE, calibration_loader, feature_norm, refit_feature_norm


def _sums(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f = features.double()
    return f.sum(0), f.T @ f


def test_refit_gives_the_statistics_of_the_features_behind_the_norm_and_the_sums_of_its_new_outputs():
    torch.manual_seed(0)
    norm = torch.nn.BatchNorm1d(6, affine=False)
    norm.train()
    for _ in range(50):  # running statistics of "training views": another mean and scale than the images below
        norm(torch.randn(64, 6) * 3 + 2)
    norm.eval()
    behind = torch.randn(500, 6) @ torch.randn(6, 6) * 0.5 - 1  # the features behind the norm on the embedded images
    with torch.no_grad():
        old = norm(behind)
    assert old.mean(0).abs().min() > 0.2  # off-centre before the refit
    total, products = refit_feature_norm(norm, *_sums(old), count=500)
    torch.testing.assert_close(norm.running_mean, behind.mean(0), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(norm.running_var, behind.var(0), atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        new = norm(behind)
    torch.testing.assert_close(new.mean(0), torch.zeros(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(new.var(0), torch.ones(6), atol=1e-3, rtol=1e-3)
    expected_total, expected_products = _sums(new)
    torch.testing.assert_close(total, expected_total, atol=1e-2, rtol=1e-4)
    torch.testing.assert_close(products, expected_products, atol=1e-2, rtol=1e-4)


def test_refit_does_not_blow_up_a_feature_that_is_constant_on_the_embedded_images():
    norm = torch.nn.BatchNorm1d(3, affine=False).eval()
    norm.running_var.fill_(4.0)
    old = torch.stack([torch.randn(100), torch.randn(100), torch.full((100,), 0.5)], dim=1)
    refit_feature_norm(norm, *_sums(old), count=100)
    floor = MIN_REFIT_VARIANCE * norm.running_var[:2].sum().item() / 3
    assert norm.running_var[2].item() >= floor * 0.999  # not 0: its outputs are not divided by sqrt(eps)
    assert feature_norm(torch.nn.Linear(2, 2)) is None and feature_norm(SimCLR(torch.nn.Flatten(), num_features=4)) is None


def test_calibration_centres_and_scales_a_simclr_models_features_and_keeps_its_whitened_embeddings(tmp_path):
    folder = make_demo_dataset(tmp_path / "demo", images_per_class=40, image_size=32)  # 200 images > 64 features
    torch.manual_seed(0)
    model = SimCLR(backbone("resnet-18", width=0.125, input_size=32), out_dim=16, feature_norm=True)
    loader = DataLoader(SSLDataset(folder, transform=EvalTransform(32)), batch_size=50, collate_fn=MultiViewCollate())
    model.feature_norm.running_mean.fill_(0.3)  # statistics of other images (the training views)
    model.feature_norm.running_var.fill_(4.0)

    def embed(whiten: bool) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            return np.concatenate([(model.embedding(x) if whiten else model.embed(x)).double().numpy() for x, _, _ in loader])

    before = embed(False)
    assert np.abs(before.mean(0)).mean() > 0.1
    calibrate_embeddings(model, loader, device="cpu", precision="32", shrinkage=1e-6)
    after = embed(False)
    np.testing.assert_allclose(after.mean(0), 0.0, atol=1e-3)
    behind = before * 2.0 + 0.3  # the features behind the norm (its old statistics: mean 0.3, variance 4)
    live = behind.var(0, ddof=1) >= MIN_REFIT_VARIANCE * behind.var(0, ddof=1).mean()  # the others: the test above
    assert live.sum() > 10
    np.testing.assert_allclose(after.std(0, ddof=1)[live], 1.0, atol=1e-3)
    assert np.abs(before.std(0) - 1).max() > 0.2  # they were not unit-scaled before
    white = embed(True)
    np.testing.assert_allclose(white.mean(0), 0.0, atol=1e-3)
    # the whitening the features would have got without the refit: the same embeddings up to a rotation (per-feature
    # scaling does not change a whitening but for its rotation), so the same cosine similarities
    mean, whitening = fit_whitening(before, shrinkage=1e-6)
    unrefitted = (before - mean) @ whitening
    cosine = lambda e: (e / np.linalg.norm(e, axis=1, keepdims=True)) @ (e / np.linalg.norm(e, axis=1, keepdims=True)).T
    np.testing.assert_allclose(cosine(white), cosine(unrefitted), atol=0.03)  # 0.015 measured; pairs average 0.09
    # calibrating again changes nothing: the norm already has these images' statistics
    mean, var = model.feature_norm.running_mean.clone(), model.feature_norm.running_var.clone()
    calibrate_embeddings(model, loader, device="cpu", precision="32", shrinkage=1e-6)
    torch.testing.assert_close(model.feature_norm.running_mean, mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.feature_norm.running_var, var, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(embed(True), white, atol=1e-3)


def test_the_calibration_images_come_in_random_order_so_a_pass_cut_short_sees_every_class(tmp_path):
    folder = make_demo_dataset(tmp_path / "demo", images_per_class=20, image_size=32)  # class sub-folders, sorted
    data = SSLDataset(folder)
    loader = calibration_loader(data, EvalTransform(32), seed=0, device=torch.device("cpu"))
    targets = [t for _, batch_targets, _ in loader for t in batch_targets.tolist()]
    assert sorted(targets) == sorted(data.get_targets())  # every image once
    first_fifth = targets[: len(targets) // 5]
    assert len(set(first_fifth)) >= 4  # in the folder's order the first fifth is one class
    again = [t for _, batch_targets, _ in calibration_loader(data, EvalTransform(32), seed=0, device=torch.device("cpu")) for t in batch_targets.tolist()]
    assert again == targets  # seeded
