"""View transforms: random augmented views of each image for each SSL method, and the evaluation transform.

Per-image transforms (one module per view family) and their batched twins
(:mod:`easyssl.transforms.batched`), paired in :data:`easyssl.transforms.twins.BATCHED_TWINS`.
Each family's paper defaults are written once, as a preset dict next to its transform class
(:data:`~easyssl.transforms.simclr.SIMCLR_VIEW`, :data:`~easyssl.transforms.byol.BYOL_VIEWS`...).
"""

from easyssl.transforms.base import GEOMETRY, IMAGENET_NORMALIZE, EvalTransform, MultiViewTransform, RandomSolarization, view_steps
from easyssl.transforms.batched import BatchMultiViewAugment, BatchViewAugment
from easyssl.transforms.byol import (
    BarlowTwinsTransform,
    BYOL_VIEWS,
    BYOLTransform,
    BYOLView1Transform,
    BYOLView2Transform,
    VICRegTransform,
)
from easyssl.transforms.dino import DINO_VIEWS, SWAV_VIEWS, DINOTransform, MultiCropTransform, SwaVTransform
from easyssl.transforms.mae import MAE_VIEW, MAETransform
from easyssl.transforms.moco import MOCO_V2_VIEW, MoCoV2Transform
from easyssl.transforms.rotation import NUM_TURNS, quarter_turn, random_quarter_turns
from easyssl.transforms.simclr import SIMCLR_VIEW, SimCLRTransform, SimCLRViewTransform
from easyssl.transforms.size_schedule import FinalSizeViews
from easyssl.transforms.twins import BATCHED_TWINS, batched_like

__all__ = [
    "BYOL_VIEWS",
    "DINO_VIEWS",
    "GEOMETRY",
    "MAE_VIEW",
    "MOCO_V2_VIEW",
    "NUM_TURNS",
    "SIMCLR_VIEW",
    "SWAV_VIEWS",
    "IMAGENET_NORMALIZE",
    "BATCHED_TWINS",
    "BarlowTwinsTransform",
    "BatchMultiViewAugment",
    "BatchViewAugment",
    "BYOLTransform",
    "BYOLView1Transform",
    "BYOLView2Transform",
    "DINOTransform",
    "EvalTransform",
    "FinalSizeViews",
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
    "quarter_turn",
    "random_quarter_turns",
    "view_steps",
]
