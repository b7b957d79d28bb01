"""nearest_neighbors(..., exclude_self=True) for queries that are some rows of the index (issue 16)."""

import importlib
import numpy as np
import pytest
import torch

from easyssl import nearest_neighbors


@pytest.fixture
def emb():
    return np.random.default_rng(3).normal(size=(800, 24)).astype(np.float32)


def expected(emb, rows, k):
    """Brute force: the k most similar rows other than the query's own."""
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    out = []
    for r in rows:
        s = x @ x[r]
        s[r] = -np.inf
        out.append(np.argsort(-s, kind="stable")[:k].tolist())
    return out


@pytest.mark.parametrize("use_faiss", [False, True])
def test_exclude_self_for_a_few_query_rows(emb, use_faiss):
    if use_faiss:
        importlib.import_module("faiss")
    idx, sim = nearest_neighbors(emb, emb[[0, 500]], k=5, use_faiss=use_faiss)
    assert idx[:, 0].tolist() == [0, 500]  # without exclude_self: each query is its own first neighbour
    idx, sim = nearest_neighbors(emb, emb[[0, 500]], k=5, exclude_self=True, use_faiss=use_faiss)
    assert idx.tolist() == expected(emb, [0, 500], 5)  # found by exact match
    assert sim.shape == (2, 5) and (sim < 0.999).all()
    by_index, _ = nearest_neighbors(emb, emb[[0, 500]], k=5, exclude_self=True, query_indices=[0, 500], use_faiss=use_faiss)
    assert by_index.tolist() == idx.tolist()
    # torch queries, one of them not in the index (kept whole); -1 in query_indices says "not in the index"
    q = torch.from_numpy(np.stack([emb[7], emb[7] * 1.5]))
    idx, _ = nearest_neighbors(torch.from_numpy(emb), q, k=3, exclude_self=True)
    assert 7 not in idx[0].tolist() and idx[1, 0] == 7
    idx, _ = nearest_neighbors(emb, emb[[7, 7]], k=3, exclude_self=True, query_indices=[7, -1])
    assert 7 not in idx[0].tolist() and idx[1, 0] == 7


def test_exclude_self_leaves_out_exact_copies_and_checks_k(emb):
    db = emb.copy()
    db[9] = db[4]  # an exact copy of row 4
    idx, _ = nearest_neighbors(db, db[[4]], k=3, exclude_self=True)
    assert not {4, 9} & set(idx[0].tolist())  # documented: every row equal to the query is left out
    idx, _ = nearest_neighbors(db, db[[4]], k=3, exclude_self=True, query_indices=[4])
    assert idx[0, 0] == 9  # by index only row 4 goes
    small = emb[:5]
    nearest_neighbors(small, small[[1]], k=4, exclude_self=True)
    with pytest.raises(ValueError, match="k must be between 1 and 4"):
        nearest_neighbors(small, small[[1]], k=5, exclude_self=True)
    with pytest.raises(ValueError, match="one integer row number per query"):
        nearest_neighbors(small, small[[1, 2]], k=2, exclude_self=True, query_indices=[1])
    with pytest.raises(ValueError, match="rows 0..4"):
        nearest_neighbors(small, small[[1]], k=2, exclude_self=True, query_indices=[5])
    # all-vs-all keeps its meaning: row i leaves out row i only
    idx, _ = nearest_neighbors(db, None, k=1, exclude_self=True)
    assert idx[4, 0] == 9 and idx[9, 0] == 4
