"""Each method's mechanics: stop-gradients, MoCo v3 with a ViT, SwaV's prototypes and queue, DINO's multi-crop
teacher and temperature warm-up, MAE's masking; and SimCLR's model in a plain loop."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from easyssl.loss import DINOLoss, MAELoss, MoCoV3Loss, NegativeCosineSimilarity, NTXentLoss, SwaVLoss
from easyssl.methods.byol import BYOL
from easyssl.methods.dino import DINO
from easyssl.methods.mae import MAE
from easyssl.methods.mocov3 import MoCoV3
from easyssl.methods.simclr import SimCLR
from easyssl.methods.simsiam import SimSiam
from easyssl.methods.swav import SwaV
from easyssl.nn import TrainingProgress, backbone
from easyssl.transforms.dino import DINOTransform


def _progress(step: int, max_steps: int, max_epochs: int = 1) -> TrainingProgress:
    return TrainingProgress(epoch=0, max_epochs=max_epochs, step=step, max_steps=max_steps)


def test_simclr_model_forward_embed_and_loss():
    model = SimCLR(backbone("resnet-18", width=0.125, input_size=32), out_dim=16)
    x = torch.randn(4, 3, 32, 32)
    assert model(x).shape == (4, 16) and model.embed(x).shape == (4, 64)
    loss = model.training_loss([x, x.flip(-1)], NTXentLoss(), TrainingProgress())
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())


def test_byol_gradient_does_not_reach_the_target_network():
    torch.manual_seed(0)
    model = BYOL(backbone("resnet-18", width=0.125, input_size=32), hidden_dim=32, out_dim=16)
    seen = []
    criterion = NegativeCosineSimilarity()
    original = criterion.forward
    criterion.forward = lambda p, z: (seen.append((p.requires_grad, z.requires_grad)), original(p, z))[1]
    x = [torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)]
    model.training_loss(x, criterion, _progress(0, 10)).backward()
    assert seen == [(True, False), (True, False)]
    assert all(p.grad is None for p in model.backbone_momentum.parameters())
    assert all(p.grad is None for p in model.projection_head_momentum.parameters())
    assert model.backbone.conv1.weight.grad is not None and model.prediction_head.layers[0].weight.grad is not None


def test_simsiam_stop_gradient():
    torch.manual_seed(0)
    model = SimSiam(backbone("resnet-18", width=0.125, input_size=32), hidden_dim=32, out_dim=32, pred_hidden_dim=8)
    seen = []
    criterion = NegativeCosineSimilarity()
    original = criterion.forward
    criterion.forward = lambda p, z: (seen.append((p.requires_grad, z.requires_grad, z.grad_fn)), original(p, z))[1]
    x = [torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)]
    model.training_loss(x, criterion, _progress(0, 10)).backward()
    assert [(p, z, fn) for p, z, fn in seen] == [(True, False, None), (True, False, None)]
    assert model.backbone.conv1.weight.grad is not None


# -------------------------------------------------------------------------------------- MoCo v3


def test_mocov3_trains_with_a_vit_backbone():
    torch.manual_seed(0)
    model = MoCoV3(backbone("vit-tiny", input_size=32, width=0.5, num_layers=2), hidden_dim=32, out_dim=16)
    views = [torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    loss = model.training_loss(views, MoCoV3Loss(), _progress(0, 2))
    loss.backward()
    optimizer.step()
    model.on_after_step(_progress(0, 2))
    assert torch.isfinite(loss) and model.embed(views[0]).shape == (4, 96)


# ------------------------------------------------------------------------------------------- SwaV


def test_swav_prototypes_are_normalised_after_each_step():
    torch.manual_seed(0)
    model = SwaV(backbone("resnet-18", width=0.125, input_size=32), hidden_dim=32, out_dim=16, n_prototypes=8, freeze_prototypes=0.0)
    norms = model.prototypes.layer.weight.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-6)
    views = [torch.randn(6, 3, 32, 32), torch.randn(6, 3, 32, 32), torch.randn(6, 3, 16, 16)]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model.training_loss(views, SwaVLoss(), _progress(5, 10)).backward()
    assert model.prototypes.layer.weight.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.allclose(model.prototypes.layer.weight.norm(dim=1), torch.ones(8), atol=1e-4)
    model.on_after_step(_progress(5, 10))
    assert torch.allclose(model.prototypes.layer.weight.norm(dim=1), torch.ones(8), atol=1e-6)


def test_swav_prototypes_frozen_at_the_start_and_queue():
    torch.manual_seed(0)
    model = SwaV(backbone("resnet-18", width=0.125, input_size=32), hidden_dim=32, out_dim=16, n_prototypes=8, queue_length=12)
    views = [torch.randn(6, 3, 32, 32), torch.randn(6, 3, 32, 32), torch.randn(6, 3, 16, 16)]
    # 5% of 100 steps (shorter than the first of 10 epochs): frozen at step 2, not at step 50
    model.training_loss(views, SwaVLoss(), _progress(2, 100, max_epochs=10)).backward()
    assert torch.count_nonzero(model.prototypes.layer.weight.grad) == 0
    assert model.projection_head.layers[0].weight.grad.abs().sum() > 0
    assert int(model.queue_filled) == 6 and model.queue.shape == (2, 12, 16)
    model.zero_grad()
    seen = []
    criterion = SwaVLoss()
    original = criterion.forward
    criterion.forward = lambda h, l, q=None: (seen.append(q), original(h, l, q))[1]
    model.training_loss(views, criterion, _progress(50, 100, max_epochs=10)).backward()
    assert model.prototypes.layer.weight.grad.abs().sum() > 0
    assert seen[0] is None and int(model.queue_filled) == 12  # the queue is used once full
    model.training_loss(views, criterion, _progress(51, 100, max_epochs=10))
    assert [q.shape for q in seen[1]] == [(12, 8), (12, 8)]


# ------------------------------------------------------------------------------------------- DINO


def test_dino_teacher_sees_only_the_global_views():
    torch.manual_seed(0)
    model = DINO(backbone("resnet-18", width=0.125, input_size=32), hidden_dim=32, bottleneck_dim=16, output_dim=32)
    teacher_inputs, student_inputs = [], []
    model.teacher_backbone.register_forward_hook(lambda m, args, out: teacher_inputs.append(tuple(args[0].shape)))
    model.backbone.register_forward_hook(lambda m, args, out: student_inputs.append(tuple(args[0].shape)))
    views = [torch.randn(4, 3, 32, 32)] * 2 + [torch.randn(4, 3, 16, 16)] * 3
    loss = model.training_loss(views, DINOLoss(output_dim=32), _progress(0, 10))
    assert torch.isfinite(loss)
    assert teacher_inputs == [(8, 3, 32, 32)]  # the two global views, batched together
    assert sorted(student_inputs) == [(8, 3, 32, 32), (12, 3, 16, 16)]
    with pytest.raises(ValueError, match="output_dim"):
        model.training_loss(views, DINOLoss(output_dim=64), _progress(0, 10))


def test_dino_with_vit_backbone_handles_local_crops():
    torch.manual_seed(0)
    model = DINO(backbone("vit-tiny", input_size=32, width=0.5, num_layers=2), hidden_dim=32, bottleneck_dim=16, output_dim=32)
    transform = DINOTransform(input_size=32, n_local_views=2)
    views = [torch.stack(v) for v in zip(*[transform(Image.new("RGB", (40, 40), (i * 40, 80, 120))) for i in range(3)])]
    assert [v.shape[-1] for v in views] == [32, 32, 16, 16]
    loss = model.training_loss(views, DINOLoss(output_dim=32), _progress(0, 10))
    loss.backward()
    assert torch.isfinite(loss) and model.backbone.encoder.pos_embedding.grad is not None


def test_dino_teacher_temperature_warmup_ends_within_a_short_run():
    model = DINO(backbone("resnet-18", width=0.125, input_size=32), hidden_dim=32, bottleneck_dim=16, output_dim=32)
    criterion = DINOLoss(output_dim=32, warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_teacher_temp_epochs=30)
    # 10 epochs of 10 steps: the paper's 30 warm-up epochs are compressed into the first 30% of training
    assert criterion.teacher_temperature(model.loss_epoch(_progress(0, 100, max_epochs=10), criterion)) == pytest.approx(0.04)
    mid = criterion.teacher_temperature(model.loss_epoch(_progress(15, 100, max_epochs=10), criterion))
    assert 0.04 < mid < 0.07
    assert criterion.teacher_temperature(model.loss_epoch(_progress(30, 100, max_epochs=10), criterion)) == pytest.approx(0.07)
    # a long run uses the plain epoch: 300 epochs, warm-up over the first 30
    assert model.loss_epoch(_progress(50, 1000, max_epochs=300), criterion) == pytest.approx(15.0)


# ------------------------------------------------------------------------------------------- MAE


def test_mae_mask_ratio_and_loss_on_masked_patches_only():
    torch.manual_seed(0)
    model = MAE(backbone("vit-tiny", input_size=32, width=0.5, num_layers=2), decoder_dim=32, decoder_depth=1, decoder_heads=2)
    images = torch.randn(3, 3, 32, 32)
    pred, target, mask = model(images)
    n = model.num_patches
    assert n == 64 and pred.shape == target.shape == (3, 64, 4 * 4 * 3) and mask.shape == (3, 64)
    assert torch.equal(mask.sum(dim=1), torch.full((3,), 48.0))  # 75% of 64 patches masked
    assert torch.allclose(model.unpatchify(target), images)
    criterion = MAELoss()
    pred = pred.detach().requires_grad_(True)
    loss = criterion(pred, target, mask)
    loss.backward()
    visible = mask == 0
    assert torch.count_nonzero(pred.grad[visible]) == 0 and torch.count_nonzero(pred.grad[~visible]) > 0
    changed = pred.detach().clone()
    changed[visible] += 100.0
    assert criterion(changed, target, mask).item() == pytest.approx(loss.item())
    # the encoder saw only the visible patches (plus the class token)
    ids_keep, _, m = model.random_masking(2)
    assert model.encode(images[:2], ids_keep).shape == (2, 1 + 16, 96)
    assert model.embed(images).shape == (3, 96)


def test_mae_needs_a_vit():
    with pytest.raises(TypeError, match="vit-tiny"):
        MAE(backbone("resnet-18", width=0.125, input_size=32))
