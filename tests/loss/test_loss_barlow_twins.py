"""BarlowTwinsLoss checked against the paper's formula, by hand and with a naive loop reference."""

import math

import pytest
import torch

from easyssl.loss import BarlowTwinsLoss

EPS = 1e-5  # the batch-norm epsilon of the implementation


def naive_barlow_twins(z_a, z_b, lambda_param):
    """Loop-based reference: standardise each feature over the batch, then sum over (i, j)."""
    n, d = len(z_a), len(z_a[0])

    def standardise(z):
        cols = []
        for j in range(d):
            col = [z[b][j] for b in range(n)]
            mean = sum(col) / n
            var = sum((v - mean) ** 2 for v in col) / n  # biased, like batch norm
            cols.append([(v - mean) / math.sqrt(var + EPS) for v in col])
        return cols  # cols[j][b]

    a, b = standardise(z_a), standardise(z_b)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c_ij = sum(a[i][k] * b[j][k] for k in range(n)) / n
            loss += (1 - c_ij) ** 2 if i == j else lambda_param * c_ij**2
    return loss


def test_hand_computed_batch_of_two():
    z_a = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    z_b = torch.tensor([[0.0, 0.0], [2.0, 4.0]])
    # z_a standardised: [[-1, 1], [1, -1]]; z_b standardised: [[-1, -1], [1, 1]]
    # c = z_a_norm.T @ z_b_norm / 2 = [[1, 1], [-1, -1]]
    # loss = (1 - 1)^2 + (1 - (-1))^2 + lambda * (1^2 + (-1)^2) = 4 + 2 * lambda
    loss = BarlowTwinsLoss(lambda_param=5e-3)(z_a, z_b)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(4.01, rel=1e-4)


@pytest.mark.parametrize("lambda_param", [5e-3, 0.5])
def test_matches_naive_reference(lambda_param):
    torch.manual_seed(0)
    z_a, z_b = torch.randn(5, 3), torch.randn(5, 3)
    loss = BarlowTwinsLoss(lambda_param=lambda_param)(z_a, z_b)
    expected = naive_barlow_twins(z_a.tolist(), z_b.tolist(), lambda_param)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_identical_views_have_zero_on_diagonal_term():
    torch.manual_seed(1)
    z = torch.randn(6, 4)
    # With lambda = 0 only sum_i (1 - c_ii)^2 is left, and c_ii = var / (var + eps) ~ 1.
    assert BarlowTwinsLoss(lambda_param=0.0)(z, z.clone()).item() == pytest.approx(0.0, abs=1e-6)
    # Affine changes of a feature do not change its standardised value.
    assert BarlowTwinsLoss(lambda_param=0.0)(z, 2 * z + 1).item() == pytest.approx(0.0, abs=1e-6)


def test_collapsed_outputs_give_d_and_finite_gradients():
    z_a = torch.full((4, 3), 0.7, requires_grad=True)
    z_b = torch.full((4, 3), -2.0, requires_grad=True)
    loss = BarlowTwinsLoss()(z_a, z_b)
    # Constant features standardise to 0 -> c = 0 -> loss = sum_i (1 - 0)^2 = D = 3
    assert loss.item() == pytest.approx(3.0, abs=1e-6)
    loss.backward()
    assert torch.isfinite(z_a.grad).all() and torch.isfinite(z_b.grad).all()


def test_gradients_flow():
    z_a = torch.randn(4, 5, requires_grad=True)
    z_b = torch.randn(4, 5, requires_grad=True)
    BarlowTwinsLoss()(z_a, z_b).backward()
    for z in (z_a, z_b):
        assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    torch.manual_seed(2)
    z_a, z_b = torch.randn(4, 3).to(dtype), torch.randn(4, 3).to(dtype)
    loss = BarlowTwinsLoss()(z_a, z_b)
    assert loss.dtype == torch.float32
    expected = naive_barlow_twins(z_a.float().tolist(), z_b.float().tolist(), 5e-3)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_errors():
    loss_fn = BarlowTwinsLoss()
    with pytest.raises(ValueError, match="z_a and z_b must both be"):
        loss_fn(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="z_a and z_b must both be"):
        loss_fn(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match="batch size of at least 2"):
        loss_fn(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match="lambda_param must be >= 0"):
        BarlowTwinsLoss(lambda_param=-1.0)

