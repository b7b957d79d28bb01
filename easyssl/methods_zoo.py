"""The built-in SSL methods beyond SimCLR, registered with their papers' defaults (scaled for small setups).

Imported by :func:`easyssl.methods.available_methods` / :func:`~easyssl.methods.get_method`;
importing it also registers the ViT backbones (``vit-tiny``, ``vit-small``, ``vit-b-16``...).

Each method's ``model_defaults``, ``criterion_defaults``, ``collate_defaults`` and
``optimizer_defaults`` become the ``model``, ``criterion``, ``collate`` and ``optimizer``
sections of ``train_embedding_model``'s config; see ``easyssl.default_config("byol")``.

Optimisers: the papers train with batches of 1024-4096 (LARS, or AdamW for ViTs). easyssl
defaults to what trains at the batch sizes of a single machine (64-256): SGD with momentum,
``base_lr`` 0.05-0.06 per 256 images and weight decay 5e-4 for most ResNet methods (the
settings of LightlySSL's CIFAR-10 benchmarks); LARS with the papers' ``base_lr`` 0.2 for
Barlow Twins and VICReg, whose losses are sums over thousands of dimensions (with plain SGD
Barlow Twins' loss stalls and VICReg's diverges); AdamW for DINO and MAE. For a ViT backbone
with the other methods, pass ``optimizer={"name": "adamw", "base_lr": 1.5e-4, "weight_decay": 0.1}``.

Small datasets: MoCo's queue (``criterion={"memory_bank_size": 4096}``) should be well below
the number of images, or it fills with stale copies of the positives; lower it for a few
hundred images.

DINO's teacher temperature defaults to the reference code's constant 0.04 (a warmer teacher
risks collapse in short runs); the paper's 0.04 -> 0.07 warm-up over 30 epochs is
``criterion={"teacher_temp": 0.07}``, compressed into the first 30% of shorter runs (see
:class:`easyssl.models.dino.DINO`). Early in training DINO's loss sits near
``log(output_dim)`` while the teacher is still uniform; LightlySSL's implementation behaves the same.
"""

from __future__ import annotations

from easyssl.loss import BarlowTwinsLoss, DINOLoss, NegativeCosineSimilarity, NTXentLoss, SwaVLoss, VICRegLoss
from easyssl.methods import Method, register_method
from easyssl.models.barlowtwins import BarlowTwins
from easyssl.models.byol import BYOL
from easyssl.models.dino import DINO
from easyssl.models.mae import MAE, MAELoss
from easyssl.models.moco import MoCo, MoCoV3, MoCoV3Loss
from easyssl.models.nnclr import NNCLR
from easyssl.models.simsiam import SimSiam
from easyssl.models.swav import SwaV
from easyssl.models.vicreg import VICReg
from easyssl.models.vit import register_vit_backbones
from easyssl.transforms.byol import BYOLTransform
from easyssl.transforms.dino import DINOTransform, SwaVTransform
from easyssl.transforms.mae import MAETransform
from easyssl.transforms.moco import MoCoV2Transform
from easyssl.transforms.simclr import SimCLRTransform

register_vit_backbones()

#: Extra view-transform arguments shared by every crop-based transform.
_GEOMETRY = dict(kernel_size=None, sigmas=(0.1, 2.0), vf_prob=0.0, hf_prob=0.5, rr_prob=0.0, rr_degrees=None)

#: BYOL's asymmetric views (also Barlow Twins', VICReg's, NNCLR's and MoCo v3's).
_BYOL_VIEWS = dict(
    gaussian_blur=(1.0, 0.1), solarization_prob=(0.0, 0.2), min_scale=0.08, max_scale=1.0,
    cj_prob=0.8, cj_strength=1.0, cj_bright=0.4, cj_contrast=0.4, cj_sat=0.2, cj_hue=0.1, random_gray_scale=0.2, **_GEOMETRY,
)

