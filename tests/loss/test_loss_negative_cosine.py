"""NegativeCosineSimilarity checked against hand-computed cosine similarities."""

import math

import pytest
import torch

from easyssl.loss import NegativeCosineSimilarity


def test_hand_computed_batch_of_two():
    x0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    x1 = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    # cos(row 0) = 1 / sqrt(2), cos(row 1) = -1  ->  loss = -(1/sqrt(2) - 1) / 2
    expected = -(1 / math.sqrt(2) - 1) / 2  # 0.1464466
    loss = NegativeCosineSimilarity()(x0, x1)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_dim_argument():
    # Along dim=0 the columns are compared: col 0: (1,0).(1,0) -> 1; col 1: (0,1).(1,-1) -> -1/sqrt(2)
    x0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    x1 = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    expected = -(1 - 1 / math.sqrt(2)) / 2
    assert NegativeCosineSimilarity(dim=0)(x0, x1).item() == pytest.approx(expected, abs=1e-6)


def test_identical_views_give_minus_one():
    x = torch.randn(5, 7)
    assert NegativeCosineSimilarity()(x, x.clone()).item() == pytest.approx(-1.0, abs=1e-6)
    # Scale does not matter: cosine similarity only depends on the direction.
    assert NegativeCosineSimilarity()(x, 3 * x).item() == pytest.approx(-1.0, abs=1e-6)


def test_collapsed_and_zero_outputs_are_finite():
    const = torch.full((4, 3), 0.5)
    assert NegativeCosineSimilarity()(const, const).item() == pytest.approx(-1.0, abs=1e-6)
    zeros = torch.zeros(4, 3, requires_grad=True)
    loss = NegativeCosineSimilarity()(zeros, torch.randn(4, 3))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    assert torch.isfinite(zeros.grad).all()


def test_gradients_flow_only_to_non_detached_input():
    p = torch.randn(4, 8, requires_grad=True)
    z = torch.randn(4, 8, requires_grad=True)
    NegativeCosineSimilarity()(p, z.detach()).backward()
    assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert z.grad is None


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_computed_in_float32(dtype):
    x0, x1 = torch.randn(4, 8), torch.randn(4, 8)
    loss = NegativeCosineSimilarity()(x0.to(dtype), x1.to(dtype))
    assert loss.dtype == torch.float32
    ref = NegativeCosineSimilarity()(x0.to(dtype).float(), x1.to(dtype).float())
    assert loss.item() == pytest.approx(ref.item(), abs=1e-6)


def test_errors():
    loss_fn = NegativeCosineSimilarity()
    with pytest.raises(ValueError, match="x0 and x1 must have the same shape"):
        loss_fn(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="dim=2 is out of range"):
        NegativeCosineSimilarity(dim=2)(torch.randn(4, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match="eps must be > 0"):
        NegativeCosineSimilarity(eps=0.0)
