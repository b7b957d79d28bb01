"""NNCLR's support set: nearest neighbours in a FIFO queue of past projections."""

import torch

from easyssl.nn import NNMemoryBankModule


def test_nn_memory_bank_returns_nearest_neighbours():
    bank = NNMemoryBankModule(size=3, dim=2)
    z = torch.tensor([[1.0, 0.1], [0.1, 1.0]])
    assert torch.equal(bank(z, update=True), z)  # empty support set: unchanged
    query = torch.tensor([[0.0, 5.0], [3.0, 0.0]])
    expected = torch.nn.functional.normalize(z, dim=1).flip(0)
    assert torch.allclose(bank(query), expected)
    bank(torch.tensor([[-1.0, 0.0], [0.0, -1.0]]), update=True)  # wraps around: 3 slots
    assert int(bank.filled) == 3 and int(bank.ptr) == 1
    assert torch.allclose(bank(torch.tensor([[-2.0, 0.1]])), torch.tensor([[-1.0, 0.0]]))
    assert "bank" in bank.state_dict()


def test_the_oldest_fall_out_and_neighbours_carry_no_gradient():
    # the late nearest-neighbour screen hook (examples/benchmarks/neighbour_hook.py) relies on both
    bank = NNMemoryBankModule(size=5, dim=8)
    bank.enqueue(torch.eye(8)[:3] * 3)
    bank.enqueue(torch.eye(8)[3:7] * 2)
    assert int(bank.filled) == 5
    kept = {tuple(row.tolist()) for row in bank.bank}
    assert kept == {tuple(row.tolist()) for row in torch.eye(8)[2:7]}  # the first two fell out; each of unit length
    query = torch.eye(8)[[6, 2]] + 0.1 * torch.eye(8)[[0, 1]]  # near items 6 and 2; 0 and 1 are gone
    assert torch.equal(bank.nearest_neighbours(query), torch.eye(8)[[6, 2]])
    z = torch.randn(3, 8, requires_grad=True)
    assert not bank.nearest_neighbours(z).requires_grad  # the neighbour is a target, no gradient into the queue
