"""BYOL's asymmetric augmentations (Grill et al., 2020), also used by Barlow Twins and VICReg.

BYOL's two views share SimCLR's crop, flip, colour jitter and grayscale, but differ in blur
and solarization: view 1 is always blurred and never solarized, view 2 is blurred with
probability 0.1 and solarized with probability 0.2.
"""

from __future__ import annotations

from typing import Any

import torch

from easyssl.transforms.base import GEOMETRY, MultiViewTransform, view_steps

#: BYOL's two asymmetric views (also Barlow Twins', VICReg's, NNCLR's and MoCo v3's): crops from 8%
#: of the image, colour jitter 0.4/0.4/0.2/0.1 (probability 0.8), grayscale 0.2; blur
#: ``(view 1, view 2)`` = (1.0, 0.1), solarization (0.0, 0.2). The defaults of :class:`BYOLTransform`.
BYOL_VIEWS: dict[str, Any] = dict(
    gaussian_blur=(1.0, 0.1), solarization_prob=(0.0, 0.2), min_scale=0.08, max_scale=1.0,
    cj_prob=0.8, cj_strength=1.0, cj_bright=0.4, cj_contrast=0.4, cj_sat=0.2, cj_hue=0.1, random_gray_scale=0.2, **GEOMETRY,
)


def _pair(value: Any, name: str) -> tuple[Any, Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"{name} must be one value or a (view 1, view 2) pair, got {value!r}")
        return value[0], value[1]
    return value, value


class BYOLTransform(MultiViewTransform):
    """BYOL's two asymmetric views of each image.

    Every argument of :func:`view_steps` is accepted; ``gaussian_blur`` and
    ``solarization_prob`` may be ``(view 1, view 2)`` pairs. The defaults are
    :data:`BYOL_VIEWS`: blur ``(1.0, 0.1)``, solarization ``(0.0, 0.2)``, BYOL's colour jitter
    (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1, probability 0.8).

    Example:
        >>> view1, view2 = BYOLTransform(input_size=64)(pil_image)
    """

    def __init__(self, input_size: int = 224, **kwargs: Any) -> None:
        self.input_size = input_size
        view = {**BYOL_VIEWS, **kwargs}
        blur = _pair(view.pop("gaussian_blur"), "gaussian_blur")
        solarize = _pair(view.pop("solarization_prob"), "solarization_prob")
        super().__init__(
            [view_steps(input_size, gaussian_blur=blur[i], solarization_prob=solarize[i], **view) for i in range(2)]
        )


class BYOLView1Transform:
    """BYOL's first view alone (blur always, no solarization); arguments of :func:`view_steps`, defaults of :data:`BYOL_VIEWS`."""

    view = 0

    def __init__(self, input_size: int = 224, **kwargs: Any) -> None:
        view = {key: _pair(value, key)[self.view] if key in ("gaussian_blur", "solarization_prob") else value for key, value in BYOL_VIEWS.items()}
        self.transform = view_steps(input_size, **{**view, **kwargs})

    def __call__(self, image: Any) -> torch.Tensor:
        return self.transform(image)


class BYOLView2Transform(BYOLView1Transform):
    """BYOL's second view alone (blur with probability 0.1, solarization 0.2); arguments of :func:`view_steps`."""

    view = 1


#: VICReg (Bardes et al., 2022) and Barlow Twins (Zbontar et al., 2021) use BYOL's views.
VICRegTransform = BYOLTransform
BarlowTwinsTransform = BYOLTransform
