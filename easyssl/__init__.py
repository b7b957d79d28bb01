"""easyssl: self-supervised learning for computer vision.

Learn an embedding model from a folder of unlabeled images, then turn images into vectors::

    from easyssl import train_embedding_model, embed_images
    checkpoint = train_embedding_model(input_dir="my/images/", trainer={"max_epochs": 10})
    embeddings, labels, filenames = embed_images(input_dir="my/images/", checkpoint=checkpoint)
"""

__version__ = "0.1.0"

from easyssl.api import build_training, default_config, embed_images, load_model, train_embedding_model, train_model_and_embed_images
from easyssl.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from easyssl.data import MultiViewCollate, SSLDataset, make_demo_dataset
from easyssl.embedding import SelfSupervisedEmbedding
from easyssl.embeddings_io import load_embeddings, save_embeddings
from easyssl.evaluation import knn_accuracy, knn_predict
from easyssl.methods import Method, available_methods, get_method, register_method
from easyssl.models import SSLModel, backbone
from easyssl.transforms import EvalTransform, SimCLRTransform

__all__ = [
    "CheckpointError",
    "EvalTransform",
    "Method",
    "MultiViewCollate",
    "SSLDataset",
    "SSLModel",
    "SelfSupervisedEmbedding",
    "SimCLRTransform",
    "__version__",
    "available_methods",
    "backbone",
    "build_training",
    "default_config",
    "embed_images",
    "get_method",
    "knn_accuracy",
    "knn_predict",
    "load_checkpoint",
    "load_embeddings",
    "load_model",
    "make_demo_dataset",
    "register_method",
    "save_checkpoint",
    "save_embeddings",
    "train_embedding_model",
    "train_model_and_embed_images",
]
