"""BYOL's asymmetric augmentations (Grill et al., 2020), also used by Barlow Twins and VICReg.

BYOL's two views share SimCLR's crop, flip, colour jitter and grayscale, but differ in blur
and solarization: view 1 is always blurred and never solarized, view 2 is blurred with
probability 0.1 and solarized with probability 0.2.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torchvision.transforms import v2

from easyssl.transforms.base import IMAGENET_NORMALIZE, MultiViewTransform, blur_kernel_size, to_tensor_transforms
from easyssl.transforms.simclr import _check_probability, _RandomRightAngle


class RandomSolarization(torch.nn.Module):
    """Solarize (invert the pixels above a threshold) with probability ``p``.

    The threshold is half of the pixel range: 128 for ``uint8`` images, 0.5 for float images
    in ``[0, 1]``, so it works before or after the conversion to float.
    """

    def __init__(self, p: float = 0.2) -> None:
        super().__init__()
        _check_probability(solarization_prob=p)
        self.p = p

    def forward(self, image: Any) -> Any:
        if self.p <= 0 or torch.rand(()) >= self.p:
            return image
        dtype = getattr(image, "dtype", torch.uint8)
        threshold = 128 if dtype == torch.uint8 else 0.5
        return v2.functional.solarize(image, threshold)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def view_steps(
    input_size: int,
    min_scale: float = 0.08,
    max_scale: float = 1.0,
    cj_prob: float = 0.8,
    cj_strength: float = 1.0,
    cj_bright: float = 0.4,
    cj_contrast: float = 0.4,
    cj_sat: float = 0.2,
    cj_hue: float = 0.1,
    random_gray_scale: float = 0.2,
    gaussian_blur: float = 0.5,
    kernel_size: int | None = None,
    sigmas: Sequence[float] = (0.1, 2.0),
    solarization_prob: float = 0.0,
    vf_prob: float = 0.0,
    hf_prob: float = 0.5,
    rr_prob: float = 0.0,
    rr_degrees: float | tuple[float, float] | None = None,
    normalize: dict | None = IMAGENET_NORMALIZE,
) -> v2.Compose:
    """One augmented view: crop, flips, rotation, colour jitter, grayscale, blur, solarization, to float, normalise.

    The building block of the BYOL, DINO and SwaV transforms; arguments as in
    :class:`~easyssl.transforms.SimCLRViewTransform`, plus ``max_scale`` (largest crop area)
    and ``solarization_prob``.
    """
    _check_probability(cj_prob=cj_prob, random_gray_scale=random_gray_scale, gaussian_blur=gaussian_blur,
                       solarization_prob=solarization_prob, vf_prob=vf_prob, hf_prob=hf_prob, rr_prob=rr_prob)
    if not 0.0 < min_scale <= max_scale <= 1.0:
        raise ValueError(f"crop scales must satisfy 0 < min_scale <= max_scale <= 1, got ({min_scale}, {max_scale})")
    if input_size < 1:
        raise ValueError(f"input_size must be a positive number of pixels, got {input_size}")
    steps: list[Any] = [v2.ToImage(), v2.RandomResizedCrop(input_size, scale=(min_scale, max_scale), antialias=True)]
    if hf_prob > 0:
        steps.append(v2.RandomHorizontalFlip(p=hf_prob))
    if vf_prob > 0:
        steps.append(v2.RandomVerticalFlip(p=vf_prob))
    if rr_prob > 0:
        rotation = _RandomRightAngle() if rr_degrees is None else v2.RandomRotation(rr_degrees)
        steps.append(v2.RandomApply([rotation], p=rr_prob))
    if cj_prob > 0:
        jitter = v2.ColorJitter(
            brightness=cj_strength * cj_bright,
            contrast=cj_strength * cj_contrast,
            saturation=cj_strength * cj_sat,
            hue=min(0.5, cj_strength * cj_hue),
        )
        steps.append(v2.RandomApply([jitter], p=cj_prob))
    if random_gray_scale > 0:
        steps.append(v2.RandomGrayscale(p=random_gray_scale))
    if gaussian_blur > 0:
        kernel = kernel_size if kernel_size is not None else blur_kernel_size(input_size)
        steps.append(v2.RandomApply([v2.GaussianBlur(kernel, sigma=tuple(sigmas))], p=gaussian_blur))
    if solarization_prob > 0:
        steps.append(RandomSolarization(p=solarization_prob))
    return v2.Compose(steps + to_tensor_transforms(normalize)[1:])


def _pair(value: Any, name: str) -> tuple[Any, Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"{name} must be one value or a (view 1, view 2) pair, got {value!r}")
        return value[0], value[1]
    return value, value


class BYOLTransform(MultiViewTransform):
    """BYOL's two asymmetric views of each image.

    Every argument of :func:`view_steps` is accepted; ``gaussian_blur`` and
    ``solarization_prob`` may be ``(view 1, view 2)`` pairs, and default to BYOL's
    ``(1.0, 0.1)`` and ``(0.0, 0.2)``. Colour jitter defaults to BYOL's (brightness 0.4,
    contrast 0.4, saturation 0.2, hue 0.1, probability 0.8).

    Example:
        >>> view1, view2 = BYOLTransform(input_size=64)(pil_image)
    """

    def __init__(
        self,
        input_size: int = 224,
        gaussian_blur: float | tuple[float, float] = (1.0, 0.1),
        solarization_prob: float | tuple[float, float] = (0.0, 0.2),
        **kwargs: Any,
    ) -> None:
        self.input_size = input_size
        blur = _pair(gaussian_blur, "gaussian_blur")
        solarize = _pair(solarization_prob, "solarization_prob")
        super().__init__(
            [view_steps(input_size, gaussian_blur=blur[i], solarization_prob=solarize[i], **kwargs) for i in range(2)]
        )


class BYOLView1Transform:
    """BYOL's first view alone (blur always, no solarization); arguments of :func:`view_steps`."""

    def __init__(self, input_size: int = 224, gaussian_blur: float = 1.0, solarization_prob: float = 0.0, **kwargs: Any) -> None:
        self.transform = view_steps(input_size, gaussian_blur=gaussian_blur, solarization_prob=solarization_prob, **kwargs)

    def __call__(self, image: Any) -> torch.Tensor:
        return self.transform(image)


class BYOLView2Transform(BYOLView1Transform):
    """BYOL's second view alone (blur with probability 0.1, solarization 0.2); arguments of :func:`view_steps`."""

    def __init__(self, input_size: int = 224, gaussian_blur: float = 0.1, solarization_prob: float = 0.2, **kwargs: Any) -> None:
        super().__init__(input_size, gaussian_blur=gaussian_blur, solarization_prob=solarization_prob, **kwargs)


#: VICReg (Bardes et al., 2022) and Barlow Twins (Zbontar et al., 2021) use BYOL's views.
VICRegTransform = BYOLTransform
BarlowTwinsTransform = BYOLTransform
