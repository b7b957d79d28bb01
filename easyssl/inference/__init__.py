"""Inference: rebuild a trained model, embed images with it, and write or read embeddings.

Above :mod:`easyssl.config` in the layer picture (docs/ARCHITECTURE.md); :mod:`easyssl.train`
uses its embedding loop for the whitening pass.
"""

from easyssl.inference.embedder import Embedder
from easyssl.inference.embeddings_io import embeddings_training_steps, load_embeddings, save_embeddings
from easyssl.inference.loop import embed_with, iter_embeddings
from easyssl.inference.model import load_model
from easyssl.inference.streaming import EmbeddingStreamWriter

__all__ = ["Embedder", "EmbeddingStreamWriter", "embed_with", "embeddings_training_steps", "iter_embeddings", "load_embeddings", "load_model", "save_embeddings"]
