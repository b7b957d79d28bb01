"""Evaluating embeddings without training a classifier: the weighted kNN of self-supervised learning papers."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def _as_tensor(x: np.ndarray | torch.Tensor | Sequence, dtype=torch.float32) -> torch.Tensor:
    return x.detach().to(dtype) if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=dtype)


def knn_predict(
    train_embeddings: np.ndarray | torch.Tensor,
    train_labels: Sequence[int] | np.ndarray | torch.Tensor,
    test_embeddings: np.ndarray | torch.Tensor,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> np.ndarray:
    """Predict test labels by a similarity-weighted vote of the ``k`` nearest training embeddings.

    The classifier of Wu et al. (2018), used to evaluate SSL in most papers: cosine
    similarity ``s`` to the ``k`` nearest training samples, each voting for its class with
    weight ``exp(s / temperature)``; the class with the largest total wins.

    Returns:
        ``(N_test,)`` int64 predictions.
    """
    train = F.normalize(_as_tensor(train_embeddings), dim=1)
    test = F.normalize(_as_tensor(test_embeddings), dim=1)
    labels = _as_tensor(train_labels, torch.long)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise ValueError(f"train and test embeddings must be (N, D) with the same D, got {tuple(train.shape)} and {tuple(test.shape)}")
    if labels.shape[0] != train.shape[0]:
        raise ValueError(f"got {train.shape[0]} train embeddings but {labels.shape[0]} train labels")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if labels.numel() and labels.min() < 0:
        raise ValueError("train labels must be >= 0 (label -1 marks images outside class folders)")
    k = min(k, train.shape[0])
    num_classes = int(num_classes or (int(labels.max()) + 1 if labels.numel() else 1))
    predictions = []
    for start in range(0, test.shape[0], chunk_size):
        sim = test[start : start + chunk_size] @ train.T
        top_sim, top_idx = sim.topk(k, dim=1)
        weights = (top_sim / temperature).exp()
        votes = torch.zeros(sim.shape[0], num_classes)
        votes.scatter_add_(1, labels[top_idx], weights)
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions).numpy() if predictions else np.zeros(0, dtype=np.int64)


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
