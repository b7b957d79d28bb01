"""DCLLoss and DCLWLoss checked with a naive loop reference (the paper's equation) and against NT-Xent."""

import math

import pytest
import torch

from easyssl.loss import DCLLoss, DCLWLoss, NTXentLoss, negative_mises_fisher_weights


def naive_dcl(z0, z1, temperature, weights=None):
    """2N samples; sample i's positive is its other view j, its negatives the 2N - 2 others (neither i nor j)."""
    n = len(z0)
    z = torch.nn.functional.normalize(torch.cat([z0, z1]).double(), dim=1).tolist()
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sim = {k: sum(a * b for a, b in zip(z[i], z[k])) / temperature for k in range(2 * n)}
        weight = 1.0 if weights is None else weights[i % n]
        total += -weight * sim[j] + math.log(sum(math.exp(sim[k]) for k in range(2 * n) if k not in (i, j)))
    return total / (2 * n)


@pytest.mark.parametrize("temperature", [0.5, 0.1])
def test_dcl_matches_the_papers_equation(temperature):
    torch.manual_seed(0)
    z0, z1 = torch.randn(6, 5), torch.randn(6, 5)
    expected = naive_dcl(z0, z1, temperature)
    assert DCLLoss(temperature)(z0, z1).item() == pytest.approx(expected, rel=1e-5)


def test_a_perfect_match_against_orthogonal_negatives():
    # Four orthogonal directions, each sample's views identical: positives 1, negatives 0.
    z = torch.eye(4)
    t = 0.5
    # DCL: -1/t + log(6 negatives x exp(0)) per sample; NT-Xent adds exp(1/t) inside the log.
    assert DCLLoss(t)(z, z).item() == pytest.approx(-1 / t + math.log(6), rel=1e-6)
    assert NTXentLoss(t)(z, z).item() == pytest.approx(-1 / t + math.log(6 + math.exp(1 / t)), rel=1e-6)


def test_dclw_weights_the_positives_as_the_paper():
    torch.manual_seed(2)
    z0, z1 = torch.randn(5, 4), torch.randn(5, 4)
    a, b = torch.nn.functional.normalize(z0, dim=1), torch.nn.functional.normalize(z1, dim=1)
    weights = negative_mises_fisher_weights(a, b, sigma=0.5)
    assert weights.sum().item() == pytest.approx(5.0, rel=1e-5)  # 2N - N: the weights average 1
    agreement = (a * b).sum(1)
    assert weights[agreement.argmax()] < 1 < weights[agreement.argmin()]  # hard positives count more
    expected = naive_dcl(z0, z1, 0.1, weights=weights.tolist())
    assert DCLWLoss(temperature=0.1, sigma=0.5)(z0, z1).item() == pytest.approx(expected, rel=1e-5)


def test_gradients_flow_and_bad_input_is_explained():
    z0 = torch.randn(4, 8, requires_grad=True)
    z1 = torch.randn(4, 8, requires_grad=True)
    DCLLoss()(z0, z1).backward()
    assert z0.grad is not None and torch.isfinite(z0.grad).all() and z0.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="same shape"):
        DCLLoss()(torch.randn(4, 8), torch.randn(3, 8))
    with pytest.raises(ValueError, match="at least 2 samples"):
        DCLLoss()(torch.randn(1, 8), torch.randn(1, 8))
    with pytest.raises(ValueError, match="temperature"):
        DCLLoss(temperature=0)
    with pytest.raises(ValueError, match="sigma"):
        DCLWLoss(sigma=-1)
