"""Test-time views: embeddings averaged over the image, its mirror and an enlarged view (``model.embedding_views``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from easyssl import SSLDataset, build_training, defaults, embed_images, load_model, train_embedding_model
from easyssl.config import eval_transform
from easyssl.models import SimCLR, backbone
from easyssl.nn import IMAGE_ONLY, check_embedding_views, embedding_view, views_cost
from easyssl.runtime.budget import TimeBudget
from easyssl.train.timing import BudgetPlan

FOUR = ((1.0, False), (1.0, True), (8 / 7, False), (8 / 7, True))


def _model(views=FOUR) -> SimCLR:
    torch.manual_seed(0)
    model = SimCLR(backbone("resnet-18", width=0.125, input_size=28, pooled_stages=2), out_dim=16, feature_norm=True).eval()
    model.embedding_views = views
    return model


def test_a_view_is_the_image_resized_and_mirrored():
    x = torch.arange(2 * 3 * 28 * 28, dtype=torch.float32).reshape(2, 3, 28, 28)
    assert torch.equal(embedding_view(x, 1.0, True), x.flip(-1))
    assert embedding_view(x, 8 / 7, False).shape == (2, 3, 32, 32)
    assert torch.equal(embedding_view(x, 1.0, False), x)
    flat = torch.full((1, 3, 28, 28), 0.7)  # a bilinear resize keeps a constant image (normalised or not) as it is
    torch.testing.assert_close(embedding_view(flat, 8 / 7, True), torch.full((1, 3, 32, 32), 0.7))
    assert views_cost(FOUR) == pytest.approx(2 + 2 * (8 / 7) ** 2)


@pytest.mark.parametrize("bad, message", [("mirror", "non-empty list"), ([], "non-empty list"), ([[1.0]], r"\[scale, mirrored\] pair"),
                                          ([[0.1, False]], "scale must be a number from 0.25"), ([[1.0, "yes"]], "true or false"),
                                          ([[True, False]], "scale must be a number")])
def test_bad_views_say_what_is_wrong(bad, message):
    with pytest.raises(ValueError, match=message):
        check_embedding_views(bad)
    with pytest.raises(ValueError, match="embedding_views"):
        _model(bad)


def test_the_embedding_is_the_average_over_the_views_and_mirror_views_make_it_mirror_invariant():
    model = _model()
    x = torch.randn(4, 3, 28, 28)
    with torch.no_grad():
        expected = torch.stack([model.embed(embedding_view(x, s, m)) for s, m in FOUR]).mean(0)
        torch.testing.assert_close(model.embed_views(x), expected)
        torch.testing.assert_close(model.embed_views(x.flip(-1)), model.embed_views(x), atol=1e-5, rtol=1e-4)
        model.embedding_views = [[1.0, False]]
        assert model.embedding_views == IMAGE_ONLY
        assert torch.equal(model.embed_views(x), model.embed(x))
        assert not torch.allclose(model.embed(x.flip(-1)), model.embed(x), atol=1e-3)  # one view is not invariant


def test_the_rule(demo_folder, tmp_path):
    assert defaults.default_embedding_views(28) == [[1.0, False], [1.0, True], [8 / 7, False], [8 / 7, True]]
    assert defaults.default_embedding_views(128) == [[1.0, False]]  # photos: not measured
    assert defaults.default_embedding_views(28, "vit-tiny") == [[1.0, False]]  # a ViT's position embeddings
    options = {"trainer": {"device": "cpu"}, "loader": {"num_workers": 0}}
    run = build_training(demo_folder, checkpoint_dir=tmp_path / "a", **options)  # 32 px images
    assert run.config["model"]["embedding_views"] == defaults.default_embedding_views(32)
    assert run.trainer.model.embedding_views == FOUR
    run = build_training(demo_folder, checkpoint_dir=tmp_path / "b", model={"embedding_views": [[1, True]]}, **options)
    assert run.config["model"]["embedding_views"] == [[1.0, True]] and run.trainer.model.embedding_views == ((1.0, True),)
    with pytest.raises(ValueError, match="embedding_views"):
        build_training(demo_folder, checkpoint_dir=tmp_path / "c", model={"embedding_views": [[5, False]]}, **options)


def test_the_whitening_is_fitted_to_the_averaged_features_and_a_checkpoint_keeps_the_views(demo_folder, tmp_path):
    options = dict(trainer={"max_steps": 2, "device": "cpu", "progress_bar": False}, loader={"batch_size": 8, "num_workers": 0},
                   model={"feature_norm": False})  # no BatchNorm refit: the stored mean is the features' own
    checkpoint = train_embedding_model(demo_folder, checkpoint_dir=tmp_path / "new", **options)
    model, config = load_model(checkpoint)
    assert model.embedding_views == FOUR and config["model"]["embedding_views"] == defaults.default_embedding_views(32)
    raw, _, _ = embed_images(demo_folder, checkpoint, progress_bar=False, num_workers=0, whiten=False)
    data = SSLDataset(demo_folder, transform=eval_transform(config))
    images = torch.stack([data[i][0] for i in range(len(data))])
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(raw), model.embed_views(images).float(), atol=2e-2, rtol=2e-2)
        single = model.embed(images).float().numpy()
    # The pass saw the whole (small) folder: its mean is that of the averaged features, not of one view's.
    stored = model.embedding_mean.numpy()
    assert np.abs(stored - raw.mean(0)).max() < 0.2 * np.abs(single.mean(0) - raw.mean(0)).max()
    # A checkpoint written before the key existed embeds the image alone.
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    del state["config"]["model"]["embedding_views"]
    torch.save(state, checkpoint)
    assert load_model(checkpoint)[0].embedding_views == IMAGE_ONLY


def test_the_time_budget_keeps_back_the_views_cost():
    budgets = [TimeBudget(600), TimeBudget(600)]
    for budget in budgets:
        budget.begin()
    one, four = BudgetPlan(budgets[0], 10_000), BudgetPlan(budgets[1], 10_000, views_cost(FOUR))
    for plan in (one, four):
        plan.record_step(128, 0.3)
        plan.record_step(128, 0.3)
    assert four.calibration_seconds() == pytest.approx(one.calibration_seconds() * views_cost(FOUR))
