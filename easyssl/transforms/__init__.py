"""View transforms: random augmented views of each image for each SSL method, and the evaluation transform."""

from easyssl.transforms.base import IMAGENET_NORMALIZE, EvalTransform, MultiViewTransform, RandomSolarization, view_steps
from easyssl.transforms.batched import BatchMultiViewAugment, BatchViewAugment, batched_like
from easyssl.transforms.byol import (
    BarlowTwinsTransform,
    BYOLTransform,
    BYOLView1Transform,
    BYOLView2Transform,
    VICRegTransform,
)
from easyssl.transforms.dino import DINOTransform, MultiCropTransform, SwaVTransform
from easyssl.transforms.mae import MAETransform
from easyssl.transforms.moco import MoCoV2Transform
from easyssl.transforms.simclr import SimCLRTransform, SimCLRViewTransform

__all__ = [
    "IMAGENET_NORMALIZE",
    "BarlowTwinsTransform",
    "BatchMultiViewAugment",
    "BatchViewAugment",
    "BYOLTransform",
    "BYOLView1Transform",
    "BYOLView2Transform",
    "DINOTransform",
    "EvalTransform",
    "MAETransform",
    "MoCoV2Transform",
    "MultiCropTransform",
    "MultiViewTransform",
    "RandomSolarization",
    "SimCLRTransform",
    "SimCLRViewTransform",
    "SwaVTransform",
    "VICRegTransform",
    "batched_like",
    "view_steps",
]
