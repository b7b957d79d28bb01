"""BYOL's asymmetric augmentations (Grill et al., 2020), also used by Barlow Twins and VICReg.

BYOL's two views share SimCLR's crop, flip, colour jitter and grayscale, but differ in blur
and solarization: view 1 is always blurred and never solarized, view 2 is blurred with
probability 0.1 and solarized with probability 0.2.
"""

from __future__ import annotations

from typing import Any

import torch

from easyssl.transforms.base import MultiViewTransform, view_steps


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
