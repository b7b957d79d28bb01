"""Network building blocks: backbones (ResNets, ViTs), heads by role, the momentum-encoder helper, the SSL model base.

* :mod:`easyssl.nn.backbones`: ``backbone(name)``, the registry, ResNets, ``SMALL_INPUT_MAX_SIZE``;
* :mod:`easyssl.nn.vit`: Vision Transformers (in the registry from the start);
* :mod:`easyssl.nn.external`: any ``nn.Module``, ``"timm/<name>"``, ``"torchvision/<name>"`` as backbones;
  :mod:`easyssl.nn.features`: :func:`feature_dim`, the feature size by a dry forward;
  :mod:`easyssl.nn.weights`: starting a backbone from a weights file or cached torchvision weights;
* :mod:`easyssl.nn.mlp`, :mod:`~easyssl.nn.projection_heads`, :mod:`~easyssl.nn.prediction_heads`,
  :mod:`~easyssl.nn.prototypes`: heads by role;
* :mod:`easyssl.nn.momentum`: momentum (EMA) encoders, :class:`MomentumSSLModel`;
* :mod:`easyssl.nn.base`: :class:`SSLModel`, :class:`TrainingProgress`;
* :mod:`easyssl.nn.multicrop`, :mod:`easyssl.nn.support_set`: helpers of the multi-crop methods and NNCLR.
"""

from easyssl.nn.backbones import (
    BACKBONES,
    RESNETS,
    SMALL_INPUT_MAX_SIZE,
    ResNet,
    available_backbones,
    backbone,
    register_backbone,
    register_vit_backbones,
)
from easyssl.nn.base import SSLModel, TrainingProgress
from easyssl.nn.embedding_views import IMAGE_ONLY, check_embedding_views, embedding_view, views_cost
from easyssl.nn.features import feature_dim, pool_features
from easyssl.nn.mlp import ProjectionHead, layer_dims, mlp_blocks
from easyssl.nn.momentum import (
    MomentumSSLModel,
    activate_requires_grad,
    cosine_schedule,
    deactivate_requires_grad,
    momentum_at,
    momentum_copy,
    update_momentum,
)
from easyssl.nn.multicrop import forward_grouped, frozen_at
from easyssl.nn.prediction_heads import BYOLPredictionHead, MoCoV3PredictionHead, NNCLRPredictionHead, RotationPredictionHead, SimSiamPredictionHead
from easyssl.nn.projection_heads import (
    BarlowTwinsProjectionHead,
    BYOLProjectionHead,
    DINOProjectionHead,
    MoCoProjectionHead,
    NNCLRProjectionHead,
    SimCLRProjectionHead,
    SimSiamProjectionHead,
    SwaVProjectionHead,
    VICRegProjectionHead,
)
from easyssl.nn.prototypes import SwaVPrototypes, frozen_parameter
from easyssl.nn.support_set import NNMemoryBankModule
from easyssl.nn.vit import ViT, is_vit, sincos_position_embedding, small_patch_size

__all__ = [
    "IMAGE_ONLY",
    "check_embedding_views",
    "embedding_view",
    "views_cost",
    "activate_requires_grad",
    "available_backbones",
    "BACKBONES",
    "backbone",
    "BarlowTwinsProjectionHead",
    "BYOLPredictionHead",
    "BYOLProjectionHead",
    "cosine_schedule",
    "deactivate_requires_grad",
    "DINOProjectionHead",
    "feature_dim",
    "forward_grouped",
    "frozen_at",
    "frozen_parameter",
    "is_vit",
    "layer_dims",
    "mlp_blocks",
    "MoCoProjectionHead",
    "MoCoV3PredictionHead",
    "momentum_at",
    "momentum_copy",
    "MomentumSSLModel",
    "NNCLRPredictionHead",
    "NNCLRProjectionHead",
    "NNMemoryBankModule",
    "pool_features",
    "ProjectionHead",
    "register_backbone",
    "register_vit_backbones",
    "RESNETS",
    "ResNet",
    "RotationPredictionHead",
    "SimCLRProjectionHead",
    "SimSiamPredictionHead",
    "SimSiamProjectionHead",
    "sincos_position_embedding",
    "SMALL_INPUT_MAX_SIZE",
    "small_patch_size",
    "SSLModel",
    "SwaVProjectionHead",
    "SwaVPrototypes",
    "TrainingProgress",
    "update_momentum",
    "VICRegProjectionHead",
    "ViT",
]
