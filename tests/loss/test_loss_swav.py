"""sinkhorn and SwaVLoss checked against the official formulas, by hand and with naive loop references."""

import math

import pytest
import torch

from easyssl.loss import SwaVLoss, sinkhorn


def naive_sinkhorn(scores, iterations, epsilon):
    """Loop-based Sinkhorn-Knopp of the official SwaV code on a (B, K) list of lists."""
    b, k = len(scores), len(scores[0])
    q = [[math.exp(scores[n][c] / epsilon) for n in range(b)] for c in range(k)]  # K x B
    total = sum(sum(row) for row in q)
    q = [[v / total for v in row] for row in q]
    for _ in range(iterations):
        for c in range(k):
            row_sum = sum(q[c])
            q[c] = [v / row_sum / k for v in q[c]]
        for n in range(b):
            col_sum = sum(q[c][n] for c in range(k))
            for c in range(k):
                q[c][n] = q[c][n] / col_sum / b
    return [[q[c][n] * b for c in range(k)] for n in range(b)]  # (Q * B).T


def naive_swav(high, low, temperature, iterations, epsilon, queue=None):
    views = high + low
    total = 0.0
    for i in range(len(high)):
        scores = high[i] + (queue[i] if queue is not None else [])
        q = naive_sinkhorn(scores, iterations, epsilon)[: len(high[i])]
        sub = []
        for v in range(len(views)):
            if v == i:
                continue
            ce = 0.0
            for n in range(len(q)):
                logits = [x / temperature for x in views[v][n]]
                lse = math.log(sum(math.exp(x) for x in logits))
                ce += -sum(q[n][c] * (logits[c] - lse) for c in range(len(logits)))
            sub.append(ce / len(q))
        total += sum(sub) / len(sub)
    return total / len(high)


def test_sinkhorn_hand_computed():
    # scores [[a, 0], [0, a]] with a = 0.05 ln 3: exp(scores / 0.05).T = [[3, 1], [1, 3]], already
    # balanced, so the codes are [[3/4, 1/4], [1/4, 3/4]].
    a = 0.05 * math.log(3)
    q = sinkhorn(torch.tensor([[a, 0.0], [0.0, a]]))
    assert torch.allclose(q, torch.tensor([[0.75, 0.25], [0.25, 0.75]]), atol=1e-6)


def test_sinkhorn_uniform_for_constant_scores():
    q = sinkhorn(torch.full((4, 8), 2.0))
    assert torch.allclose(q, torch.full((4, 8), 1 / 8))


@pytest.mark.parametrize("iterations", [1, 3, 10])
def test_sinkhorn_matches_naive_reference(iterations):
    torch.manual_seed(0)
    scores = torch.randn(5, 3) * 0.1
    q = sinkhorn(scores, iterations=iterations, epsilon=0.05)
    expected = torch.tensor(naive_sinkhorn(scores.tolist(), iterations, 0.05))
    assert torch.allclose(q, expected, atol=1e-6)


def test_sinkhorn_rows_and_columns():
    torch.manual_seed(1)
    b, k = 12, 4
    scores = torch.randn(b, k) * 0.1
    q = sinkhorn(scores, iterations=3)
    assert q.shape == (b, k) and q.dtype == torch.float32
    assert torch.allclose(q.sum(dim=1), torch.ones(b), atol=1e-6)  # each sample: one unit of mass
    assert torch.allclose(q.sum(dim=0), torch.full((k,), b / k), rtol=0.1)  # roughly balanced after 3
    q = sinkhorn(scores, iterations=100)
    assert torch.allclose(q.sum(dim=0), torch.full((k,), b / k), atol=1e-4)  # converged: B / K each


def test_sinkhorn_large_scores_and_half_precision_are_finite():
    scores = torch.tensor([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0], [0.0, 0.0, 1000.0]])
    q = sinkhorn(scores)
    assert torch.isfinite(q).all()
    assert torch.allclose(q, torch.eye(3), atol=1e-6)
    q16 = sinkhorn(torch.randn(6, 4).half() * 10)
    assert q16.dtype == torch.float32 and torch.isfinite(q16).all()
    assert torch.allclose(q16.sum(dim=1), torch.ones(6), atol=1e-5)


