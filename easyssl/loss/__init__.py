"""Self-supervised losses, one per file. Each is an ``nn.Module`` usable in any PyTorch loop."""

from easyssl.loss.barlow_twins import BarlowTwinsLoss
from easyssl.loss.decorrelation import CorrelationPenalty
from easyssl.loss.dcl import DCLLoss, DCLWLoss, negative_mises_fisher_weights
from easyssl.loss.dino import DINOLoss
from easyssl.loss.mae import MAELoss
from easyssl.loss.memory_bank import MemoryBank
from easyssl.loss.mocov3 import MoCoV3Loss
from easyssl.loss.negative_cosine import NegativeCosineSimilarity
from easyssl.loss.ntx_ent import NTXentLoss
from easyssl.loss.swav import SwaVLoss, sinkhorn
from easyssl.loss.vicreg import VICRegLoss

__all__ = [
    "BarlowTwinsLoss",
    "CorrelationPenalty",
    "DCLLoss",
    "DCLWLoss",
    "DINOLoss",
    "MAELoss",
    "MemoryBank",
    "MoCoV3Loss",
    "NTXentLoss",
    "NegativeCosineSimilarity",
    "SwaVLoss",
    "VICRegLoss",
    "negative_mises_fisher_weights",
    "sinkhorn",
]
