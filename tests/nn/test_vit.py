"""ViT backbones: torchvision's VisionTransformer as a feature extractor, small-patch ViTs for small images."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.vision_transformer import VisionTransformer

from easyssl.nn import available_backbones, backbone
from easyssl.nn.vit import VIT_BACKBONES, ViT, sincos_position_embedding, small_patch_size


def test_vits_are_in_the_registry_from_the_start():
    # No method import, no registration call: importing easyssl.nn is enough.
    assert set(VIT_BACKBONES) == {"vit-tiny", "vit-small", "vit-b-16", "vit-b-32", "vit-l-16", "vit-l-32", "vit-h-14"}
    assert set(VIT_BACKBONES) <= set(available_backbones())
    from easyssl.models import register_vit_backbones  # kept in the facade: idempotent

    register_vit_backbones()
    assert set(VIT_BACKBONES) <= set(available_backbones())


def test_vit_tiny_on_small_images():
    net = backbone("vit-tiny", input_size=32)
    assert isinstance(net, VisionTransformer) and isinstance(net, ViT)
    assert net.patch_size == 4 and net.num_features == 192 and net.num_patches == 64
    assert len(net.encoder.layers) == 12 and net.num_heads == 3
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 192) and torch.isfinite(out).all()


def test_patch_size_follows_the_input_size():
    assert [small_patch_size(s) for s in (32, 64, 96, 128, 224)] == [4, 4, 8, 8, 16]
    net = backbone("vit-small", input_size=96, num_layers=2)
    assert net.patch_size == 8 and net.num_features == 384 and net.num_heads == 6
    assert net(torch.randn(1, 3, 96, 96)).shape == (1, 384)
    assert backbone("vit_tiny", input_size=32, patch_size=8, num_layers=1).patch_size == 8


def test_width_scales_the_dimension_in_whole_heads():
    net = backbone("vit-tiny", input_size=32, width=0.5, num_layers=1)
    assert net.num_features == 96 and net.num_features % net.num_heads == 0
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 96)


def test_other_input_sizes_interpolate_the_position_embedding():
    net = backbone("vit-tiny", input_size=32, width=0.5, num_layers=1)
    assert net.position_embedding(8, 8) is net.encoder.pos_embedding
    assert net.position_embedding(4, 4).shape == (1, 17, 96)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 96)  # a DINO local crop
    assert net.forward_tokens(torch.randn(2, 3, 16, 16)).shape == (2, 17, 96)
    with pytest.raises(ValueError, match="multiples of the patch size"):
        net(torch.randn(1, 3, 30, 30))


def test_torchvision_vit_without_head_and_with_torchvision_names():
    net = backbone("vit-b-16", input_size=64)
    assert net.num_features == 768 and net.patch_size == 16 and len(net.encoder.layers) == 12
    assert not any(key.startswith("heads") for key in net.state_dict())
    # same parameter names as torchvision's model (its checkpoints load with strict=False)
    from torchvision.models import vit_b_16

    reference = vit_b_16(weights=None, image_size=64)
    missing, unexpected = reference.load_state_dict(net.state_dict(), strict=False)
    assert unexpected == [] and set(missing) == {"heads.head.weight", "heads.head.bias"}
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 64)).shape == (1, 768)
    assert backbone("vit-l-16", input_size=32, width=0.25, num_layers=1).num_features == 256


def test_sincos_position_embedding():
    emb = sincos_position_embedding(4, 8)
    assert emb.shape == (1, 17, 8) and torch.equal(emb[0, 0], torch.zeros(8))
    assert emb[0, 1:].abs().max() <= 1.0
    assert len({tuple(row.tolist()) for row in emb[0, 1:]}) == 16  # every position is distinct
