"""NTXentLoss (SimCLR and MoCo memory-bank modes) checked by hand and with a naive loop reference."""

import math

import pytest
import torch

from easyssl.loss import NTXentLoss


def _unit(v):
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def naive_ntxent(z0, z1, temperature):
    """SimCLR: 2N samples, positive = the other view, the 2N - 2 others are negatives."""
    n = len(z0)
    z = [_unit(v) for v in z0] + [_unit(v) for v in z1]
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = {k: sum(a * b for a, b in zip(z[i], z[k])) / temperature for k in range(2 * n)}
        denominator = sum(math.exp(sims[k]) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(sims[j]) / denominator)
    return total / (2 * n)


def naive_moco(z0, z1, bank, temperature):
    """MoCo: one positive z1[i] per z0[i], the bank entries as negatives."""
    total = 0.0
    for q, k in zip(z0, z1):
        q, k = _unit(q), _unit(k)
        pos = math.exp(sum(a * b for a, b in zip(q, k)) / temperature)
        neg = sum(math.exp(sum(a * b for a, b in zip(q, m)) / temperature) for m in bank)
        total += -math.log(pos / (pos + neg))
    return total / len(z0)


@pytest.mark.parametrize("temperature", [0.5, 0.1])
def test_matches_naive_reference(temperature):
    torch.manual_seed(0)
    z0, z1 = torch.randn(4, 3), torch.randn(4, 3)
    loss = NTXentLoss(temperature=temperature)(z0, z1)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(naive_ntxent(z0.tolist(), z1.tolist(), temperature), rel=1e-5)


def test_hand_computed_batch_of_two():
    # z0 = [e0, e1], z1 = [e0, e1] scaled (normalisation removes the scale), t = 0.5.
    # Each sample: positive sim 1 -> e^2; negatives: the other sample in each view, sim 0 -> e^0 twice.
    # loss = -log(e^2 / (e^2 + 2)) = log(1 + 2 e^-2) = 0.2395448
    z0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z1 = torch.tensor([[3.0, 0.0], [0.0, 0.5]])
    loss = NTXentLoss(temperature=0.5)(z0, z1)
    assert loss.item() == pytest.approx(math.log(1 + 2 * math.exp(-2)), abs=1e-6)
    assert math.log(1 + 2 * math.exp(-2)) == pytest.approx(0.2395448, abs=1e-6)


def test_collapsed_outputs():
    # All similarities are 1: loss = -log(e^{1/t} / ((2N - 1) e^{1/t})) = log(2N - 1) = log 3 for N = 2
    const = torch.full((2, 4), 0.2, requires_grad=True)
    loss = NTXentLoss(temperature=0.1)(const, const)
    assert loss.item() == pytest.approx(math.log(3), abs=1e-5)
    loss.backward()
    assert torch.isfinite(const.grad).all()


def test_gradients_flow():
    z0 = torch.randn(4, 3, requires_grad=True)
    z1 = torch.randn(4, 3, requires_grad=True)
    NTXentLoss()(z0, z1).backward()
    for z in (z0, z1):
        assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_memory_bank_hand_computed_and_update():
    loss_fn = NTXentLoss(temperature=0.5, memory_bank_size=2)
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss_fn.memory_bank.bank = bank.clone()
    z0 = torch.tensor([[1.0, 0.0]], requires_grad=True)
    z1 = torch.tensor([[1.2, 1.6]])  # normalised: [0.6, 0.8]
    # positive: 0.6 / 0.5 = 1.2; negatives: [1, 0] -> 2, [0, 1] -> 0
    # loss = -log(e^1.2 / (e^1.2 + e^2 + e^0)) = log(e^1.2 + e^2 + 1) - 1.2 = 1.2603716
    expected = math.log(math.exp(1.2) + math.exp(2) + 1) - 1.2
    assert expected == pytest.approx(1.2603716, abs=1e-6)
    loss = loss_fn(z0, z1)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss.backward()
    assert torch.isfinite(z0.grad).all()
    # The (normalised) z1 replaced the oldest entry; the other entry is untouched.
    assert torch.allclose(loss_fn.memory_bank.bank, torch.tensor([[0.6, 0.8], [0.0, 1.0]]))
    assert int(loss_fn.memory_bank.ptr) == 1


def test_memory_bank_matches_naive_reference_and_fifo():
    torch.manual_seed(1)
    loss_fn = NTXentLoss(temperature=0.1, memory_bank_size=5)
    bank = torch.nn.functional.normalize(torch.randn(5, 3), dim=1)
    loss_fn.memory_bank.bank = bank.clone()
    z0 = torch.randn(4, 3, requires_grad=True)
    z1 = torch.randn(4, 3)
    loss = loss_fn(z0, z1)
    assert loss.item() == pytest.approx(naive_moco(z0.tolist(), z1.tolist(), bank.tolist(), 0.1), rel=1e-5)
    z1_unit = torch.nn.functional.normalize(z1, dim=1)
    assert torch.allclose(loss_fn.memory_bank.bank[:4], z1_unit)
    assert torch.allclose(loss_fn.memory_bank.bank[4], bank[4])
    # The next batch wraps around: slot 4 then slots 0..2.
    z1_next = torch.randn(4, 3)
    loss_fn(torch.randn(4, 3, requires_grad=True), z1_next)
    next_unit = torch.nn.functional.normalize(z1_next, dim=1)
    assert torch.allclose(loss_fn.memory_bank.bank[4], next_unit[0])
    assert torch.allclose(loss_fn.memory_bank.bank[:3], next_unit[1:])
    assert torch.allclose(loss_fn.memory_bank.bank[3], z1_unit[3])


def test_memory_bank_not_updated_without_grad():
    loss_fn = NTXentLoss(temperature=0.5, memory_bank_size=3)
    loss_fn.memory_bank.bank = torch.eye(3)
    with torch.no_grad():
        loss_fn(torch.randn(2, 3), torch.randn(2, 3))
    assert torch.equal(loss_fn.memory_bank.bank, torch.eye(3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    torch.manual_seed(2)
    z0, z1 = torch.randn(4, 3).to(dtype), torch.randn(4, 3).to(dtype)
    loss = NTXentLoss(temperature=0.5)(z0, z1)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(naive_ntxent(z0.float().tolist(), z1.float().tolist(), 0.5), rel=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        NTXentLoss(temperature=0.0)
    with pytest.raises(ValueError, match="memory_bank_size must be >= 0"):
        NTXentLoss(memory_bank_size=-1)
    with pytest.raises(ValueError, match="z0 and z1 must both be"):
        NTXentLoss()(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="z0 and z1 must both be"):
        NTXentLoss()(torch.randn(4), torch.randn(4))
