"""MoCo v2's augmentations (Chen et al., 2020): SimCLR's views with MoCo's strengths."""

from __future__ import annotations

from typing import Any

from easyssl.transforms.simclr import SIMCLR_VIEW, SimCLRTransform

#: MoCo v2's view (also SimSiam's): SimCLR's pipeline with crops from 20% of the image and milder
#: colour jitter 0.4/0.4/0.4/0.1 (probability 0.8); grayscale 0.2, blur 0.5.
MOCO_V2_VIEW: dict[str, Any] = {**SIMCLR_VIEW, "cj_bright": 0.4, "cj_contrast": 0.4, "cj_sat": 0.4, "cj_hue": 0.1, "min_scale": 0.2}


class MoCoV2Transform(SimCLRTransform):
    """Two MoCo v2 views of each image: SimCLR's pipeline with crops from 20% of the image,
    colour jitter 0.4/0.4/0.4/0.1 (probability 0.8), grayscale 0.2, blur 0.5.

    Takes the arguments of :class:`~easyssl.transforms.SimCLRViewTransform`; only the
    defaults differ (:data:`MOCO_V2_VIEW`).

    Example:
        >>> query_view, key_view = MoCoV2Transform(input_size=64)(pil_image)
    """

    def __init__(self, input_size: int = 224, **kwargs: Any) -> None:
        super().__init__(input_size, **{**MOCO_V2_VIEW, **kwargs})


# MoCo v3 (Chen et al., 2021) uses BYOL's asymmetric views: easyssl.transforms.byol.BYOLTransform.
