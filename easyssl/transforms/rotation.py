"""Quarter turns of a batch of images: the pretext task of rotation prediction (see :class:`easyssl.methods.simclr.SimCLR`).

Gidaris et al. (2018, "Unsupervised representation learning by predicting image rotations") trained a network to
tell by how many quarter turns an image was rotated; Dangovski et al. (2022, "Equivariant contrastive learning", E-SSL)
added that prediction to contrastive methods, whose views stay invariant to their augmentations while the features
stay *sensitive* to rotation, and improved SimCLR on CIFAR-10 and ImageNet.
"""

from __future__ import annotations

import torch

#: Quarter turns a rotation-prediction head tells apart: 0, 90, 180 and 270 degrees.
NUM_TURNS = 4


def random_quarter_turns(count: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
    """``count`` quarter-turn counts drawn uniformly from 0-3 (``int64``, on ``device``)."""
    return torch.randint(0, NUM_TURNS, (count,), device=device, generator=generator)


def quarter_turn(images: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Each image of ``images`` (``(B, C, H, W)``, square) turned counter-clockwise by ``turns[i]`` x 90 degrees.

    A new tensor (the input is left as is), in the input's dtype and memory format.
    """
    if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"quarter_turn needs a batch of square images (B, C, H, W), got shape {tuple(images.shape)}")
    if turns.shape != images.shape[:1]:
        raise ValueError(f"quarter_turn needs one turn count per image: {images.shape[0]} images, turns of shape {tuple(turns.shape)}")
    turns = turns.to(images.device).view(-1, 1, 1, 1) % NUM_TURNS
    out = images
    for k in range(1, NUM_TURNS):  # every turn of the whole batch, then a choice per image: no host-device sync
        out = torch.where(turns == k, torch.rot90(images, k, dims=(2, 3)), out)
    channels_last = images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous()
    return out.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


__all__ = ["NUM_TURNS", "quarter_turn", "random_quarter_turns"]
