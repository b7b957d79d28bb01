"""SimCLR's augmentations (Chen et al., 2020), on ``torchvision.transforms.v2``."""

from __future__ import annotations

from typing import Any

import torch

from easyssl.transforms.base import GEOMETRY, IMAGENET_NORMALIZE, MultiViewTransform, view_steps

#: SimCLR's view: crops from 8% of the image, strong colour jitter 0.8/0.8/0.8/0.2 (probability 0.8),
#: grayscale 0.2, blur 0.5, horizontal flip 0.5. The defaults of :class:`SimCLRViewTransform`.
SIMCLR_VIEW: dict[str, Any] = dict(
    cj_prob=0.8, cj_strength=1.0, cj_bright=0.8, cj_contrast=0.8, cj_sat=0.8, cj_hue=0.2, min_scale=0.08,
    random_gray_scale=0.2, gaussian_blur=0.5, **GEOMETRY,
)


class SimCLRViewTransform:
    """One random SimCLR view of an image: crop, flips, rotation, colour jitter, grayscale, blur, normalise.

    Argument names follow LightlySSL's so configs carry over; every argument but ``input_size``
    and ``normalize`` defaults to :data:`SIMCLR_VIEW`.

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

    def __init__(self, input_size: int = 224, normalize: dict | None = IMAGENET_NORMALIZE, **view: Any) -> None:
        self.transform = view_steps(input_size, normalize=normalize, **{**SIMCLR_VIEW, **view})

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
