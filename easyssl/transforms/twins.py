"""Each per-image view transform and its batched twin, paired by one explicit table.

The per-image transforms (:mod:`easyssl.transforms.simclr`...) run in data-loading processes;
their batched twins (:mod:`easyssl.transforms.batched`) make the same kinds of views for a
whole ``uint8`` batch on the training device. :data:`BATCHED_TWINS` says, for every transform
class a method uses, which batched builder makes its views and with which defaults: the same
preset dict the transform class itself defaults to, so both paths start from the same values.
"""

from __future__ import annotations

from typing import Any, Callable

from easyssl.transforms.batched import BatchMultiViewAugment, batch_crop_flip_augment, batch_multi_crop_augment, batch_two_view_augment
from easyssl.transforms.byol import BYOL_VIEWS, BYOLTransform
from easyssl.transforms.dino import DINO_VIEWS, SWAV_VIEWS, DINOTransform, SwaVTransform
from easyssl.transforms.mae import MAE_VIEW, MAETransform
from easyssl.transforms.moco import MOCO_V2_VIEW, MoCoV2Transform
from easyssl.transforms.simclr import SIMCLR_VIEW, SimCLRTransform

#: ``transform class: (batched builder, the class's view defaults)``.
BATCHED_TWINS: dict[type, tuple[Callable[..., BatchMultiViewAugment], dict[str, Any]]] = {
    SimCLRTransform: (batch_two_view_augment, SIMCLR_VIEW),
    MoCoV2Transform: (batch_two_view_augment, MOCO_V2_VIEW),
    BYOLTransform: (batch_two_view_augment, BYOL_VIEWS),
    DINOTransform: (batch_multi_crop_augment, DINO_VIEWS),
    SwaVTransform: (batch_multi_crop_augment, SWAV_VIEWS),
    MAETransform: (batch_crop_flip_augment, MAE_VIEW),
}


def batched_like(transform: type) -> Callable[..., BatchMultiViewAugment]:
    """The batched counterpart of a per-image view transform class, with that class's defaults.

    The result is called with the method's collate config (``input_size``, ``normalize`` and the
    view arguments), like the class. Raises ``TypeError`` for a class missing from
    :data:`BATCHED_TWINS`.
    """
    try:
        builder, defaults = BATCHED_TWINS[transform]
    except (KeyError, TypeError):
        raise TypeError(f"no batched counterpart is known for {transform!r}") from None

    def factory(**config: Any) -> BatchMultiViewAugment:
        return builder(**{**defaults, **config})

    factory.__name__ = f"batched_{transform.__name__}"
    factory.__doc__ = f"Batched counterpart of :class:`{transform.__module__}.{transform.__name__}` (same arguments and defaults)."
    return factory
