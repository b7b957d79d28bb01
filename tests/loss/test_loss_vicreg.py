"""VICRegLoss checked against the official formula, by hand and with a naive loop reference."""

import math

import pytest
import torch

from easyssl.loss import VICRegLoss


def naive_vicreg(z_a, z_b, lam=25.0, mu=25.0, nu=1.0, eps=1e-4):
    """Loop-based reference of the official facebookresearch/vicreg loss."""
    n, d = len(z_a), len(z_a[0])
    inv = sum((z_a[b][j] - z_b[b][j]) ** 2 for b in range(n) for j in range(d)) / (n * d)

    def terms(z):
        means = [sum(z[b][j] for b in range(n)) / n for j in range(d)]
        x = [[z[b][j] - means[j] for j in range(d)] for b in range(n)]
        cov = [[sum(x[b][i] * x[b][j] for b in range(n)) / (n - 1) for j in range(d)] for i in range(d)]
        std_term = sum(max(0.0, 1 - math.sqrt(cov[j][j] + eps)) for j in range(d)) / d
        cov_term = sum(cov[i][j] ** 2 for i in range(d) for j in range(d) if i != j) / d
        return std_term, cov_term

    std_a, cov_a = terms(z_a)
    std_b, cov_b = terms(z_b)
    return lam * inv + mu * (std_a / 2 + std_b / 2) + nu * (cov_a + cov_b)


def test_hand_computed_batch_of_two():
    z_a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    z_b = torch.tensor([[0.0, 0.0], [2.0, 1.0]])
    # invariance: squared differences 0, 0, 1, 1 -> 2 / 4 = 0.5
    # unbiased variances: z_a -> (0.5, 0), z_b -> (2, 0.5); with s = sqrt(0.5 + 1e-4):
    #   std term a = (relu(1 - s) + relu(1 - 0.01)) / 2 = (1.99 - s) / 2
    #   std term b = (relu(1 - sqrt(2.0001)) + relu(1 - s)) / 2 = (1 - s) / 2
    #   variance = a / 2 + b / 2 = (2.99 - 2 s) / 4 = 0.39391126
    # covariance: cov(z_a) = [[0.5, 0], [0, 0]] -> 0; cov(z_b) = [[2, 1], [1, 0.5]] -> (1 + 1) / D = 1
    # loss = 25 * 0.5 + 25 * 0.39391126 + 1 * 1 = 23.3477815
    s = math.sqrt(0.5001)
    assert (2.99 - 2 * s) / 4 == pytest.approx(0.39391126, abs=1e-8)
    loss = VICRegLoss()(z_a, z_b)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(23.3477815, abs=1e-5)


@pytest.mark.parametrize("params", [(25.0, 25.0, 1.0), (1.0, 2.0, 3.0)])
def test_matches_naive_reference(params):
    torch.manual_seed(0)
    z_a, z_b = torch.randn(5, 4) * 0.5, torch.randn(5, 4)
    lam, mu, nu = params
    loss = VICRegLoss(lambda_param=lam, mu_param=mu, nu_param=nu)(z_a, z_b)
    assert loss.item() == pytest.approx(naive_vicreg(z_a.tolist(), z_b.tolist(), lam, mu, nu), rel=1e-5)


def test_identical_views_have_zero_invariance():
    torch.manual_seed(1)
    z = torch.randn(6, 3)
    loss = VICRegLoss(lambda_param=1.0, mu_param=0.0, nu_param=0.0)(z, z.clone())
    assert loss.item() == pytest.approx(0.0, abs=1e-7)


def test_collapsed_outputs():
    z = torch.full((4, 3), 1.5, requires_grad=True)
    # Constant outputs: invariance 0, covariance 0, std = sqrt(0 + eps) = 0.01 for every feature,
    # so the variance term is relu(1 - 0.01) = 0.99 for each branch -> loss = mu * 0.99
    loss = VICRegLoss()(z, z)
    assert loss.item() == pytest.approx(25.0 * (1 - math.sqrt(1e-4)), abs=1e-5)
    loss.backward()
    assert torch.isfinite(z.grad).all()
    # Only the variance term, weighted by mu = 1: 1 - sqrt(eps)
    only_var = VICRegLoss(lambda_param=0.0, mu_param=1.0, nu_param=0.0)(torch.zeros(2, 5), torch.zeros(2, 5))
    assert only_var.item() == pytest.approx(0.99, abs=1e-6)


def test_gradients_flow():
    z_a = torch.randn(4, 5, requires_grad=True)
    z_b = torch.randn(4, 5, requires_grad=True)
    VICRegLoss()(z_a, z_b).backward()
    for z in (z_a, z_b):
        assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    torch.manual_seed(2)
    z_a, z_b = torch.randn(4, 3).to(dtype), torch.randn(4, 3).to(dtype)
    loss = VICRegLoss()(z_a, z_b)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(naive_vicreg(z_a.float().tolist(), z_b.float().tolist()), rel=1e-5)


def test_errors():
    loss_fn = VICRegLoss()
    with pytest.raises(ValueError, match="z_a and z_b must both be"):
        loss_fn(torch.randn(4, 3), torch.randn(3, 3))
    with pytest.raises(ValueError, match="batch size of at least 2"):
        loss_fn(torch.randn(1, 3), torch.randn(1, 3))
    for name in ("lambda_param", "mu_param", "nu_param"):
        with pytest.raises(ValueError, match=f"{name} must be >= 0"):
            VICRegLoss(**{name: -1.0})
    with pytest.raises(ValueError, match="eps must be > 0"):
        VICRegLoss(eps=0.0)
