import importlib
import numpy as np
import pytest
import torch

import easyssl.tools.search as search
from easyssl import nearest_neighbors


def brute_force(db, queries, k, exclude_self=False):
    """Reference top-k by cosine in float64: similarity desc, index asc."""
    db = np.asarray(db, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.float64)

    def norm(x):
        n = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(n > 0, n, 1.0)

    sims = norm(queries) @ norm(db).T
    if exclude_self:
        np.fill_diagonal(sims, -np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(db.shape[0]), sims.shape), -sims), axis=1)[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


def assert_matches(result, reference, tol=1e-5):
    idx, sim = result
    ref_idx, ref_sim = reference
    assert idx.dtype == np.int64 and sim.dtype == np.float32
    assert idx.shape == ref_idx.shape == sim.shape
    np.testing.assert_allclose(sim, ref_sim, atol=tol)
    # Indices must match exactly except where float32 rounding can swap
    # near-equal similarities (gap below tol to a neighbour in the reference).
    gaps = np.abs(np.diff(ref_sim, axis=1))
    near_tie = np.zeros_like(ref_sim, dtype=bool)
    near_tie[:, 1:] |= gaps < tol
    near_tie[:, :-1] |= gaps < tol
    assert np.array_equal(idx[~near_tie], ref_idx[~near_tie])
    assert near_tie.mean() < 0.05  # the comparison is not vacuous


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(257, 16)).astype(np.float32), rng.normal(size=(23, 16)).astype(np.float32)


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 64, 100, 257, 1000])
def test_matches_brute_force_for_chunk_sizes(data, chunk_size):
    db, q = data
    ref = brute_force(db, q, 10)
    assert_matches(nearest_neighbors(db, q, 10, chunk_size=chunk_size, device="cpu", use_faiss=False), ref)


@pytest.mark.parametrize("chunk_size", [None, 50, 64])
def test_k_equals_n_returns_full_ranking(data, chunk_size):
    db, q = data
    idx, sim = nearest_neighbors(db, q, db.shape[0], chunk_size=chunk_size, device="cpu")
    assert_matches((idx, sim), brute_force(db, q, db.shape[0]))
    assert all(sorted(row) == list(range(db.shape[0])) for row in idx.tolist())
    assert np.all(np.diff(sim, axis=1) <= 0)


def test_torch_input_and_query_none(data):
    db, _ = data
    a = nearest_neighbors(torch.from_numpy(db), None, 5, device="cpu")
    b = nearest_neighbors(db, db.astype(np.float64), 5, device="cpu")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[0][:, 0], np.arange(db.shape[0]))  # each row finds itself
    np.testing.assert_allclose(a[1][:, 0], 1.0, atol=1e-5)


def test_cosine_ignores_scale(data):
    db, q = data
    scaled = db * np.linspace(0.01, 100, db.shape[0], dtype=np.float32)[:, None]
    a = nearest_neighbors(db, q, 8, device="cpu")
    b = nearest_neighbors(scaled, q * 3, 8, device="cpu")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], atol=1e-5)


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 4])
def test_ties_broken_by_lower_index(chunk_size):
    # rows 1, 3, 4, 6 are identical (exact ties); 0, 2, 5 are orthogonal to the query
    db = np.array(
        [[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0], [2, 0, 0], [0, 1, 1], [1, 0, 0]], dtype=np.float32
    )
    q = np.array([[1, 0, 0], [0, 1, 1]], dtype=np.float32)
    for _ in range(2):  # deterministic across calls
        idx, sim = nearest_neighbors(db, q, 6, chunk_size=chunk_size, device="cpu")
        assert idx[0].tolist() == [1, 3, 4, 6, 0, 2]
        np.testing.assert_allclose(sim[0], [1, 1, 1, 1, 0, 0], atol=1e-6)
        assert idx[1].tolist() == [5, 0, 2, 1, 3, 4]
    idx, _ = nearest_neighbors(db, q, 2, chunk_size=chunk_size, device="cpu")
    assert idx[0].tolist() == [1, 3]


def test_zero_vectors_give_zero_similarity_not_nan():
    db = np.array([[0, 0], [1, 0], [0, 1], [0, 0]], dtype=np.float32)
    q = np.array([[0, 0], [1, 1]], dtype=np.float32)
    idx, sim = nearest_neighbors(db, q, 4, device="cpu")
    assert np.isfinite(sim).all()
    np.testing.assert_allclose(sim[0], 0.0)
    assert idx[0].tolist() == [0, 1, 2, 3]
    assert idx[1].tolist() == [1, 2, 0, 3]
    np.testing.assert_allclose(sim[1], [2**-0.5, 2**-0.5, 0, 0], atol=1e-6)


