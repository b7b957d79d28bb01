"""SimCLR's augmentations (Chen et al., 2020), on ``torchvision.transforms.v2``."""

from __future__ import annotations

from typing import Any

import torch
from torchvision.transforms import v2

from easyssl.transforms.base import IMAGENET_NORMALIZE, MultiViewTransform, blur_kernel_size, to_tensor_transforms


class SimCLRViewTransform:
    """One random SimCLR view of an image: crop, flips, rotation, colour jitter, grayscale, blur, normalise.

    Argument names follow LightlySSL's so configs carry over.

    Args:
        input_size: Side of the square output crop, in pixels.
        cj_prob: Probability of applying colour jitter.
        cj_strength: Multiplier of all four jitter strengths.
        cj_bright, cj_contrast, cj_sat, cj_hue: Jitter strengths (before ``cj_strength``).
        min_scale: Smallest crop area, as a fraction of the image (``RandomResizedCrop`` scale).
        random_gray_scale: Probability of converting to grayscale.
        gaussian_blur: Probability of a Gaussian blur.
        kernel_size: Blur kernel size; default about 10% of ``input_size``.
        sigmas: Range of the blur's standard deviation.
        vf_prob, hf_prob: Probabilities of vertical and horizontal flips.
        rr_prob: Probability of a random rotation.
        rr_degrees: Rotation range: a number ``d`` for ``(-d, d)`` or a ``(min, max)`` pair;
            None with ``rr_prob > 0`` rotates by a multiple of 90 degrees.
        normalize: ``{"mean": ..., "std": ...}`` or None.
    """

    def __init__(
        self,
        input_size: int = 224,
        cj_prob: float = 0.8,
        cj_strength: float = 1.0,
        cj_bright: float = 0.8,
        cj_contrast: float = 0.8,
        cj_sat: float = 0.8,
        cj_hue: float = 0.2,
        min_scale: float = 0.08,
        random_gray_scale: float = 0.2,
        gaussian_blur: float = 0.5,
        kernel_size: int | None = None,
        sigmas: tuple[float, float] = (0.1, 2.0),
        vf_prob: float = 0.0,
        hf_prob: float = 0.5,
        rr_prob: float = 0.0,
        rr_degrees: float | tuple[float, float] | None = None,
        normalize: dict | None = IMAGENET_NORMALIZE,
    ) -> None:
        _check_probability(cj_prob=cj_prob, random_gray_scale=random_gray_scale, gaussian_blur=gaussian_blur,
                           vf_prob=vf_prob, hf_prob=hf_prob, rr_prob=rr_prob)
        if not 0.0 < min_scale <= 1.0:
            raise ValueError(f"min_scale must be in (0, 1], got {min_scale}")
        if input_size < 1:
            raise ValueError(f"input_size must be a positive number of pixels, got {input_size}")
        steps: list[Any] = [v2.ToImage(), v2.RandomResizedCrop(input_size, scale=(min_scale, 1.0), antialias=True)]
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
        self.transform = v2.Compose(steps + to_tensor_transforms(normalize)[1:])

    def __call__(self, image: Any) -> torch.Tensor:
        return self.transform(image)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transform})"


class SimCLRTransform(MultiViewTransform):
    """Two independent :class:`SimCLRViewTransform` views of each image (same arguments).

    Example:
        >>> view0, view1 = SimCLRTransform(input_size=64)(pil_image)
    """

    def __init__(self, input_size: int = 224, **kwargs: Any) -> None:
        self.input_size = input_size
        super().__init__([SimCLRViewTransform(input_size, **kwargs) for _ in range(2)])


class _RandomRightAngle(torch.nn.Module):
    """Rotate by 90, 180 or 270 degrees, uniformly (used when ``rr_degrees`` is None)."""

    def forward(self, image: Any) -> Any:
        k = int(torch.randint(1, 4, ()).item())
        return v2.functional.rotate(image, 90.0 * k, expand=True)


def _check_probability(**values: float) -> None:
    for name, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} is a probability and must be in [0, 1], got {value}")
