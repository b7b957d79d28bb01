"""The explicit table pairing each per-image view transform with its batched twin and the defaults they share."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from easyssl.transforms import (
    BATCHED_TWINS,
    BYOL_VIEWS,
    MOCO_V2_VIEW,
    SIMCLR_VIEW,
    BYOLTransform,
    DINOTransform,
    MAETransform,
    MoCoV2Transform,
    MultiCropTransform,
    SimCLRTransform,
    SwaVTransform,
    batched_like,
)


@pytest.mark.parametrize("transform", list(BATCHED_TWINS), ids=lambda t: t.__name__)
def test_twins_make_as_many_views_of_the_same_sizes(transform):
    torch.manual_seed(0)
    image = Image.new("RGB", (48, 40), (120, 60, 30))
    views = transform(input_size=32)(image)
    batched = batched_like(transform)(input_size=32)(torch.randint(0, 256, (2, 3, 40, 48), dtype=torch.uint8))
    assert [tuple(v.shape) for v in views] == [tuple(b.shape[1:]) for b in batched]
    assert all(b.dtype == torch.float32 for b in batched)


def test_twins_start_from_the_transforms_defaults():
    simclr = batched_like(SimCLRTransform)(input_size=16).augments[0]
    assert (simclr.brightness, simclr.saturation, simclr.hue) == (0.8, 0.8, 0.2) and simclr.scale == (0.08, 1.0)
    moco = batched_like(MoCoV2Transform)(input_size=16).augments[0]
    assert (moco.brightness, moco.saturation, moco.hue) == (0.4, 0.4, 0.1) and moco.scale == (0.2, 1.0)
    first, second = batched_like(BYOLTransform)(input_size=16).augments
    assert (first.blur_prob, second.blur_prob, first.solarize_prob, second.solarize_prob) == (1.0, 0.1, 0.0, 0.2)
    assert (first.brightness, first.saturation) == (0.4, 0.2)
    dino = batched_like(DINOTransform)(input_size=32).augments
    assert len(dino) == 8 and dino[0].scale == (0.4, 1.0) and dino[-1].scale == (0.05, 0.4)
    assert [a.blur_prob for a in dino[:3]] == [1.0, 0.1, 0.5] and dino[1].solarize_prob == 0.2
    swav = batched_like(SwaVTransform)(input_size=32).augments
    assert swav[0].scale == (0.14, 1.0) and swav[-1].scale == (0.05, 0.14) and swav[0].brightness == 0.8
    (mae,) = batched_like(MAETransform)(input_size=16).augments
    assert mae.scale == (0.2, 1.0) and mae.cj_prob == 0 and mae.gray_prob == 0 and mae.blur_prob == 0


def test_a_config_overrides_the_twins_defaults():
    augment = batched_like(BYOLTransform)(input_size=16, cj_bright=0.1, gaussian_blur=0.3).augments[1]
    assert augment.brightness == pytest.approx(0.1) and augment.blur_prob == 0.3


def test_presets_are_written_once():
    assert MOCO_V2_VIEW == {**SIMCLR_VIEW, "cj_bright": 0.4, "cj_contrast": 0.4, "cj_sat": 0.4, "cj_hue": 0.1, "min_scale": 0.2}
    assert BATCHED_TWINS[BYOLTransform][1] is BYOL_VIEWS and BATCHED_TWINS[SimCLRTransform][1] is SIMCLR_VIEW


def test_unknown_transforms_have_no_twin():
    with pytest.raises(TypeError, match="no batched counterpart"):
        batched_like(MultiCropTransform)
    with pytest.raises(TypeError, match="no batched counterpart"):
        batched_like(lambda **kwargs: None)
