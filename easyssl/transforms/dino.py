"""Multi-crop augmentations: DINO's (Caron et al., 2021) and SwaV's (Caron et al., 2020).

Each image gives a few large *global* crops at the training size and several small *local*
crops; the views come out as a list, global crops first. ``MultiViewCollate`` batches them
into one tensor per view (the sizes differ between global and local views).
"""

from __future__ import annotations

from typing import Any, Sequence

from easyssl.transforms.base import GEOMETRY, MultiViewTransform, view_steps

#: DINO's multi-crop views: 2 global crops (area 0.4-1) and 6 local ones (area 0.05-0.4); blur
#: 1.0 / 0.1 on the global crops and 0.5 on the local ones, solarization 0.2 on global crop 2;
#: colour jitter 0.4/0.4/0.2/0.1 (probability 0.8), grayscale 0.2. The defaults of :class:`DINOTransform`.
DINO_VIEWS: dict[str, Any] = dict(
    global_crop_scale=(0.4, 1.0), local_size=None, local_crop_scale=(0.05, 0.4), n_local_views=6,
    gaussian_blur=(1.0, 0.1, 0.5), solarization_prob=(0.0, 0.2, 0.0), cj_prob=0.8, cj_strength=1.0, cj_bright=0.4,
    cj_contrast=0.4, cj_sat=0.2, cj_hue=0.1, random_gray_scale=0.2, **GEOMETRY,
)

#: SwaV's multi-crop views: 2 high-resolution crops (area 0.14-1) and 6 low-resolution ones (area
#: 0.05-0.14), each with SimCLR's jitter 0.8/0.8/0.8/0.2 (probability 0.8), grayscale 0.2 and blur 0.5.
#: The defaults of :class:`SwaVTransform`.
SWAV_VIEWS: dict[str, Any] = dict(
    global_crop_scale=(0.14, 1.0), local_size=None, local_crop_scale=(0.05, 0.14), n_local_views=6, gaussian_blur=0.5,
    solarization_prob=0.0, cj_prob=0.8, cj_strength=1.0, cj_bright=0.8, cj_contrast=0.8, cj_sat=0.8, cj_hue=0.2,
    random_gray_scale=0.2, **GEOMETRY,
)


def default_local_size(input_size: int) -> int:
    """Side of the local crops: ``input_size * 96 / 224`` (the papers' 96 px at 224 px), rounded to a multiple
    of 8 px (so ViT patches of 4 or 8 px tile it), at least 16 px and at most ``input_size``."""
    size = int(round(input_size * 96 / 224 / 8)) * 8
    return max(1, min(input_size, max(16, size)))


class MultiCropTransform(MultiViewTransform):
    """``n_global_views`` crops at ``input_size`` then ``n_local_views`` crops at ``local_size``.

    Args:
        input_size: Side of the global crops (the training size).
        n_global_views: Number of global crops.
        global_crop_scale: ``(min, max)`` area of the global crops.
        local_size: Side of the local crops (default :func:`default_local_size`).
        n_local_views: Number of local crops.
        local_crop_scale: ``(min, max)`` area of the local crops.
        gaussian_blur: Blur probability of each global crop (a sequence, cycled) and of the
            local crops (the last value).
        solarization_prob: Solarization probability of each global crop (a sequence, cycled)
            and of the local crops (the last value).
        **kwargs: The other arguments of :func:`~easyssl.transforms.base.view_steps`
            (colour jitter, grayscale, flips, ``normalize``...).
    """

    def __init__(
        self,
        input_size: int = 224,
        n_global_views: int = 2,
        global_crop_scale: Sequence[float] = (0.4, 1.0),
        local_size: int | None = None,
        n_local_views: int = 6,
        local_crop_scale: Sequence[float] = (0.05, 0.4),
        gaussian_blur: float | Sequence[float] = 0.5,
        solarization_prob: float | Sequence[float] = 0.0,
        **kwargs: Any,
    ) -> None:
        if n_global_views < 1 or n_local_views < 0:
            raise ValueError(f"need n_global_views >= 1 and n_local_views >= 0, got {n_global_views} and {n_local_views}")
        blur = _as_list(gaussian_blur)
        solarize = _as_list(solarization_prob)
        local_size = int(local_size) if local_size else default_local_size(input_size)
        self.input_size = input_size
        self.local_size = local_size
        self.n_global_views = n_global_views
        self.n_local_views = n_local_views
        views = []
        for i in range(n_global_views):
            views.append(
                view_steps(input_size, min_scale=global_crop_scale[0], max_scale=global_crop_scale[1],
                           gaussian_blur=_pick(blur, i), solarization_prob=_pick(solarize, i), **kwargs)
            )
        for _ in range(n_local_views):
            views.append(
                view_steps(local_size, min_scale=local_crop_scale[0], max_scale=local_crop_scale[1],
                           gaussian_blur=blur[-1], solarization_prob=solarize[-1], **kwargs)
            )
        super().__init__(views)


def _as_list(value: float | Sequence[float]) -> list[float]:
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            raise ValueError("a probability sequence must not be empty")
        return [float(v) for v in value]
    return [float(value)]


def _pick(values: list[float], i: int) -> float:
    # global view i: values[i] when there is one per view (and one more for the local views)
    return values[min(i, len(values) - 1)] if len(values) > 1 else values[0]


class DINOTransform(MultiCropTransform):
    """DINO's multi-crop views: 2 global crops (area 0.4-1) and ``n_local_views`` local crops (area 0.05-0.4).

    Global crop 1 is always blurred; global crop 2 is blurred with probability 0.1 and
    solarized with probability 0.2; local crops are blurred with probability 0.5. Colour jitter
    0.4/0.4/0.2/0.1 (probability 0.8), grayscale 0.2, horizontal flip 0.5 (:data:`DINO_VIEWS`).
    Argument names follow LightlySSL's, with ``input_size`` the global crop size and ``local_size``
    the local one (default ``input_size * 96 / 224``, see :func:`default_local_size`); the other
    arguments are :class:`MultiCropTransform`'s.

    Example:
        >>> views = DINOTransform(input_size=64, n_local_views=6)(pil_image)
        >>> [v.shape[-1] for v in views]
        [64, 64, 24, 24, 24, 24, 24, 24]
    """

    def __init__(self, input_size: int = 224, **kwargs: Any) -> None:
        super().__init__(input_size, n_global_views=2, **{**DINO_VIEWS, **kwargs})


class SwaVTransform(MultiCropTransform):
    """SwaV's multi-crop views: 2 high-resolution crops (area 0.14-1) and ``n_local_views`` low-resolution
    crops (area 0.05-0.14), each with SimCLR's jitter (0.8/0.8/0.8/0.2, probability 0.8), grayscale 0.2
    and blur 0.5 (:data:`SWAV_VIEWS`); the other arguments are :class:`MultiCropTransform`'s.

    Example:
        >>> views = SwaVTransform(input_size=64)(pil_image)  # 2 x 64 px, then 6 x 24 px
    """

    def __init__(self, input_size: int = 224, **kwargs: Any) -> None:
        super().__init__(input_size, n_global_views=2, **{**SWAV_VIEWS, **kwargs})