#: MoCo v2's (and SimSiam's) views: SimCLR's pipeline, crops from 20% of the image, milder jitter.
_MOCO_VIEWS = dict(
    cj_prob=0.8, cj_strength=1.0, cj_bright=0.4, cj_contrast=0.4, cj_sat=0.4, cj_hue=0.1, min_scale=0.2,
    random_gray_scale=0.2, gaussian_blur=0.5, **_GEOMETRY,
)

_SGD = {"name": "sgd", "base_lr": 0.06, "weight_decay": 5e-4, "momentum": 0.9, "warmup": 0.02}

_METHODS = [
    Method(
        name="moco",
        model=MoCo,
        criterion=NTXentLoss,
        transform=MoCoV2Transform,
        model_defaults={"hidden_dim": None, "out_dim": 128, "num_layers": 2, "momentum": 0.996, "momentum_end": 1.0},
        criterion_defaults={"temperature": 0.2, "memory_bank_size": 4096},
        collate_defaults=dict(_MOCO_VIEWS),
        optimizer_defaults=dict(_SGD),
        description="MoCo v2 (Chen et al. 2020): contrast queries with a momentum encoder's keys and a queue of past keys",
    ),
    Method(
        name="mocov3",
        model=MoCoV3,
        criterion=MoCoV3Loss,
        transform=BYOLTransform,
        model_defaults={"hidden_dim": None, "out_dim": 256, "pred_hidden_dim": None, "momentum": 0.99, "momentum_end": 1.0},
        criterion_defaults={"temperature": 0.2},
        collate_defaults=dict(_BYOL_VIEWS),
        optimizer_defaults=dict(_SGD),
        description="MoCo v3 (Chen, Xie & He 2021): symmetric in-batch contrast of predictions with momentum keys; ResNets and ViTs",
    ),
    Method(
        name="byol",
        model=BYOL,
        criterion=NegativeCosineSimilarity,
        transform=BYOLTransform,
        model_defaults={"hidden_dim": None, "out_dim": 256, "pred_hidden_dim": None, "momentum": 0.99, "momentum_end": 1.0},
        criterion_defaults={},
        collate_defaults=dict(_BYOL_VIEWS),
        optimizer_defaults=dict(_SGD),
        description="BYOL (Grill et al. 2020): an online network predicts a momentum target network's projection",
    ),
    Method(
        name="simsiam",
        model=SimSiam,
        criterion=NegativeCosineSimilarity,
        transform=SimCLRTransform,
        model_defaults={"hidden_dim": 2048, "out_dim": 2048, "pred_hidden_dim": 512, "num_layers": 3},
        criterion_defaults={},
        collate_defaults=dict(_MOCO_VIEWS),
        optimizer_defaults={**_SGD, "base_lr": 0.05},
        description="SimSiam (Chen & He 2021): Siamese prediction with a stop-gradient, no negatives, no momentum encoder",
    ),
    Method(
        name="barlowtwins",
        model=BarlowTwins,
        criterion=BarlowTwinsLoss,
        transform=BYOLTransform,
        model_defaults={"hidden_dim": 2048, "out_dim": 2048},
        criterion_defaults={"lambda_param": 5e-3},
        collate_defaults=dict(_BYOL_VIEWS),
        optimizer_defaults={"name": "lars", "base_lr": 0.2, "weight_decay": 1.5e-6, "momentum": 0.9, "warmup": 0.02},
        description="Barlow Twins (Zbontar et al. 2021): drive the two views' cross-correlation matrix to the identity",
    ),
    Method(
        name="vicreg",
        model=VICReg,
        criterion=VICRegLoss,
        transform=BYOLTransform,
        model_defaults={"hidden_dim": 2048, "out_dim": 2048},
        criterion_defaults={"lambda_param": 25.0, "mu_param": 25.0, "nu_param": 1.0},
        collate_defaults=dict(_BYOL_VIEWS),
        optimizer_defaults={"name": "lars", "base_lr": 0.2, "weight_decay": 1e-6, "momentum": 0.9, "warmup": 0.02},
        description="VICReg (Bardes et al. 2022): variance, invariance and covariance terms on the two views' embeddings",
    ),
    Method(
        name="dino",
        model=DINO,
        criterion=DINOLoss,
        transform=DINOTransform,
        model_defaults={
            "hidden_dim": 2048, "bottleneck_dim": 256, "output_dim": 2048, "batch_norm": False, "norm_last_layer": True,
            "momentum": 0.996, "momentum_end": 1.0, "freeze_last_layer": 0.01, "teacher_temp_warmup": 0.3, "n_global_views": 2,
        },
        criterion_defaults={
            "output_dim": 2048, "warmup_teacher_temp": 0.04, "teacher_temp": 0.04, "warmup_teacher_temp_epochs": 30,
            "student_temp": 0.1, "center_momentum": 0.9,
        },
        collate_defaults=dict(
            global_crop_scale=(0.4, 1.0), local_size=None, local_crop_scale=(0.05, 0.4), n_local_views=6,
            gaussian_blur=(1.0, 0.1, 0.5), solarization_prob=(0.0, 0.2, 0.0), cj_prob=0.8, cj_strength=1.0, cj_bright=0.4,
            cj_contrast=0.4, cj_sat=0.2, cj_hue=0.1, random_gray_scale=0.2, **_GEOMETRY,
        ),
        optimizer_defaults={"name": "adamw", "base_lr": 5e-4, "weight_decay": 0.04, "momentum": 0.9, "warmup": 0.1},
        description="DINO (Caron et al. 2021): self-distillation from a momentum teacher on global and local crops",
    ),
    Method(
        name="swav",
        model=SwaV,
        criterion=SwaVLoss,
        transform=SwaVTransform,
        model_defaults={
            "hidden_dim": 2048, "out_dim": 128, "n_prototypes": 512, "queue_length": 0, "n_high_res_views": 2, "freeze_prototypes": 0.05,
        },
        criterion_defaults={"temperature": 0.1, "sinkhorn_iterations": 3, "sinkhorn_epsilon": 0.05},
        collate_defaults=dict(
            global_crop_scale=(0.14, 1.0), local_size=None, local_crop_scale=(0.05, 0.14), n_local_views=6, gaussian_blur=0.5,
            solarization_prob=0.0, cj_prob=0.8, cj_strength=1.0, cj_bright=0.8, cj_contrast=0.8, cj_sat=0.8, cj_hue=0.2,
            random_gray_scale=0.2, **_GEOMETRY,
        ),
        optimizer_defaults=dict(_SGD),
        description="SwaV (Caron et al. 2020): swapped prediction of online Sinkhorn cluster codes over multi-crop views",
    ),
    Method(
        name="nnclr",
        model=NNCLR,
        criterion=NTXentLoss,
        transform=BYOLTransform,
        model_defaults={"hidden_dim": 2048, "out_dim": 256, "pred_hidden_dim": 2048, "support_set_size": 4096},
        criterion_defaults={"temperature": 0.1, "memory_bank_size": 0},
        collate_defaults=dict(_BYOL_VIEWS),
        optimizer_defaults=dict(_SGD),
        description="NNCLR (Dwibedi et al. 2021): contrast predictions with nearest neighbours from a support set",
    ),
    Method(
        name="mae",
        model=MAE,
        criterion=MAELoss,
        transform=MAETransform,
        model_defaults={
            "backbone": "vit-tiny", "decoder_dim": 128, "decoder_depth": 2, "decoder_heads": 4, "mask_ratio": 0.75, "embed_pooling": "mean",
        },
        criterion_defaults={"norm_pix_loss": True},
        collate_defaults={"min_scale": 0.2, "hf_prob": 0.5},
        optimizer_defaults={"name": "adamw", "base_lr": 1.5e-4, "weight_decay": 0.05, "momentum": 0.9, "warmup": 0.05},
        description="MAE (He et al. 2022): reconstruct the pixels of masked patches with a ViT encoder and a light decoder",
    ),
]

for _method in _METHODS:
    register_method(_method)

__all__ = [m.name for m in _METHODS]
