"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al., 2020), with MoCo's memory bank."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from easyssl.runtime import distributed
from easyssl.loss.memory_bank import MemoryBank


class NTXentLoss(nn.Module):
    """Contrastive loss between two batches of projections ``z0`` and ``z1``.

    Without a memory bank (``memory_bank_size=0``) this is SimCLR's loss: for each of the
    ``2N`` samples the positive is its other view and the ``2N - 2`` other samples of the
    batch are negatives::

        l(i, j) = -log( exp(sim(z_i, z_j) / t) / sum_{k != i} exp(sim(z_i, z_k) / t) )

    averaged over all ``2N`` samples, with ``sim`` the cosine similarity.

    With a memory bank (MoCo), each ``z0[i]`` has one positive ``z1[i]`` and the bank's
    entries as negatives; ``z1`` (the momentum encoder's output) is then enqueued.

    Args:
        temperature: Softmax temperature ``t``; must be positive.
        memory_bank_size: Number of negatives kept in the bank; 0 disables it.
        gather_distributed: Under ``torch.distributed``, gather the projections of all
            processes so every sample sees the negatives of the global batch.

    Example:
        >>> loss_fn = NTXentLoss(temperature=0.5)
        >>> loss = loss_fn(torch.randn(8, 128), torch.randn(8, 128))
    """

    def __init__(self, temperature: float = 0.5, memory_bank_size: int = 0, gather_distributed: bool = False) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.gather_distributed = gather_distributed
        self.memory_bank = MemoryBank(memory_bank_size)

    @property
    def graph_safe(self) -> bool:
        """Whether a CUDA graph can replay this loss (:mod:`easyssl.train.step`): not with a memory bank, whose
        write position is read on the host."""
        return self.memory_bank.size == 0

    def forward(self, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        """Return the mean NT-Xent loss of the two views (each of shape ``(N, D)``)."""
        if z0.shape != z1.shape or z0.dim() != 2:
            raise ValueError(f"z0 and z1 must both be (N, D) with the same shape, got {tuple(z0.shape)} and {tuple(z1.shape)}")
        n = z0.shape[0]
        z0 = F.normalize(z0.float(), dim=1)
        z1 = F.normalize(z1.float(), dim=1)
        z1, negatives = self.memory_bank(z1, update=z0.requires_grad)

        if negatives is not None:
            sim_pos = (z0 * z1).sum(dim=1, keepdim=True)
            sim_neg = z0 @ negatives.to(z0.device, z0.dtype).T
            logits = torch.cat([sim_pos, sim_neg], dim=1) / self.temperature
            labels = torch.zeros(n, dtype=torch.long, device=z0.device)
            return F.cross_entropy(logits, labels)

        if self.gather_distributed and distributed.is_distributed():
            z0_all = torch.cat(distributed.gather(z0), 0)
            z1_all = torch.cat(distributed.gather(z1), 0)
            diag = distributed.eye_rank(n, device=z0.device)
            offset = distributed.rank() * n
        else:
            z0_all, z1_all = z0, z1
            diag = torch.eye(n, dtype=torch.bool, device=z0.device)
            offset = 0
        t = self.temperature
        logits_01 = z0 @ z1_all.T / t
        logits_10 = z1 @ z0_all.T / t
        # A sample against itself is masked out with -inf (a zero term of the softmax) rather than cut out by
        # boolean indexing, which waits for the device to count the kept entries: no host sync, so a CUDA graph
        # can hold the loss, and the same value.
        logits_00 = (z0 @ z0_all.T / t).masked_fill(diag, float("-inf"))
        logits_11 = (z1 @ z1_all.T / t).masked_fill(diag, float("-inf"))
        logits = torch.cat(
            [torch.cat([logits_01, logits_00], dim=1), torch.cat([logits_10, logits_11], dim=1)], dim=0
        )
        labels = (torch.arange(n, device=z0.device) + offset).repeat(2)
        return F.cross_entropy(logits, labels)
