"""Projection heads: the MLPs between the backbone's features and the loss, one per method's paper.

Each follows its paper's layout; sizes default to the papers' values, and the methods'
defaults (``easyssl.methods.<name>``) scale them down for small setups.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from easyssl.nn.mlp import ProjectionHead, layer_dims, mlp_blocks
from easyssl.nn.prototypes import frozen_parameter


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
        dims = layer_dims(input_dim, hidden_dim, output_dim, num_layers)
        blocks = []
        for i in range(num_layers):
            last = i == num_layers - 1
            blocks.append(
                (dims[i], dims[i + 1], None if last or not batch_norm else nn.BatchNorm1d(dims[i + 1]), None if last else nn.ReLU(inplace=True))
            )
        super().__init__(blocks)


class MoCoProjectionHead(ProjectionHead):
    """MoCo's projection head.

    MoCo v2: ``num_layers=2`` linear layers with ReLU between them and no batch norm.
    MoCo v3: ``num_layers=3`` with batch norm after every layer (``batch_norm=True``), the last
    one without affine parameters.

    Args:
        input_dim: Backbone feature size.
        hidden_dim: Width of the hidden layers (2048 in v2, 4096 in v3).
        output_dim: Size of the projection (128 in v2, 256 in v3).
        num_layers: Number of linear layers.
        batch_norm: Batch norm after each layer (v3).
    """

    def __init__(self, input_dim: int = 2048, hidden_dim: int = 2048, output_dim: int = 128, num_layers: int = 2, batch_norm: bool = False) -> None:
        dims = layer_dims(input_dim, hidden_dim, output_dim, num_layers)
        super().__init__(mlp_blocks(dims, batch_norm, last_batch_norm=batch_norm, last_affine=False))


class BYOLProjectionHead(ProjectionHead):
    """BYOL's projection head: ``Linear -> BN -> ReLU -> Linear`` (4096 hidden, 256 out in the paper)."""

    def __init__(self, input_dim: int = 2048, hidden_dim: int = 4096, output_dim: int = 256) -> None:
        super().__init__(mlp_blocks([input_dim, hidden_dim, output_dim], True, last_batch_norm=False))


class SimSiamProjectionHead(ProjectionHead):
    """SimSiam's projection head: 3 linear layers, each followed by batch norm, ReLU on the hidden ones.

    The output batch norm has no affine parameters, as in the reference code.
    """

    def __init__(self, input_dim: int = 2048, hidden_dim: int = 2048, output_dim: int = 2048, num_layers: int = 3) -> None:
        dims = layer_dims(input_dim, hidden_dim, output_dim, num_layers)
        super().__init__(mlp_blocks(dims, True, last_batch_norm=True, last_affine=False))


class BarlowTwinsProjectionHead(ProjectionHead):
    """Barlow Twins' projector: 3 linear layers, BN + ReLU after the first two (8192 wide in the paper)."""

    def __init__(self, input_dim: int = 2048, hidden_dim: int = 8192, output_dim: int = 8192, num_layers: int = 3) -> None:
        dims = layer_dims(input_dim, hidden_dim, output_dim, num_layers)
        super().__init__(mlp_blocks(dims, True, last_batch_norm=False))


class VICRegProjectionHead(BarlowTwinsProjectionHead):
    """VICReg's expander: the same 3-layer MLP as Barlow Twins' projector (8192 wide in the paper)."""


class NNCLRProjectionHead(ProjectionHead):
    """NNCLR's projection head: 3 linear layers, each followed by batch norm, ReLU on the hidden ones."""

    def __init__(self, input_dim: int = 2048, hidden_dim: int = 2048, output_dim: int = 256) -> None:
        super().__init__(mlp_blocks([input_dim, hidden_dim, hidden_dim, output_dim], True, last_batch_norm=True))


class SwaVProjectionHead(ProjectionHead):
    """SwaV's projection head: ``Linear -> BN -> ReLU -> Linear`` (``2048 -> 2048 -> 128``)."""

    def __init__(self, input_dim: int = 2048, hidden_dim: int = 2048, output_dim: int = 128) -> None:
        super().__init__(mlp_blocks([input_dim, hidden_dim, output_dim], True, last_batch_norm=False))


class DINOProjectionHead(nn.Module):
    """DINO's head: an MLP with GELU to a bottleneck, L2-normalised, then a weight-normalised linear layer.

    ``Linear -> GELU -> Linear -> GELU -> Linear(bottleneck)`` (``num_layers`` linear layers, batch
    norm optional), ``F.normalize``, then ``Linear(bottleneck, output_dim, bias=False)`` whose rows
    are ``g * v / ||v||`` (prototypes, in effect). With ``norm_last_layer`` the gain ``g`` is fixed
    at 1 (not trained), as in the paper. ``forward(x, freeze_last_layer=True)`` stops the last
    layer's gradient, as during the first epoch of the paper.

    Args:
        input_dim: Backbone feature size.
        hidden_dim: Width of the hidden layers (2048).
        bottleneck_dim: Size of the bottleneck (256).
        output_dim: Number of outputs (65536 in the paper).
        num_layers: Linear layers before the bottleneck normalisation (3).
        batch_norm: Batch norm after the hidden layers.
        norm_last_layer: Fix the last layer's weight-norm gain at 1.
    """

    def __init__(
        self,
        input_dim: int = 2048,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        output_dim: int = 65536,
        num_layers: int = 3,
        batch_norm: bool = False,
        norm_last_layer: bool = True,
    ) -> None:
        super().__init__()
        dims = layer_dims(input_dim, hidden_dim, bottleneck_dim, num_layers)
        self.mlp = ProjectionHead(mlp_blocks(dims, batch_norm, last_batch_norm=False, activation=nn.GELU))
        for module in self.mlp.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        # Weight normalisation written out: weight = weight_g * weight_v / ||weight_v|| (per output row).
        self.weight_v = nn.Parameter(torch.empty(output_dim, bottleneck_dim))
        nn.init.kaiming_uniform_(self.weight_v, a=math.sqrt(5))
        self.weight_g = nn.Parameter(torch.ones(output_dim, 1), requires_grad=not norm_last_layer)
        self.output_dim = output_dim

    def last_layer_weight(self, frozen: bool = False) -> torch.Tensor:
        """The last layer's ``(output_dim, bottleneck_dim)`` weight, ``g * v / ||v||``."""
        v = frozen_parameter(self.weight_v, frozen)
        g = frozen_parameter(self.weight_g, frozen) if self.weight_g.requires_grad else self.weight_g
        return g * F.normalize(v, dim=1)

    def forward(self, x: torch.Tensor, freeze_last_layer: bool = False) -> torch.Tensor:
        x = F.normalize(self.mlp(x), dim=-1, eps=1e-6)
        return F.linear(x, self.last_layer_weight(freeze_last_layer))