@pytest.mark.parametrize("chunk_size", [None, 5, 16])
def test_exclude_self(data, chunk_size):
    db, _ = data
    idx, sim = nearest_neighbors(db, db, 6, exclude_self=True, chunk_size=chunk_size, device="cpu")
    assert not (idx == np.arange(len(db))[:, None]).any()
    assert_matches((idx, sim), brute_force(db, db, 6, exclude_self=True))
    # k may go up to N - 1
    idx, _ = nearest_neighbors(db[:10], None, 9, exclude_self=True, chunk_size=chunk_size)
    assert all(sorted(r + [i]) == list(range(10)) for i, r in enumerate(idx.tolist()))


def test_exclude_self_keeps_duplicate_rows():
    db = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    idx, sim = nearest_neighbors(db, None, 1, exclude_self=True, device="cpu")
    assert idx[:, 0].tolist() == [1, 0, 0]
    np.testing.assert_allclose(sim[:2, 0], 1.0, atol=1e-6)


def test_errors(data):
    db, q = data
    n = db.shape[0]
    with pytest.raises(ValueError, match=rf"k must be between 1 and {n} \(the number of embeddings\), got 0"):
        nearest_neighbors(db, q, 0)
    with pytest.raises(ValueError, match=rf"k must be between 1 and {n}"):
        nearest_neighbors(db, q, n + 1)
    with pytest.raises(ValueError, match=rf"k must be between 1 and {n - 1}"):
        nearest_neighbors(db, db, n, exclude_self=True)
    with pytest.raises(ValueError, match="k must be an integer"):
        nearest_neighbors(db, q, 2.5)
    with pytest.raises(ValueError, match="queries must have the same dimension"):
        nearest_neighbors(db, q[:, :5], 3)
    with pytest.raises(ValueError, match="embeddings must be a 2-D array"):
        nearest_neighbors(db[0], q, 3)
    with pytest.raises(ValueError, match="queries must be a 2-D array"):
        nearest_neighbors(db, q[0], 3)
    with pytest.raises(ValueError, match="query_indices only says which rows exclude_self=True leaves out"):
        nearest_neighbors(db, q, 3, query_indices=[0] * len(q))
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        nearest_neighbors(db, q, 3, chunk_size=0)
    bad = db.copy()
    bad[5, 3] = np.nan
    with pytest.raises(ValueError, match=r"embeddings contains NaN or infinite values \(first in row 5\)"):
        nearest_neighbors(bad, q, 3, use_faiss=False)


def test_use_faiss_true_without_faiss_raises(monkeypatch, data):
    monkeypatch.setattr(search, "_faiss_available", lambda: False)
    db, q = data
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        nearest_neighbors(db, q, 3, use_faiss=True)
    # auto mode silently falls back to torch
    monkeypatch.setattr(search, "FAISS_AUTO_MIN_ROWS", 10)
    assert_matches(nearest_neighbors(db, q, 3), brute_force(db, q, 3))


def test_faiss_path_matches_torch(data):
    importlib.import_module("faiss")
    db, q = data
    ref = brute_force(db, q, 10)
    assert_matches(nearest_neighbors(db, q, 10, use_faiss=True, chunk_size=10), ref)
    a = nearest_neighbors(db, None, 5, use_faiss=True, exclude_self=True)
    assert_matches(a, brute_force(db, db, 5, exclude_self=True))


def test_large_database_is_chunked_and_exact(monkeypatch):
    rng = np.random.default_rng(1)
    db = rng.normal(size=(200_000, 64)).astype(np.float32)
    q = db[[0, 12_345, 199_999]] + 0.3 * rng.normal(size=(3, 64)).astype(np.float32)
    blocks = []
    real_score_block = search._score_block

    def spy(a, b):
        blocks.append(a.shape[0] * b.shape[0])
        return real_score_block(a, b)

    monkeypatch.setattr(search, "_score_block", spy)
    monkeypatch.setattr(search, "_DB_CACHE_BYTES", 0)  # stream database chunks too
    idx, sim = nearest_neighbors(db, q, 5, chunk_size=8192, device="cpu", use_faiss=False)
    assert max(blocks) <= 8192 * 8192 and len(blocks) == -(-200_000 // 8192)
    assert idx[:, 0].tolist() == [0, 12_345, 199_999]
    assert_matches((idx, sim), brute_force(db, q, 5))


def test_auto_chunks_respect_budget():
    q_chunk, db_chunk = search._pick_chunks(1000, 1_000_000, None)
    assert q_chunk == 1000 and q_chunk * db_chunk * 4 <= search.SCORE_BUDGET_BYTES
    q_chunk, db_chunk = search._pick_chunks(1_000_000, 1_000_000, None)
    assert q_chunk * db_chunk * 4 <= search.SCORE_BUDGET_BYTES and q_chunk >= 1024
    assert search._pick_chunks(10, 20, None) == (10, 20)
    assert search._pick_chunks(10, 20, 7) == (7, 7)
