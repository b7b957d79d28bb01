import numpy as np
import pytest
import torch

from easyssl import select_diverse, select_for_labeling, uncertainty_scores


def planted_clusters(n_clusters=5, per_cluster=40, dim=16, spread=0.05, seed=0):
    """Tight Gaussian clusters around well-separated (near-orthogonal) centres."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((n_clusters, dim))
    centres[np.arange(n_clusters), np.arange(n_clusters)] = 5.0
    centres += 1.0  # not centred at the origin, so cosine != euclidean geometry
    labels = rng.permutation(np.repeat(np.arange(n_clusters), per_cluster))
    emb = centres[labels] + spread * rng.normal(size=(len(labels), dim))
    return emb.astype(np.float32), labels


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- #
# select_diverse
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_select_diverse_one_per_cluster(metric):
    emb, labels = planted_clusters()
    picked = select_diverse(emb, 5, metric=metric, device="cpu")
    assert picked.dtype == np.int64 and picked.shape == (5,)
    assert sorted(labels[picked].tolist()) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(picked, select_diverse(emb, 5, metric=metric))  # deterministic
    np.testing.assert_array_equal(picked, select_diverse(torch.from_numpy(emb), 5, metric=metric, chunk_size=7))


def test_select_diverse_default_seed_is_closest_to_mean_and_order():
    pts = np.array([[0, 0], [0.1, 0], [10, 0], [9.9, 0], [0, 10], [3, 3]], dtype=np.float32)
    # mean is (3.83, 2.17): closest point is [3, 3] (index 5)
    picked = select_diverse(pts, 4, metric="euclidean")
    assert picked[0] == 5
    assert picked.tolist() == [5, 2, 4, 0]
    assert select_diverse(pts, 3, metric="euclidean", seed_index=0).tolist() == [0, 2, 4]


def test_select_diverse_ties_lowest_index_and_all_points():
    pts = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=np.float32)
    # every point is equally far from the seed's neighbours -> lowest index wins
    assert select_diverse(pts, 4, metric="euclidean", seed_index=1).tolist() == [1, 3, 0, 2]
    # duplicates: n == N still returns each index once
    dup = np.zeros((4, 3), dtype=np.float32)
    assert select_diverse(dup, 4).tolist() == [0, 1, 2, 3]


def test_select_diverse_errors():
    emb, _ = planted_clusters(per_cluster=2)
    with pytest.raises(ValueError, match=r"n must be between 1 and 10 \(the number of embeddings\), got 11"):
        select_diverse(emb, 11)
    with pytest.raises(ValueError, match="n must be between 1 and 10"):
        select_diverse(emb, 0)
    with pytest.raises(ValueError, match="metric must be one of"):
        select_diverse(emb, 2, metric="manhattan")
    with pytest.raises(ValueError, match="seed_index must be between 0 and 9"):
        select_diverse(emb, 2, seed_index=10)
    with pytest.raises(ValueError, match="embeddings must be a 2-D array"):
        select_diverse(emb[0], 1)


# --------------------------------------------------------------------------- #
# uncertainty_scores
# --------------------------------------------------------------------------- #
def test_uncertainty_scores_hand_checked():
    p = np.array(
        [
            [0.25, 0.25, 0.25, 0.25],  # uniform
            [0.0, 1.0, 0.0, 0.0],  # one-hot
            [0.7, 0.2, 0.1, 0.0],
            [0.4, 0.4, 0.2, 0.0],
        ]
    )
    ent = uncertainty_scores(p)
    expected_2 = -(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)) / np.log(4)
    expected_3 = -(2 * 0.4 * np.log(0.4) + 0.2 * np.log(0.2)) / np.log(4)
    np.testing.assert_allclose(ent, [1.0, 0.0, expected_2, expected_3], atol=1e-12)
    np.testing.assert_allclose(uncertainty_scores(p, "margin"), [1.0, 0.0, 0.5, 1.0], atol=1e-12)
    np.testing.assert_allclose(uncertainty_scores(p, "least_confidence"), [0.75, 0.0, 0.3, 0.6], atol=1e-12)
    # torch tensors and float32 accepted
    np.testing.assert_allclose(uncertainty_scores(torch.tensor(p, dtype=torch.float32)), ent, atol=1e-6)


def test_uncertainty_scores_validation():
    with pytest.raises(ValueError, match="must be non-negative.*apply softmax"):
        uncertainty_scores(np.array([[2.0, -1.0]]))
    with pytest.raises(ValueError, match="row 1 sums to 3.*apply softmax"):
        uncertainty_scores(np.array([[0.5, 0.5], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="method must be one of"):
        uncertainty_scores(np.array([[0.5, 0.5]]), "variance")
    with pytest.raises(ValueError, match="at least 2 classes"):
        uncertainty_scores(np.ones((3, 1)))
    with pytest.raises(ValueError, match="2-D array"):
        uncertainty_scores(np.array([0.5, 0.5]))


# --------------------------------------------------------------------------- #
# select_for_labeling
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def al_data():
    emb, labels = planted_clusters(per_cluster=30, seed=1)
    rng = np.random.default_rng(5)
    probs = softmax(rng.normal(scale=2.0, size=(len(emb), 4)))
    return emb, labels, probs


@pytest.mark.parametrize("method", ["entropy", "margin", "least_confidence"])
def test_diversity_zero_is_top_uncertainty(al_data, method):
    emb, _, probs = al_data
    labeled = [3, 10, 11, 50]
    u = uncertainty_scores(probs, method)
    order = [i for i in np.argsort(-u, kind="stable") if i not in labeled]
    picked = select_for_labeling(emb, probs, 12, method=method, diversity=0.0, labeled_indices=labeled)
    assert picked.tolist() == order[:12]


@pytest.mark.parametrize("diversity", [0.0, 0.3, 0.5, 1.0])
def test_never_returns_labeled_and_unique(al_data, diversity):
    emb, _, probs = al_data
    labeled = np.arange(0, len(emb), 3)
    picked = select_for_labeling(emb, probs, 40, diversity=diversity, labeled_indices=labeled)
    assert picked.dtype == np.int64 and len(set(picked.tolist())) == 40
    assert not set(picked.tolist()) & set(labeled.tolist())
    np.testing.assert_array_equal(
        picked, select_for_labeling(emb, probs, 40, diversity=diversity, labeled_indices=labeled)
    )
    # picking every unlabeled item works too
    rest = select_for_labeling(emb, probs, len(emb) - len(labeled), diversity=diversity, labeled_indices=labeled)
    assert sorted(rest.tolist()) == sorted(set(range(len(emb))) - set(labeled.tolist()))


def test_diversity_one_covers_planted_clusters(al_data):
    emb, labels, probs = al_data
    # labeled items all come from cluster 0: the next 4 picks must cover clusters 1-4
    labeled = np.flatnonzero(labels == 0)[:5]
    picked = select_for_labeling(emb, probs, 4, diversity=1.0, labeled_indices=labeled)
    assert sorted(labels[picked].tolist()) == [1, 2, 3, 4]
    # without labels it is exactly k-center greedy from the most central item
    np.testing.assert_array_equal(
        select_for_labeling(emb, probs, 5, diversity=1.0), select_diverse(emb, 5, metric="cosine")
    )


def test_mixed_score_prefers_uncertain_items_in_new_clusters():
    # cluster A (rows 0-2) labeled; cluster B rows 3-5 unlabeled, cluster C rows 6-8 unlabeled
    emb = np.array(
        [[1, 0, 0]] * 3 + [[0, 1, 0]] * 3 + [[0, 0, 1]] * 3, dtype=np.float32
    ) + np.array([0, 0.001, 0.002] * 3, dtype=np.float32)[:, None] * np.array([1, 1, 1], dtype=np.float32)
    probs = np.array([[0.5, 0.5]] * 3 + [[0.9, 0.1], [0.6, 0.4], [0.99, 0.01]] + [[0.8, 0.2], [0.95, 0.05], [0.7, 0.3]])
    picked = select_for_labeling(emb, probs, 2, diversity=0.5, labeled_indices=[0, 1, 2])
    # first: most uncertain item among far clusters (row 4); then cluster C's most uncertain (row 8)
    assert picked.tolist() == [4, 8]


def test_select_for_labeling_errors(al_data):
    emb, _, probs = al_data
    with pytest.raises(ValueError, match=r"n must be between 1 and 148 \(the number of unlabeled items\), got 149"):
        select_for_labeling(emb, probs, 149, labeled_indices=[0, 1])
    with pytest.raises(ValueError, match="diversity must be a number between 0 and 1"):
        select_for_labeling(emb, probs, 3, diversity=1.5)
    with pytest.raises(ValueError, match="one row per embedding"):
        select_for_labeling(emb, probs[:-1], 3)
    with pytest.raises(ValueError, match="labeled_indices must be between 0 and 149"):
        select_for_labeling(emb, probs, 3, labeled_indices=[150])
    with pytest.raises(ValueError, match="no unlabeled items"):
        select_for_labeling(emb, probs, 1, labeled_indices=np.arange(150))
    with pytest.raises(ValueError, match="apply softmax"):
        select_for_labeling(emb, np.log(probs), 3)
