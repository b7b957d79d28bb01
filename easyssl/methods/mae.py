"""MAE (He et al., 2022): masked autoencoders — reconstruct the pixels of masked patches from the visible ones."""

from __future__ import annotations

from functools import partial
from typing import Sequence

import torch
from torch import nn
from torchvision.models.vision_transformer import EncoderBlock, VisionTransformer

from easyssl.loss import MAELoss
from easyssl.methods.base import Method
from easyssl.nn.base import SSLModel, TrainingProgress
from easyssl.nn.vit import sincos_position_embedding
from easyssl.transforms.mae import MAE_VIEW, MAETransform
from easyssl.transforms.twins import batched_like


class MAE(SSLModel):
    """A ViT encoder that sees only the visible patches and a small transformer decoder that predicts the masked ones.

    Training: the image is cut into patches, ``mask_ratio`` of them (75%) are dropped at random
    for each image, the backbone's encoder runs on the class token and the visible patches,
    and the decoder (``decoder_depth`` blocks of width ``decoder_dim``, fixed sine-cosine position
    embedding) fills in learnt mask tokens and predicts every patch's pixels. :class:`~easyssl.loss.MAELoss`
    scores the masked patches only.

    Built on torchvision's ``VisionTransformer`` internals (``conv_proj``, ``class_token``,
    ``encoder.pos_embedding``, ``encoder.layers``, ``encoder.ln``), so any easyssl ViT backbone
    (``"vit-tiny"``, ``"vit-small"``, ``"vit-b-16"``...) works. ``embed(x)`` runs the encoder on all
    patches and returns the mean of the patch tokens (``embed_pooling="mean"``, better than the
    class token for MAE features) or the class token (``"cls"``).

    Args:
        backbone: A ViT (``backbone("vit-tiny", input_size=32)``).
        decoder_dim: Width of the decoder (paper 512; a multiple of 4 and of ``decoder_heads``).
        decoder_depth: Transformer blocks in the decoder (paper 8).
        decoder_heads: Attention heads in the decoder (paper 16).
        mask_ratio: Fraction of the patches masked, in (0, 1).
        embed_pooling: ``"mean"`` or ``"cls"``: how :meth:`embed` pools the encoder tokens.

    Example (a plain PyTorch loop)::

        model = MAE(backbone("vit-tiny", input_size=32))
        criterion = MAELoss()
        for (images,), _, _ in loader:                       # MAETransform views
            pred, target, mask = model(images)
            loss = criterion(pred, target, mask)
            loss.backward(); optimizer.step(); optimizer.zero_grad()
    """

    method = "mae"

    def __init__(
        self,
        backbone: nn.Module,
        decoder_dim: int = 128,
        decoder_depth: int = 2,
        decoder_heads: int = 4,
        mask_ratio: float = 0.75,
        embed_pooling: str = "mean",
    ) -> None:
        if not isinstance(backbone, VisionTransformer):
            raise TypeError(
                f"MAE needs a Vision Transformer backbone, got {type(backbone).__name__}: "
                "use model={'backbone': 'vit-tiny'} (or vit-small, vit-b-16...)"
            )
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        if embed_pooling not in ("mean", "cls"):
            raise ValueError(f"embed_pooling must be 'mean' or 'cls', got {embed_pooling!r}")
        if decoder_dim % decoder_heads or decoder_dim % 4:
            raise ValueError(f"decoder_dim ({decoder_dim}) must be a multiple of 4 and of decoder_heads ({decoder_heads})")
        super().__init__(backbone)
        self.patch_size = int(backbone.patch_size)
        self.grid_size = int(backbone.image_size) // self.patch_size
        self.num_patches = self.grid_size**2
        self.mask_ratio = float(mask_ratio)
        self.embed_pooling = embed_pooling
        hidden = int(backbone.hidden_dim)
        self.decoder_embed = nn.Linear(hidden, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.register_buffer("decoder_pos_embedding", sincos_position_embedding(self.grid_size, decoder_dim), persistent=False)
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.decoder_blocks = nn.Sequential(
            *[EncoderBlock(decoder_heads, decoder_dim, 4 * decoder_dim, 0.0, 0.0, norm) for _ in range(decoder_depth)]
        )
        self.decoder_norm = norm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, self.patch_size**2 * 3)
        for layer in (self.decoder_embed, self.decoder_pred):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    @property
    def num_visible(self) -> int:
        """Patches the encoder sees per image: ``int(num_patches * (1 - mask_ratio))``, at least 1."""
        return max(1, min(self.num_patches - 1, int(self.num_patches * (1 - self.mask_ratio))))

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, N, patch_size**2 * 3)``, patches in row-major order, pixels as ``(p, q, c)``."""
        b, c, h, w = images.shape
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f"image sides ({h}x{w}) must be multiples of the patch size {p}")
        x = images.reshape(b, c, h // p, p, w // p, p)
        return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`patchify` for square images."""
        b, n, _ = patches.shape
        p, g = self.patch_size, int(round(n**0.5))
        x = patches.reshape(b, g, g, p, p, 3).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(b, 3, g * p, g * p)

    def random_masking(self, batch_size: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(ids_keep, ids_restore, mask)``: a random subset of :attr:`num_visible` patches per image.

        ``ids_keep`` ``(B, num_visible)`` indexes the visible patches; ``ids_restore`` ``(B, N)``
        undoes the shuffle; ``mask`` ``(B, N)`` is 1 where a patch is masked.
        """
        n, keep = self.num_patches, self.num_visible
        noise = torch.rand(batch_size, n, device=device)
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :keep]
        mask = torch.ones(batch_size, n, device=device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, ids_restore)
        return ids_keep, ids_restore, mask

    def encode(self, images: torch.Tensor, ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder tokens ``(B, 1 + K, hidden_dim)`` (class token first) of the patches ``ids_keep`` (all when None)."""
        vit = self.backbone
        tokens = vit.conv_proj(images).flatten(2).transpose(1, 2)  # (B, N, D)
        grid_h, grid_w = images.shape[-2] // self.patch_size, images.shape[-1] // self.patch_size
        pos = vit.position_embedding(grid_h, grid_w) if hasattr(vit, "position_embedding") else vit.encoder.pos_embedding
        tokens = tokens + pos[:, 1:]
        if ids_keep is not None:
            tokens = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        cls = (vit.class_token + pos[:, :1]).expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1)
        return vit.encoder.ln(vit.encoder.layers(vit.encoder.dropout(tokens)))

    def decode(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Pixel predictions ``(B, N, patch_size**2 * 3)`` of every patch from the encoder tokens of the visible ones."""
        x = self.decoder_embed(latent)
        b, visible, dim = x.shape
        n = ids_restore.shape[1]
        patches = torch.cat([x[:, 1:], self.mask_token.to(x.dtype).expand(b, n + 1 - visible, -1)], dim=1)
        patches = torch.gather(patches, 1, ids_restore.unsqueeze(-1).expand(-1, -1, dim))
        x = torch.cat([x[:, :1], patches], dim=1) + self.decoder_pos_embedding.to(x.dtype)
        x = self.decoder_norm(self.decoder_blocks(x))
        return self.decoder_pred(x)[:, 1:]

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(pred, target, mask)``: predicted and true patches ``(B, N, patch_dim)`` and the mask ``(B, N)``."""
        if tuple(images.shape[-2:]) != (self.grid_size * self.patch_size,) * 2:
            side = self.grid_size * self.patch_size
            raise ValueError(f"MAE was built for {side}x{side} images, got {tuple(images.shape[-2:])}")
        ids_keep, ids_restore, mask = self.random_masking(images.shape[0], images.device)
        pred = self.decode(self.encode(images, ids_keep), ids_restore)
        return pred, self.patchify(images), mask

    def training_loss(self, views: Sequence[torch.Tensor], criterion: nn.Module, progress: TrainingProgress) -> torch.Tensor:
        pred, target, mask = self(views[0])
        return criterion(pred, target, mask)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder features of all patches: mean patch token or class token, ``(B, hidden_dim)``."""
        tokens = self.encode(x)
        return tokens[:, 1:].mean(dim=1) if self.embed_pooling == "mean" else tokens[:, 0]


METHOD = Method(
    name="mae",
    model=MAE,
    criterion=MAELoss,
    transform=MAETransform,
    batch_transform=batched_like(MAETransform),
    model_defaults={
        "backbone": "vit-tiny", "decoder_dim": 128, "decoder_depth": 2, "decoder_heads": 4, "mask_ratio": 0.75, "embed_pooling": "mean",
    },
    criterion_defaults={"norm_pix_loss": True},
    collate_defaults=dict(MAE_VIEW),
    optimizer_defaults={"name": "adamw", "base_lr": 1.5e-4, "weight_decay": 0.05, "warmup": 0.05},
    description="MAE (He et al. 2022): reconstruct the pixels of masked patches with a ViT encoder and a light decoder",
)
