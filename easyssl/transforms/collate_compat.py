"""LightlySSL's named collate functions (``ImageCollateFunction``, ``SimCLRCollateFunction``, ``MoCoCollateFunction``).

Each is a :class:`~easyssl.data.lightly_compat.BaseCollateFunction` (two views of every image
of the batch) whose view is easyssl's one view builder, :func:`~easyssl.transforms.base.view_steps`,
with LightlySSL's arguments and LightlySSL's defaults (which differ from easyssl's presets:
``ImageCollateFunction`` jitters at 0.7 and crops from 15% of the image). They are here, not in
:mod:`easyssl.data`, because they are made of view transforms; ``import easyssl.data as data;
data.ImageCollateFunction`` finds them through ``easyssl.data``'s module ``__getattr__``.
"""

from __future__ import annotations

from typing import Any, Sequence

from easyssl.data.lightly_compat import BaseCollateFunction
from easyssl.transforms.base import IMAGENET_NORMALIZE, view_steps

__all__ = ["ImageCollateFunction", "MoCoCollateFunction", "SimCLRCollateFunction"]


def _kernel(kernel_size: float | int | None, input_size: int) -> int | None:
    """LightlySSL's ``kernel_size`` is a fraction of the image side (0.1); easyssl's an odd number of pixels."""
    if kernel_size is None:
        return None
    pixels = float(kernel_size) * input_size if float(kernel_size) < 1 else float(kernel_size)
    return max(3, int(pixels) // 2 * 2 + 1)


class ImageCollateFunction(BaseCollateFunction):
    """Two random views of each image (crop, flips, rotation, colour jitter, grayscale, blur), LightlySSL's defaults.

    Args: as LightlySSL's ``ImageCollateFunction``: ``input_size`` (64), ``cj_prob`` (0.8),
    ``cj_bright``/``cj_contrast``/``cj_sat`` (0.7), ``cj_hue`` (0.2), ``min_scale`` (0.15),
    ``random_gray_scale`` (0.2), ``gaussian_blur`` (0.5), ``kernel_size`` (None; a fraction of the
    side, as LightlySSL's), ``sigmas`` ((0.2, 2)), ``vf_prob`` (0), ``hf_prob`` (0.5), ``rr_prob``
    (0), ``rr_degrees`` (None: right angles), ``normalize`` (ImageNet's; None for none).

    Example:
        >>> loader = DataLoader(LightlyDataset(input_dir="imgs/"), batch_size=128, shuffle=True,
        ...                     collate_fn=ImageCollateFunction(input_size=32, cj_prob=0.5))
        >>> (x0, x1), targets, filenames = next(iter(loader))
    """

    def __init__(
        self,
        input_size: int = 64,
        cj_prob: float = 0.8,
        cj_bright: float = 0.7,
        cj_contrast: float = 0.7,
        cj_sat: float = 0.7,
        cj_hue: float = 0.2,
        min_scale: float = 0.15,
        random_gray_scale: float = 0.2,
        gaussian_blur: float = 0.5,
        kernel_size: float | None = None,
        sigmas: Sequence[float] = (0.2, 2.0),
        vf_prob: float = 0.0,
        hf_prob: float = 0.5,
        rr_prob: float = 0.0,
        rr_degrees: Any = None,
        normalize: dict | None = IMAGENET_NORMALIZE,
    ) -> None:
        size = max(input_size) if isinstance(input_size, (tuple, list)) else int(input_size)
        transform = view_steps(
            size, min_scale=min_scale, cj_prob=cj_prob, cj_strength=1.0, cj_bright=cj_bright, cj_contrast=cj_contrast,
            cj_sat=cj_sat, cj_hue=cj_hue, random_gray_scale=random_gray_scale, gaussian_blur=gaussian_blur,
            kernel_size=_kernel(kernel_size, size), sigmas=tuple(sigmas), vf_prob=vf_prob, hf_prob=hf_prob,
            rr_prob=rr_prob, rr_degrees=rr_degrees, normalize=normalize or None,
        )
        super().__init__(transform)
        self.input_size = size
        self.normalize = normalize or None


class SimCLRCollateFunction(ImageCollateFunction):
    """SimCLR's views as LightlySSL's ``SimCLRCollateFunction``: ``input_size`` 224, jitter ``cj_strength`` 0.5
    (brightness, contrast, saturation ``0.8 * cj_strength``, hue ``0.2 * cj_strength``), crops from 8%."""

    def __init__(
        self,
        input_size: int = 224,
        cj_prob: float = 0.8,
        cj_strength: float = 0.5,
        min_scale: float = 0.08,
        random_gray_scale: float = 0.2,
        gaussian_blur: float = 0.5,
        kernel_size: float | None = None,
        sigmas: Sequence[float] = (0.2, 2.0),
        vf_prob: float = 0.0,
        hf_prob: float = 0.5,
        rr_prob: float = 0.0,
        rr_degrees: Any = None,
        normalize: dict | None = IMAGENET_NORMALIZE,
    ) -> None:
        super().__init__(
            input_size=input_size, cj_prob=cj_prob, cj_bright=cj_strength * 0.8, cj_contrast=cj_strength * 0.8,
            cj_sat=cj_strength * 0.8, cj_hue=cj_strength * 0.2, min_scale=min_scale, random_gray_scale=random_gray_scale,
            gaussian_blur=gaussian_blur, kernel_size=kernel_size, sigmas=sigmas, vf_prob=vf_prob, hf_prob=hf_prob,
            rr_prob=rr_prob, rr_degrees=rr_degrees, normalize=normalize,
        )


class MoCoCollateFunction(ImageCollateFunction):
    """MoCo v1's views as LightlySSL's ``MoCoCollateFunction``: ``input_size`` 224, every jitter ``cj_strength`` 0.4,
    crops from 20%, no blur (for MoCo v2, use :class:`SimCLRCollateFunction`)."""

    def __init__(
        self,
        input_size: int = 224,
        cj_prob: float = 0.8,
        cj_strength: float = 0.4,
        min_scale: float = 0.2,
        random_gray_scale: float = 0.2,
        gaussian_blur: float = 0.0,
        kernel_size: float | None = None,
        sigmas: Sequence[float] = (0.2, 2.0),
        vf_prob: float = 0.0,
        hf_prob: float = 0.5,
        rr_prob: float = 0.0,
        rr_degrees: Any = None,
        normalize: dict | None = IMAGENET_NORMALIZE,
    ) -> None:
        super().__init__(
            input_size=input_size, cj_prob=cj_prob, cj_bright=cj_strength, cj_contrast=cj_strength, cj_sat=cj_strength,
            cj_hue=cj_strength, min_scale=min_scale, random_gray_scale=random_gray_scale, gaussian_blur=gaussian_blur,
            kernel_size=kernel_size, sigmas=sigmas, vf_prob=vf_prob, hf_prob=hf_prob, rr_prob=rr_prob,
            rr_degrees=rr_degrees, normalize=normalize,
        )
