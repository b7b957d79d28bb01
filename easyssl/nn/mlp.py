"""The MLP every projection and prediction head is made of, and the block layout the heads share."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """An MLP built from ``(in_dim, out_dim, batch_norm, activation)`` blocks.

    Each block is ``Linear(in_dim, out_dim)`` (without bias when followed by batch norm),
    then the optional ``BatchNorm1d`` and activation.

    Example:
        >>> head = ProjectionHead([(512, 2048, nn.BatchNorm1d(2048), nn.ReLU()), (2048, 128, None, None)])
    """

    def __init__(self, blocks: Sequence[tuple[int, int, nn.Module | None, nn.Module | None]]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for in_dim, out_dim, batch_norm, activation in blocks:
            layers.append(nn.Linear(in_dim, out_dim, bias=batch_norm is None))
            if batch_norm is not None:
                layers.append(batch_norm)
            if activation is not None:
                layers.append(activation)
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def mlp_blocks(dims: list[int], batch_norm: bool, last_batch_norm: bool, last_affine: bool = True, activation=nn.ReLU):
    """``(in, out, bn, act)`` blocks for :class:`ProjectionHead`: BN + activation after every layer but the last.

    Args:
        dims: Sizes of the input, the hidden layers and the output.
        batch_norm: Batch norm after the hidden layers.
        last_batch_norm: Batch norm after the last layer (no activation there).
        last_affine: Whether that last batch norm has affine parameters.
        activation: Class of the hidden layers' activation.
    """
    blocks = []
    for i in range(len(dims) - 1):
        last = i == len(dims) - 2
        if last:
            bn = nn.BatchNorm1d(dims[i + 1], affine=last_affine) if last_batch_norm else None
            blocks.append((dims[i], dims[i + 1], bn, None))
        else:
            blocks.append((dims[i], dims[i + 1], nn.BatchNorm1d(dims[i + 1]) if batch_norm else None, activation()))
    return blocks


def layer_dims(input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> list[int]:
    """``[input_dim, hidden_dim, ..., output_dim]`` for ``num_layers`` linear layers (>= 1)."""
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    return [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
