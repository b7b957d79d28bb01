"""The methods' view transforms: MoCo v2, BYOL (with solarization), multi-crop (DINO, SwaV) and MAE."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from easyssl.transforms.base import IMAGENET_NORMALIZE
from easyssl.transforms.base import RandomSolarization, view_steps
from easyssl.transforms.byol import BYOLTransform, BYOLView1Transform, BYOLView2Transform
from easyssl.transforms.dino import DINOTransform, MultiCropTransform, SwaVTransform, default_local_size
from easyssl.transforms.mae import MAETransform
from easyssl.transforms.moco import MoCoV2Transform


@pytest.fixture()
def image():
    data = torch.arange(48 * 40 * 3, dtype=torch.int64).reshape(40, 48, 3) % 256
    return Image.fromarray(data.to(torch.uint8).numpy(), "RGB")


def test_moco_v2_transform(image):
    views = MoCoV2Transform(input_size=32)(image)
    assert len(views) == 2 and all(v.shape == (3, 32, 32) and v.dtype == torch.float32 for v in views)


def test_byol_transform_is_asymmetric(image):
    transform = BYOLTransform(input_size=24)
    views = transform(image)
    assert [v.shape for v in views] == [(3, 24, 24)] * 2
    first, second = transform.transforms
    blur = [t for t in first.transforms if isinstance(t, v2.RandomApply) and isinstance(t.transforms[0], v2.GaussianBlur)]
    assert blur[0].p == 1.0
    assert not any(isinstance(t, RandomSolarization) for t in first.transforms)
    solarize = [t for t in second.transforms if isinstance(t, RandomSolarization)]
    assert solarize[0].p == 0.2
    assert BYOLView1Transform(input_size=16)(image).shape == (3, 16, 16)
    assert BYOLView2Transform(input_size=16)(image).shape == (3, 16, 16)
    with pytest.raises(ValueError, match="pair"):
        BYOLTransform(input_size=16, gaussian_blur=(1.0, 0.5, 0.1))


def test_solarization_on_uint8_and_float():
    solarize = RandomSolarization(p=1.0)
    uint8 = torch.tensor([[[0, 127, 128, 255]]], dtype=torch.uint8)
    assert solarize(uint8).tolist() == [[[0, 127, 127, 0]]]
    floats = torch.tensor([[[0.0, 0.25, 0.5, 1.0]]])
    assert torch.allclose(solarize(floats), torch.tensor([[[0.0, 0.25, 0.5, 0.0]]]))
    assert torch.equal(RandomSolarization(p=0.0)(uint8), uint8)
    with pytest.raises(ValueError, match="probability"):
        RandomSolarization(p=2.0)


def test_view_steps_without_augmentation_is_resize_and_normalise(image):
    plain = view_steps(16, min_scale=1.0, cj_prob=0, random_gray_scale=0, gaussian_blur=0, hf_prob=0, normalize=None)
    out = plain(image)
    assert out.shape == (3, 16, 16) and 0.0 <= out.min() and out.max() <= 1.0


def test_dino_transform_multi_crop(image):
    transform = DINOTransform(input_size=64, n_local_views=6)
    views = transform(image)
    assert [v.shape[-1] for v in views] == [64, 64] + [24] * 6
    assert default_local_size(224) == 96 and default_local_size(32) == 16 and default_local_size(96) == 40
    assert [v.shape[-1] for v in DINOTransform(input_size=32, local_size=8, n_local_views=1)(image)] == [32, 32, 8]


def test_swav_transform_and_generic_multi_crop(image):
    assert [v.shape[-1] for v in SwaVTransform(input_size=32, n_local_views=3)(image)] == [32, 32, 16, 16, 16]
    three = MultiCropTransform(input_size=32, n_global_views=3, n_local_views=0, normalize=IMAGENET_NORMALIZE)
    assert len(three(image)) == 3
    with pytest.raises(ValueError):
        MultiCropTransform(input_size=32, n_global_views=0)


def test_mae_transform_gives_one_view(image):
    views = MAETransform(input_size=32)(image)
    assert len(views) == 1 and views[0].shape == (3, 32, 32)
