"""MoCo v2's augmentations (Chen et al., 2020): SimCLR's views with MoCo's strengths."""

from __future__ import annotations

from typing import Any

from easyssl.transforms.simclr import SimCLRTransform


class MoCoV2Transform(SimCLRTransform):
    """Two MoCo v2 views of each image: SimCLR's pipeline with crops from 20% of the image,
    colour jitter 0.4/0.4/0.4/0.1 (probability 0.8), grayscale 0.2, blur 0.5.

    Takes the arguments of :class:`~easyssl.transforms.SimCLRViewTransform`; only the
    defaults differ.

    Example:
        >>> query_view, key_view = MoCoV2Transform(input_size=64)(pil_image)
    """

    def __init__(
        self,
        input_size: int = 224,
        cj_prob: float = 0.8,
        cj_strength: float = 1.0,
        cj_bright: float = 0.4,
        cj_contrast: float = 0.4,
        cj_sat: float = 0.4,
        cj_hue: float = 0.1,
        min_scale: float = 0.2,
        random_gray_scale: float = 0.2,
        gaussian_blur: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            input_size, cj_prob=cj_prob, cj_strength=cj_strength, cj_bright=cj_bright, cj_contrast=cj_contrast, cj_sat=cj_sat,
            cj_hue=cj_hue, min_scale=min_scale, random_gray_scale=random_gray_scale, gaussian_blur=gaussian_blur, **kwargs,
        )


# MoCo v3 (Chen et al., 2021) uses BYOL's asymmetric views: easyssl.transforms.byol.BYOLTransform.