def test_swav_hand_computed_two_identical_views():
    # Codes from the hand-computed Sinkhorn test: q = [[3/4, 1/4], [1/4, 3/4]].
    # Predictions: scores / 0.1 = [[0.5 ln 3, 0], [0, 0.5 ln 3]] -> softmax row 0 = [r3, 1] / (r3 + 1).
    # Each sample: -(3/4 ln(r3 / (r3 + 1)) + 1/4 ln(1 / (r3 + 1))) = 0.5930729, for both views.
    a = 0.05 * math.log(3)
    scores = torch.tensor([[a, 0.0], [0.0, a]])
    r3 = math.sqrt(3)
    expected = -(0.75 * math.log(r3 / (r3 + 1)) + 0.25 * math.log(1 / (r3 + 1)))
    assert expected == pytest.approx(0.5930729, abs=1e-6)
    loss = SwaVLoss()([scores, scores.clone()], [])
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_swav_matches_naive_reference_multicrop():
    torch.manual_seed(2)
    high = [torch.randn(3, 4) * 0.2 for _ in range(2)]
    low = [torch.randn(3, 4) * 0.2 for _ in range(3)]
    loss = SwaVLoss(temperature=0.1)(high, low)
    expected = naive_swav([h.tolist() for h in high], [v.tolist() for v in low], 0.1, 3, 0.05)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_swav_with_queue_matches_naive_reference():
    torch.manual_seed(3)
    high = [torch.randn(2, 4) * 0.2 for _ in range(2)]
    low = [torch.randn(2, 4) * 0.2]
    queue = [torch.randn(5, 4) * 0.2 for _ in range(2)]
    loss = SwaVLoss(temperature=0.2, sinkhorn_iterations=5)(high, low, queue)
    expected = naive_swav([h.tolist() for h in high], [v.tolist() for v in low], 0.2, 5, 0.05,
                          queue=[q.tolist() for q in queue])
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    without_queue = SwaVLoss(temperature=0.2, sinkhorn_iterations=5)(high, low)
    assert loss.item() != pytest.approx(without_queue.item(), rel=1e-6)


def test_gradients_flow_to_predictions():
    high = [torch.randn(4, 6, requires_grad=True) for _ in range(2)]
    low = [torch.randn(4, 6, requires_grad=True) for _ in range(2)]
    queue = [torch.randn(8, 6, requires_grad=True) for _ in range(2)]
    SwaVLoss()(high, low, queue).backward()
    for z in high + low:
        assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    for z in queue:
        assert z.grad is None


def test_collapsed_outputs():
    const = torch.full((2, 5), 0.3)
    # Uniform codes 1/K and uniform predictions: cross-entropy = ln K
    loss = SwaVLoss()([const, const], [const])
    assert loss.item() == pytest.approx(math.log(5), abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    torch.manual_seed(4)
    high = [(torch.randn(3, 4) * 0.2).to(dtype) for _ in range(2)]
    low = [(torch.randn(3, 4) * 0.2).to(dtype)]
    loss = SwaVLoss()(high, low)
    assert loss.dtype == torch.float32
    expected = naive_swav([h.float().tolist() for h in high], [v.float().tolist() for v in low], 0.1, 3, 0.05)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_errors():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="out must be a"):
        sinkhorn(torch.randn(4))
    with pytest.raises(ValueError, match="iterations must be >= 0"):
        sinkhorn(x, iterations=-1)
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        sinkhorn(x, epsilon=0.0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        SwaVLoss(temperature=0.0)
    with pytest.raises(ValueError, match="sinkhorn_iterations must be >= 0"):
        SwaVLoss(sinkhorn_iterations=-1)
    with pytest.raises(ValueError, match="sinkhorn_epsilon must be > 0"):
        SwaVLoss(sinkhorn_epsilon=-0.1)
    loss_fn = SwaVLoss()
    with pytest.raises(ValueError, match="high_resolution_outputs must contain"):
        loss_fn([], [x])
    with pytest.raises(ValueError, match="at least two views"):
        loss_fn([x], [])
    with pytest.raises(ValueError, match="low_resolution_outputs must have shape"):
        loss_fn([x], [torch.randn(4, 5)])
    with pytest.raises(ValueError, match="queue_outputs must have one tensor"):
        loss_fn([x, x], [], [torch.randn(6, 3)])
    with pytest.raises(ValueError, match="queue_outputs must be"):
        loss_fn([x, x], [], [torch.randn(6, 2), torch.randn(6, 2)])
