"""Backbones, heads and one model per SSL method."""

from easyssl.models.backbones import ResNet, available_backbones, backbone, register_backbone
from easyssl.models.base import SSLModel, TrainingProgress
from easyssl.models.heads import ProjectionHead, SimCLRProjectionHead
from easyssl.models.simclr import SimCLR

__all__ = [
    "ProjectionHead",
    "ResNet",
    "SSLModel",
    "SimCLR",
    "SimCLRProjectionHead",
    "TrainingProgress",
    "available_backbones",
    "backbone",
    "register_backbone",
]
