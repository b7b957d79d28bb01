"""Backbones, heads and one model per SSL method."""

from easyssl.models.backbones import ResNet, available_backbones, backbone, register_backbone
from easyssl.models.base import SSLModel, TrainingProgress
from easyssl.models.heads import ProjectionHead, SimCLRProjectionHead
from easyssl.models.simclr import SimCLR
from easyssl.models.barlowtwins import BarlowTwins
from easyssl.models.byol import BYOL
from easyssl.models.dino import DINO
from easyssl.models.mae import MAE, MAELoss
from easyssl.models.method_heads import (
    BarlowTwinsProjectionHead,
    BYOLPredictionHead,
    BYOLProjectionHead,
    DINOProjectionHead,
    MoCoProjectionHead,
    MoCoV3PredictionHead,
    NNCLRPredictionHead,
    NNCLRProjectionHead,
    SimSiamPredictionHead,
    SimSiamProjectionHead,
    SwaVProjectionHead,
    SwaVPrototypes,
    VICRegProjectionHead,
)
from easyssl.models.moco import MoCo, MoCoV3, MoCoV3Loss
from easyssl.models.momentum import activate_requires_grad, deactivate_requires_grad, momentum_at, momentum_copy, update_momentum
from easyssl.models.nnclr import NNCLR, NNMemoryBankModule
from easyssl.models.simsiam import SimSiam
from easyssl.models.swav import SwaV
from easyssl.models.vicreg import VICReg
from easyssl.models.vit import ViT, register_vit_backbones

register_vit_backbones()

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
