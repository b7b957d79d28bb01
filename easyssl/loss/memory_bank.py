"""A first-in-first-out bank of past embeddings, used as extra negatives (MoCo) or a support set (NNCLR)."""

from __future__ import annotations

import torch
from torch import nn


class MemoryBank(nn.Module):
    """FIFO queue of ``size`` embeddings of dimension ``dim``, stored as a buffer.

    The bank is part of the module's ``state_dict`` so it is saved in checkpoints and
    restored on resume. It starts with random unit vectors, as in MoCo.

    Args:
        size: Number of embeddings kept. 0 disables the bank.
        dim: Embedding dimension. May be ``None``; the bank is then created lazily on the
            first call, from the dimension of the embeddings it receives.
    """

    def __init__(self, size: int, dim: int | None = None) -> None:
        super().__init__()
        if size < 0:
            raise ValueError(f"memory_bank_size must be >= 0, got {size}")
        self.size = int(size)
        self.register_buffer("bank", torch.empty(0), persistent=True)
        self.register_buffer("ptr", torch.zeros(1, dtype=torch.long), persistent=True)
        if size > 0 and dim is not None:
            self._init_bank(dim, torch.device("cpu"))

    def _init_bank(self, dim: int, device: torch.device) -> None:
        bank = torch.nn.functional.normalize(torch.randn(self.size, dim, device=device), dim=1)
        self.bank = bank
        self.ptr = torch.zeros(1, dtype=torch.long, device=device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: D401 - torch hook
        # The bank may have been created lazily: adopt the saved shape before loading.
        key = prefix + "bank"
        if key in state_dict and state_dict[key].shape != self.bank.shape:
            self.bank = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def enqueue(self, batch: torch.Tensor) -> None:
        """Write ``batch`` (N, D) into the bank, overwriting the oldest entries."""
        batch = batch.detach().to(self.bank.dtype if self.bank.numel() else batch.dtype)
        n = batch.shape[0]
        if n >= self.size:
            self.bank.copy_(batch[-self.size :])
            self.ptr.zero_()
            return
        ptr = int(self.ptr)
        end = ptr + n
        if end <= self.size:
            self.bank[ptr:end] = batch
        else:
            first = self.size - ptr
            self.bank[ptr:] = batch[:first]
            self.bank[: n - first] = batch[first:]
        self.ptr[0] = end % self.size

    def forward(self, output: torch.Tensor, update: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(output, bank_before_update)`` and enqueue ``output`` if ``update``.

        The bank is ``None`` when ``size == 0``. The returned bank is a detached copy of
        its content *before* this batch was added, shape ``(size, D)``.
        """
        if self.size == 0:
            return output, None
        if self.bank.numel() == 0:
            self._init_bank(output.shape[1], output.device)
        if self.bank.device != output.device:
            self.to(output.device)
        bank = self.bank.clone().detach()
        if update:
            self.enqueue(output)
        return output, bank
