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
