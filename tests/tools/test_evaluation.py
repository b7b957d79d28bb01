import math

import numpy as np
import pytest

from easyssl import knn_accuracy, knn_predict


def test_weighted_vote_by_hand():
    # Query q = (1, 0). Train: two class-0 points at cos 0.6, one class-1 point at cos 1.0.
    train = np.array([[0.6, 0.8], [0.6, -0.8], [1.0, 0.0]], dtype=np.float32)
    labels = [0, 0, 1]
    q = np.array([[2.0, 0.0]], dtype=np.float32)
    # T = 0.1: class 0 gets 2 * e^6 = 806.9, class 1 gets e^10 = 22026 -> class 1.
    assert knn_predict(train, labels, q, k=3, temperature=0.1).tolist() == [1]
    # T = 10: class 0 gets 2 * e^0.06 = 2.12, class 1 gets e^0.1 = 1.105 -> class 0.
    assert 2 * math.exp(0.06) > math.exp(0.1)
    assert knn_predict(train, labels, q, k=3, temperature=10.0).tolist() == [0]
    # k = 1: nearest only.
    assert knn_predict(train, labels, q, k=1, temperature=10.0).tolist() == [1]


def test_accuracy_and_k_larger_than_train_set():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 8)) * 5
    train = np.concatenate([c + rng.standard_normal((20, 8)) for c in centers])
    test = np.concatenate([c + rng.standard_normal((5, 8)) for c in centers])
    train_labels = np.repeat([0, 1, 2], 20)
    test_labels = np.repeat([0, 1, 2], 5)
    assert knn_accuracy(train, train_labels, test, test_labels, k=10) == 1.0
    assert knn_accuracy(train, train_labels, test, (test_labels + 1) % 3, k=10) == 0.0
    assert 0.0 <= knn_accuracy(train, train_labels, test, test_labels, k=1000) <= 1.0


def test_errors():
    with pytest.raises(ValueError, match="same D"):
        knn_predict(np.zeros((2, 3)), [0, 1], np.zeros((1, 4)))
    with pytest.raises(ValueError, match="train labels"):
        knn_predict(np.zeros((2, 3)), [0], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="k must be"):
        knn_predict(np.ones((2, 3)), [0, 1], np.ones((1, 3)), k=0)
