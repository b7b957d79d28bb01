"""Evaluating embeddings without training a classifier: the weighted kNN of self-supervised learning papers."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

# The classifier lives below the tools layer, where the trainer's live evaluation uses it too.
from easyssl.train.live_eval import knn_predict

__all__ = ["knn_accuracy", "knn_predict"]


def knn_accuracy(
    train_embeddings: np.ndarray | torch.Tensor,
    train_labels: Sequence[int] | np.ndarray | torch.Tensor,
    test_embeddings: np.ndarray | torch.Tensor,
    test_labels: Sequence[int] | np.ndarray | torch.Tensor,
    k: int = 200,
    temperature: float = 0.1,
) -> float:
    """Top-1 accuracy of the weighted kNN classifier (:func:`knn_predict`) on the test set.

    Example:
        >>> train_emb, train_labels, _ = embed_images("data/train", checkpoint)
        >>> test_emb, test_labels, _ = embed_images("data/test", checkpoint)
        >>> knn_accuracy(train_emb, train_labels, test_emb, test_labels, k=200)
        0.87
    """
    truth = np.asarray(test_labels, dtype=np.int64)
    predicted = knn_predict(train_embeddings, train_labels, test_embeddings, k=k, temperature=temperature,
                            num_classes=int(max(np.max(np.asarray(train_labels)), truth.max(initial=0))) + 1)
    if truth.shape[0] != predicted.shape[0]:
        raise ValueError(f"got {predicted.shape[0]} test embeddings but {truth.shape[0]} test labels")
    return float((predicted == truth).mean()) if truth.size else float("nan")
