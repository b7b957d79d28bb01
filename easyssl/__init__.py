"""easyssl: self-supervised learning for computer vision.

Learn an embedding model from a folder of unlabeled images, then turn images into vectors::

    from easyssl import train_embedding_model, embed_images
    checkpoint = train_embedding_model(input_dir="my/images/", trainer={"max_epochs": 10})
    embeddings, labels, filenames = embed_images(input_dir="my/images/", checkpoint=checkpoint)
"""

from easyssl.version import __version__
from easyssl.runtime import mps_env as _mps_env  # noqa: F401  before torch loads: Apple GPUs' CPU fallback (see the module)

from easyssl.api import (
    StreamedEmbeddings,
    build_training,
    default_config,
    embed_images,
    last_skipped_files,
    load_model,
    stream_embeddings,
    train_embedding_model,
    train_model_and_embed_images,
)
from easyssl.runtime import distributed
from easyssl.runtime.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from easyssl.data import MultiViewCollate, SSLDataset, VideoDataset, make_demo_dataset, open_dataset
from easyssl.train import SelfSupervisedEmbedding, calibrate_embeddings, fit_whitening
from easyssl import embedding  # noqa: F401  (the facade module stays an attribute, as before)
from easyssl.inference import EmbeddingStreamWriter, load_embeddings, save_embeddings
from easyssl.methods import Method, available_methods, get_method, register_method
from easyssl.models import BYOL, DINO, MAE, NNCLR, BarlowTwins, MoCo, MoCoV3, SimCLR, SimSiam, SSLModel, SwaV, VICReg, backbone
from easyssl.transforms import (
    BYOLTransform,
    DINOTransform,
    EvalTransform,
    MAETransform,
    MoCoV2Transform,
    SimCLRTransform,
    SwaVTransform,
    VICRegTransform,
)
from easyssl.tools import (
    export_backbone,
    find_duplicate_images,
    find_duplicates,
    knn_accuracy,
    knn_predict,
    load_backbone,
    nearest_neighbors,
    pca_2d,
    plot_embeddings,
    plot_nearest_neighbors,
    select_diverse,
    select_for_labeling,
    torchvision_model,
    uncertainty_scores,
)

__all__ = [
    "__version__",
    "available_methods",
    "backbone",
    "BarlowTwins",
    "build_training",
    "BYOL",
    "BYOLTransform",
    "CheckpointError",
    "default_config",
    "distributed",
    "DINO",
    "DINOTransform",
    "embed_images",
    "EmbeddingStreamWriter",
    "EvalTransform",
    "export_backbone",
    "find_duplicate_images",
    "find_duplicates",
    "get_method",
    "knn_accuracy",
    "knn_predict",
    "last_skipped_files",
    "load_backbone",
    "load_checkpoint",
    "load_embeddings",
    "load_model",
    "MAE",
    "MAETransform",
    "make_demo_dataset",
    "Method",
    "MoCo",
    "MoCoV2Transform",
    "MoCoV3",
    "MultiViewCollate",
    "nearest_neighbors",
    "NNCLR",
    "open_dataset",
    "pca_2d",
    "plot_embeddings",
    "plot_nearest_neighbors",
    "register_method",
    "save_checkpoint",
    "save_embeddings",
    "select_diverse",
    "select_for_labeling",
    "SelfSupervisedEmbedding",
    "calibrate_embeddings",
    "fit_whitening",
    "SimCLR",
    "SimCLRTransform",
    "SimSiam",
    "SSLDataset",
    "SSLModel",
    "stream_embeddings",
    "StreamedEmbeddings",
    "SwaV",
    "SwaVTransform",
    "torchvision_model",
    "train_embedding_model",
    "train_model_and_embed_images",
    "uncertainty_scores",
    "VICReg",
    "VICRegTransform",
    "VideoDataset",
]
