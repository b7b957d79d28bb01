"""Vision Transformer backbones (Dosovitskiy et al., 2021) on torchvision's ``VisionTransformer``.

Two families, both in the backbone registry of :mod:`easyssl.nn.backbones` (``backbone("vit-tiny")``):

* torchvision's sizes ``vit-b-16``, ``vit-b-32``, ``vit-l-16``, ``vit-l-32``, ``vit-h-14``
  (built with random weights, never downloaded), for photos at 224 px;
* small-patch ViTs for small images (32-96 px): ``vit-tiny`` (dim 192, depth 12, 3 heads) and
  ``vit-small`` (dim 384, depth 12, 6 heads), with patches of 4 px up to 64 px inputs, 8 px up
  to 128 px and 16 px above (``patch_size=`` overrides).

Every one is a :class:`ViT`: torchvision's module (same parameter names, so torchvision
checkpoints load with ``strict=False``) without the classification head, whose ``forward``
returns the final class token ``(B, hidden_dim)`` and accepts any input size that is a multiple
of the patch size (the position embedding is interpolated, for DINO's local crops). MAE uses its
parts: :meth:`ViT.patch_embed`, :meth:`ViT.position_embedding`, ``class_token``,
``encoder.layers`` and ``encoder.ln``.

Example:
    >>> net = backbone("vit-tiny", input_size=32)
    >>> net(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 192])
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

#: ``name: (patch_size, num_layers, num_heads, hidden_dim, mlp_dim)`` of torchvision's ViTs.
TORCHVISION_VITS: dict[str, tuple[int, int, int, int, int]] = {
    "vit-b-16": (16, 12, 12, 768, 3072),
    "vit-b-32": (32, 12, 12, 768, 3072),
    "vit-l-16": (16, 24, 16, 1024, 4096),
    "vit-l-32": (32, 24, 16, 1024, 4096),
    "vit-h-14": (14, 32, 16, 1280, 5120),
}

#: ``name: (num_layers, num_heads, hidden_dim)`` of the small-patch ViTs (patch size from the input size).
SMALL_VITS: dict[str, tuple[int, int, int]] = {
    "vit-tiny": (12, 3, 192),
    "vit-small": (12, 6, 384),
}


def small_patch_size(input_size: int) -> int:
    """Patch side of the small ViTs: 4 px up to 64 px inputs, 8 px up to 128 px, 16 px above."""
    if input_size <= 64:
        return 4
    if input_size <= 128:
        return 8
    return 16


class ViT(VisionTransformer):
    """torchvision's ``VisionTransformer`` as a feature extractor: ``forward`` returns the class token.

    Args:
        image_size: Training input size (sets the number of position embeddings).
        patch_size: Side of the square patches.
        num_layers, num_heads, hidden_dim, mlp_dim: Transformer size.
        dropout, attention_dropout: Dropout rates.

    Attributes:
        num_features: Size of the features (``hidden_dim``).
        grid_size: Patches per side at ``image_size``.
    """

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        mlp_dim: int,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ) -> None:
        if image_size < patch_size:
            raise ValueError(f"input_size ({image_size}) must be at least the patch size ({patch_size})")
        super().__init__(
            image_size=image_size,
            patch_size=patch_size,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            mlp_dim=mlp_dim,
            dropout=dropout,
            attention_dropout=attention_dropout,
        )
        self.heads = nn.Identity()  # no classifier
        self.num_features = hidden_dim
        self.num_heads = num_heads
        self.grid_size = image_size // patch_size

    @property
    def num_patches(self) -> int:
        """Patches per image at the training size."""
        return self.grid_size**2

    def patch_embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens ``(B, h * w, hidden_dim)`` of an image batch, without position embedding."""
        n, _, height, width = x.shape
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f"the image sides ({height}x{width}) must be multiples of the patch size {p}")
        x = self.conv_proj(x)
        return x.flatten(2).transpose(1, 2)

    def position_embedding(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """Position embedding ``(1, 1 + grid_h * grid_w, hidden_dim)`` (class token first).

        At the training grid it is the learnt parameter; at other grids its patch part is
        bicubically interpolated (as DINO does for its local crops).
        """
        pos = self.encoder.pos_embedding
        if grid_h == self.grid_size and grid_w == self.grid_size:
            return pos
        cls_pos, patch_pos = pos[:, :1], pos[:, 1:]
        dim = patch_pos.shape[-1]
        patch_pos = patch_pos.reshape(1, self.grid_size, self.grid_size, dim).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(patch_pos.float(), size=(grid_h, grid_w), mode="bicubic", align_corners=False).to(pos.dtype)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, dim)
        return torch.cat([cls_pos, patch_pos], dim=1)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """All output tokens ``(B, 1 + h * w, hidden_dim)`` after the final layer norm (class token first)."""
        grid_h, grid_w = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        tokens = self.patch_embed(x)
        tokens = torch.cat([self.class_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        tokens = tokens + self.position_embedding(grid_h, grid_w)
        return self.encoder.ln(self.encoder.layers(self.encoder.dropout(tokens)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The class token ``(B, hidden_dim)``."""
        return self.forward_tokens(x)[:, 0]


def _scaled(hidden_dim: int, num_heads: int, width: float) -> int:
    """``hidden_dim * width`` rounded to a multiple of ``num_heads`` (at least one dimension per head)."""
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    return max(1, int(round(hidden_dim * width / num_heads))) * num_heads


def _torchvision_vit_factory(name: str) -> Callable[..., ViT]:
    patch, layers, heads, hidden, mlp = TORCHVISION_VITS[name]

    def build(width: float = 1.0, small_input: bool = False, input_size: int | None = None, **kwargs) -> ViT:
        dim = _scaled(hidden, heads, width)
        kwargs.setdefault("patch_size", patch)
        kwargs.setdefault("num_layers", layers)
        return ViT(image_size=input_size or 224, num_heads=heads, hidden_dim=dim, mlp_dim=mlp * dim // hidden, **kwargs)

    build.__name__ = name.replace("-", "_")
    build.__doc__ = (
        f"torchvision's {name} (random weights) as a feature extractor; ``width`` scales its dimension, "
        "``patch_size``/``num_layers``/``dropout`` override."
    )
    return build


def _small_vit_factory(name: str) -> Callable[..., ViT]:
    layers, heads, hidden = SMALL_VITS[name]

    def build(width: float = 1.0, small_input: bool = False, input_size: int | None = None, **kwargs) -> ViT:
        size = input_size or 224
        dim = _scaled(hidden, heads, width)
        kwargs.setdefault("patch_size", small_patch_size(size))
        kwargs.setdefault("num_layers", layers)
        return ViT(image_size=size, num_heads=heads, hidden_dim=dim, mlp_dim=4 * dim, **kwargs)

    build.__name__ = name.replace("-", "_")
    build.__doc__ = f"{name}: dim {hidden}, depth {layers}, {heads} heads, small patches; ``width`` scales its dimension."
    return build


#: The ViT backbone factories by name (part of :data:`easyssl.nn.backbones.BACKBONES`).
VIT_BACKBONES: dict[str, Callable[..., ViT]] = {
    **{name: _torchvision_vit_factory(name) for name in TORCHVISION_VITS},
    **{name: _small_vit_factory(name) for name in SMALL_VITS},
}


def sincos_position_embedding(grid_size: int, dim: int, class_token: bool = True) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding ``(1, [1 +] grid_size**2, dim)`` (MAE's decoder).

    The class-token position (first row) is zeros. ``dim`` must be a multiple of 4.
    """
    if dim % 4:
        raise ValueError(f"the sine-cosine embedding needs a dimension that is a multiple of 4, got {dim}")
    coords = torch.arange(grid_size, dtype=torch.float64)
    grid_y, grid_x = torch.meshgrid(coords, coords, indexing="ij")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))

    def encode(pos: torch.Tensor) -> torch.Tensor:
        out = pos.reshape(-1, 1) * omega.reshape(1, -1)
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    emb = torch.cat([encode(grid_y), encode(grid_x)], dim=1)
    if class_token:
        emb = torch.cat([torch.zeros(1, dim, dtype=emb.dtype), emb], dim=0)
    return emb.unsqueeze(0).float()


def is_vit(module: nn.Module) -> bool:
    """True for a :class:`ViT` (or any torchvision ``VisionTransformer``)."""
    return isinstance(module, VisionTransformer)


__all__ = [
    "SMALL_VITS",
    "TORCHVISION_VITS",
    "VIT_BACKBONES",
    "ViT",
    "is_vit",
    "sincos_position_embedding",
    "small_patch_size",
]
