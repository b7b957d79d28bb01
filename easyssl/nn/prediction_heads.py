"""Prediction heads: the small MLPs that predict one view's projection from another's (BYOL, SimSiam, MoCo v3, NNCLR),
and the rotation predictor of E-SSL-style rotation prediction.

Each follows its paper's layout; sizes default to the papers' values, and the methods'
defaults (``easyssl.methods.<name>``) scale them down for small setups.
"""

from __future__ import annotations

from easyssl.nn.mlp import ProjectionHead, mlp_blocks


class MoCoV3PredictionHead(ProjectionHead):
    """MoCo v3's prediction head: ``Linear -> BN -> ReLU -> Linear`` (2 layers)."""

    def __init__(self, input_dim: int = 256, hidden_dim: int = 4096, output_dim: int = 256) -> None:
        super().__init__(mlp_blocks([input_dim, hidden_dim, output_dim], True, last_batch_norm=False))


class BYOLPredictionHead(ProjectionHead):
    """BYOL's prediction head, the same MLP as the projection head: ``256 -> 4096 -> 256`` in the paper."""

    def __init__(self, input_dim: int = 256, hidden_dim: int = 4096, output_dim: int = 256) -> None:
        super().__init__(mlp_blocks([input_dim, hidden_dim, output_dim], True, last_batch_norm=False))


class SimSiamPredictionHead(ProjectionHead):
    """SimSiam's bottleneck prediction head: ``Linear -> BN -> ReLU -> Linear`` (``2048 -> 512 -> 2048``)."""

    def __init__(self, input_dim: int = 2048, hidden_dim: int = 512, output_dim: int = 2048) -> None:
        super().__init__(mlp_blocks([input_dim, hidden_dim, output_dim], True, last_batch_norm=False))


class NNCLRPredictionHead(ProjectionHead):
    """NNCLR's prediction head: ``Linear -> BN -> ReLU -> Linear`` (``256 -> 4096 -> 256`` in the paper)."""

    def __init__(self, input_dim: int = 256, hidden_dim: int = 4096, output_dim: int = 256) -> None:
        super().__init__(mlp_blocks([input_dim, hidden_dim, output_dim], True, last_batch_norm=False))


class RotationPredictionHead(ProjectionHead):
    """Rotation predictor (as in E-SSL, Dangovski et al., 2022): features -> logits of the quarter turn an image was turned by.

    ``Linear -> BN -> ReLU -> Linear(num_turns)`` (E-SSL's CIFAR-10 code uses three layers 2048 wide with layer
    norm; this smaller one is what was measured here), trained with cross-entropy next to a method's own loss
    (:class:`easyssl.methods.simclr.SimCLR`'s ``rotation_weight``; the turns: :mod:`easyssl.transforms.rotation`).

    Args:
        input_dim: Backbone feature size.
        hidden_dim: Width of the hidden layer (default: ``input_dim``).
        num_turns: Number of rotations told apart (4: 0, 90, 180 and 270 degrees).
    """

    def __init__(self, input_dim: int = 2048, hidden_dim: int | None = None, num_turns: int = 4) -> None:
        super().__init__(mlp_blocks([input_dim, hidden_dim or input_dim, num_turns], True, last_batch_norm=False))
