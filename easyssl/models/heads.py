"""Projection and prediction heads: small MLPs on top of the backbone's features."""

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


class SimCLRProjectionHead(ProjectionHead):
    """SimCLR's projection head: ``num_layers`` linear layers with batch norm and ReLU between them.

    v1 of the paper uses 2 layers, v2 uses 3. The last layer has no activation.

    Args:
        input_dim: Backbone feature size.
        hidden_dim: Width of the hidden layers.
        output_dim: Size of the projection the loss sees.
        num_layers: Number of linear layers (>= 1).
        batch_norm: Batch norm after each hidden layer.
    """

    def __init__(
        self, input_dim: int = 2048, hidden_dim: int = 2048, output_dim: int = 128, num_layers: int = 2, batch_norm: bool = True
    ) -> None:
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        blocks = []
        for i in range(num_layers):
            last = i == num_layers - 1
            blocks.append(
                (dims[i], dims[i + 1], None if last or not batch_norm else nn.BatchNorm1d(dims[i + 1]), None if last else nn.ReLU(inplace=True))
            )
        super().__init__(blocks)
