import pytest
import torch
from PIL import Image

from easyssl import EvalTransform, SimCLRTransform
from easyssl.transforms import IMAGENET_NORMALIZE, SimCLRViewTransform


def _image(size=(50, 40)):
    return Image.new("RGB", size, (200, 30, 60))


def test_simclr_transform_returns_two_normalised_views():
    views = SimCLRTransform(input_size=32)(_image())
    assert len(views) == 2
    for view in views:
        assert view.shape == (3, 32, 32) and view.dtype == torch.float32


def test_views_differ_but_are_reproducible_with_a_seed():
    image = Image.frombytes("RGB", (64, 64), bytes(range(256)) * 48)
    transform = SimCLRTransform(input_size=32)
    torch.manual_seed(0)
    a = transform(image)
    torch.manual_seed(0)
    b = transform(image)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], a[1])


def test_no_augmentation_and_no_normalisation_gives_the_resized_image():
    t = SimCLRViewTransform(input_size=8, cj_prob=0, min_scale=1.0, random_gray_scale=0, gaussian_blur=0, hf_prob=0, normalize=None)
    view = t(Image.new("RGB", (16, 16), (255, 0, 0)))
    assert torch.allclose(view[0], torch.ones(8, 8)) and torch.allclose(view[1:], torch.zeros(2, 8, 8))


def test_grayscale_probability_one_gives_equal_channels():
    t = SimCLRViewTransform(input_size=16, random_gray_scale=1.0, cj_prob=0, gaussian_blur=0, normalize=None)
    view = t(_image())
    assert torch.allclose(view[0], view[1], atol=1e-6) and torch.allclose(view[1], view[2], atol=1e-6)


def test_rotation_by_right_angles():
    t = SimCLRViewTransform(input_size=8, rr_prob=1.0, cj_prob=0, random_gray_scale=0, gaussian_blur=0, hf_prob=0, min_scale=1.0, normalize=None)
    assert t(_image((8, 8))).shape == (3, 8, 8)


@pytest.mark.parametrize("kwargs,match", [({"cj_prob": 1.5}, "cj_prob"), ({"min_scale": 0}, "min_scale"), ({"hf_prob": -0.1}, "hf_prob")])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SimCLRViewTransform(**kwargs)


def test_eval_transform_is_deterministic_resize_and_centre_crop():
    image = Image.new("RGB", (60, 30), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 30))  # a white band on the left, cropped away by the centre crop
    t = EvalTransform(input_size=16, normalize=None)
    out = t(image)
    assert out.shape == (3, 16, 16)
    assert torch.equal(out, t(image))
    assert out.max().item() == 0.0
    normalised = EvalTransform(input_size=16)(image)
    expected = (0 - torch.tensor(IMAGENET_NORMALIZE["mean"])) / torch.tensor(IMAGENET_NORMALIZE["std"])
    assert torch.allclose(normalised[:, 8, 8], expected, atol=1e-5)
