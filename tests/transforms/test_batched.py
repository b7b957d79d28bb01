"""The fast data path's batched augmentations (the decoded-image cache: tests/data/test_cache.py)."""

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from easyssl import SSLDataset, build_training, load_checkpoint, train_embedding_model
from easyssl.data.cache import CachedImageDataset
from easyssl.transforms.batched import BatchViewAugment, batch_multi_crop_augment, batch_two_view_augment
from tests.conftest import fast_config, write_image

PLAIN = dict(cj_prob=0, random_gray_scale=0, gaussian_blur=0, hf_prob=0, normalize=None)


def test_crop_at_full_scale_is_the_image():
    x = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    out = BatchViewAugment(16, min_scale=1.0, ratio=(1.0, 1.0), **PLAIN)(x)
    assert torch.allclose(out, x.float() / 255, atol=1e-5)


def test_flips_and_right_angle_rotations():
    x = torch.rand(8, 3, 8, 8)
    flipped = BatchViewAugment(8, min_scale=1.0, ratio=(1.0, 1.0), **{**PLAIN, "hf_prob": 1.0})(x)
    assert torch.allclose(flipped, x.flip(3), atol=1e-5)
    rotated = BatchViewAugment(8, min_scale=1.0, ratio=(1.0, 1.0), rr_prob=1.0, **PLAIN)(x)
    candidates = [torch.rot90(x, k, (2, 3)) for k in (1, 2, 3)]
    for i in range(8):
        assert any(torch.allclose(rotated[i], c[i], atol=1e-5) for c in candidates)


def test_grayscale_solarize_and_normalize():
    x = torch.rand(6, 3, 8, 8)
    gray = BatchViewAugment(8, min_scale=1.0, ratio=(1.0, 1.0), **{**PLAIN, "random_gray_scale": 1.0})(x)
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])
    expected = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert torch.allclose(gray[:, 0], expected, atol=1e-5)
    solar = BatchViewAugment(8, min_scale=1.0, ratio=(1.0, 1.0), solarization=1.0, **PLAIN)(x)
    assert torch.allclose(solar, torch.where(x >= 0.5, 1 - x, x), atol=1e-5)
    norm = BatchViewAugment(8, min_scale=1.0, ratio=(1.0, 1.0), **{**PLAIN, "normalize": {"mean": [0.5] * 3, "std": [0.25] * 3}})(x)
    assert torch.allclose(norm, (x - 0.5) / 0.25, atol=1e-4)


def test_blur_equals_torchvision_gaussian_blur():
    x = torch.rand(3, 3, 16, 16)
    out = BatchViewAugment(16, min_scale=1.0, ratio=(1.0, 1.0), **{**PLAIN, "gaussian_blur": 1.0}, sigmas=(1.5, 1.5), kernel_size=5)(x)
    assert torch.allclose(out, TF.gaussian_blur(x, [5, 5], [1.5, 1.5]), atol=1e-5)


def test_colour_jitter_brightness_only_scales_pixels():
    x = torch.full((64, 3, 4, 4), 0.5)
    out = BatchViewAugment(4, min_scale=1.0, ratio=(1.0, 1.0), cj_prob=1.0, cj_bright=0.5, cj_contrast=0, cj_sat=0, cj_hue=0,
                           random_gray_scale=0, gaussian_blur=0, hf_prob=0, normalize=None)(x)
    factors = out[:, 0, 0, 0] / 0.5
    assert factors.min() >= 0.5 - 1e-6 and factors.max() <= 1.5 + 1e-6 and factors.std() > 0.1
    assert torch.allclose(out, out[:, :1, :1, :1].expand_as(out))  # uniform per image


def test_hue_rotation_keeps_gray_and_luma():
    gray = torch.full((2, 3, 4, 4), 0.4)
    assert torch.allclose(BatchViewAugment._rotate_hue(gray, torch.tensor([1.0, 2.0])), gray, atol=1e-5)
    colour = torch.tensor([0.6, 0.3, 0.2]).view(1, 3, 1, 1).expand(1, 3, 2, 2).contiguous()
    rotated = BatchViewAugment._rotate_hue(colour, torch.tensor([0.5]))
    luma = lambda t: 0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]
    assert torch.allclose(luma(rotated), luma(colour), atol=1e-4) and not torch.allclose(rotated, colour)


def test_crop_statistics_match_torchvision_random_resized_crop():
    # Crops of a half-black, half-white image: a view's mean tells where the crop fell and how
    # big it was. The distribution must match torchvision's RandomResizedCrop.
    from torchvision.transforms import v2

    torch.manual_seed(0)
    n = 3000
    x = torch.zeros(n, 3, 32, 32)
    x[:, :, :, 16:] = 1
    ours = BatchViewAugment(8, min_scale=0.08, **PLAIN)(x).mean(dim=(1, 2, 3))
    rrc = v2.RandomResizedCrop(8, scale=(0.08, 1.0), antialias=True)
    theirs = torch.stack([rrc(x[0]).mean() for _ in range(n)])
    for low, high in [(0.0, 0.05), (0.05, 0.3), (0.3, 0.7), (0.7, 0.95), (0.95, 1.01)]:
        a = ((ours >= low) & (ours < high)).float().mean().item()
        b = ((theirs >= low) & (theirs < high)).float().mean().item()
        assert abs(a - b) < 0.04, (low, high, a, b)


def test_views_are_independent_and_on_the_input_device():
    x = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    v0, v1 = batch_two_view_augment(12)(x)
    assert v0.shape == v1.shape == (4, 3, 12, 12) and v0.device == x.device and not torch.equal(v0, v1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="cj_prob"):
        BatchViewAugment(cj_prob=2)
    with pytest.raises(ValueError, match="min_scale"):
        BatchViewAugment(min_scale=0)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        BatchViewAugment(8)(torch.zeros(3, 8, 8))


def test_api_uses_the_fast_path_by_default_and_can_turn_it_off(demo_folder, tmp_path):
    run = build_training(demo_folder, checkpoint_dir=tmp_path, **fast_config())
    assert run.config["loader"]["batch_augment"] is True and run.trainer.batch_transform is not None
    assert isinstance(run.trainer.dataloader.dataset, CachedImageDataset)
    slow = build_training(demo_folder, checkpoint_dir=tmp_path, **fast_config(loader={"batch_augment": False}))
    assert slow.trainer.batch_transform is None and isinstance(slow.trainer.dataloader.dataset, SSLDataset)
    checkpoint = train_embedding_model(demo_folder, checkpoint_dir=tmp_path / "b", **fast_config(loader={"batch_augment": False}))
    assert load_checkpoint(checkpoint)["epoch"] == 1


def test_two_view_and_multi_crop_builders_take_per_view_probabilities():
    x = torch.rand(4, 3, 16, 16)
    first, second = batch_two_view_augment(8, gaussian_blur=(1.0, 0.1), solarization_prob=(0.0, 0.2)).augments
    assert (first.blur_prob, second.blur_prob, first.solarize_prob, second.solarize_prob) == (1.0, 0.1, 0.0, 0.2)
    crops = batch_multi_crop_augment(16, n_local_views=2, local_size=8, gaussian_blur=(1.0, 0.1, 0.5), min_scale=0.5)
    assert [a.input_size for a in crops.augments] == [16, 16, 8, 8]
    assert [a.blur_prob for a in crops.augments] == [1.0, 0.1, 0.5, 0.5]
    assert crops.augments[0].scale == (0.4, 1.0) and crops.augments[2].scale == (0.05, 0.4)  # min_scale ignored
    assert [v.shape[-1] for v in crops(x)] == [16, 16, 8, 8]
