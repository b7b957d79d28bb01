"""Backbones, heads and one model per SSL method: a facade for users (``from easyssl.models import SimCLR``).

The code lives in :mod:`easyssl.nn` (backbones, ViTs, heads, momentum encoders, the model base
class) and :mod:`easyssl.methods` (one module per method, its model included); the losses
:class:`MoCoV3Loss` and :class:`MAELoss` in :mod:`easyssl.loss`.
"""

from easyssl.loss import MAELoss, MoCoV3Loss
from easyssl.methods.barlowtwins import BarlowTwins
from easyssl.methods.byol import BYOL
from easyssl.methods.dino import DINO
from easyssl.methods.mae import MAE
from easyssl.methods.moco import MoCo
from easyssl.methods.mocov3 import MoCoV3
from easyssl.methods.nnclr import NNCLR
from easyssl.methods.simclr import SimCLR
from easyssl.methods.simsiam import SimSiam
from easyssl.methods.swav import SwaV
from easyssl.methods.vicreg import VICReg
from easyssl.nn import (
    BarlowTwinsProjectionHead,
    BYOLPredictionHead,
    BYOLProjectionHead,
    DINOProjectionHead,
    MoCoProjectionHead,
    MoCoV3PredictionHead,
    NNCLRPredictionHead,
    NNCLRProjectionHead,
    NNMemoryBankModule,
    ProjectionHead,
    ResNet,
    SimCLRProjectionHead,
    SimSiamPredictionHead,
    SimSiamProjectionHead,
    SSLModel,
    SwaVProjectionHead,
    SwaVPrototypes,
    TrainingProgress,
    VICRegProjectionHead,
    ViT,
    activate_requires_grad,
    available_backbones,
    backbone,
    deactivate_requires_grad,
    momentum_at,
    momentum_copy,
    register_backbone,
    register_vit_backbones,
    update_momentum,
)

__all__ = [
    "activate_requires_grad",
    "available_backbones",
    "backbone",
    "BarlowTwins",
    "BarlowTwinsProjectionHead",
    "BYOL",
    "BYOLPredictionHead",
    "BYOLProjectionHead",
    "deactivate_requires_grad",
    "DINO",
    "DINOProjectionHead",
    "MAE",
    "MAELoss",
    "MoCo",
    "MoCoProjectionHead",
    "MoCoV3",
    "MoCoV3Loss",
    "MoCoV3PredictionHead",
    "momentum_at",
    "momentum_copy",
    "NNCLR",
    "NNCLRPredictionHead",
    "NNCLRProjectionHead",
    "NNMemoryBankModule",
    "ProjectionHead",
    "register_backbone",
    "register_vit_backbones",
    "ResNet",
    "SimCLR",
    "SimCLRProjectionHead",
    "SimSiam",
    "SimSiamPredictionHead",
    "SimSiamProjectionHead",
    "SSLModel",
    "SwaV",
    "SwaVProjectionHead",
    "SwaVPrototypes",
    "TrainingProgress",
    "update_momentum",
    "VICReg",
    "VICRegProjectionHead",
    "ViT",
]
