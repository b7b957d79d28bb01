"""The SSL methods beyond SimCLR: training by name, learning on a tiny batch, and each method's mechanics
(momentum encoders, stop-gradients, prototypes, multi-crop teacher, masking)."""

from __future__ import annotations

import glob
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

import easyssl
from easyssl.data import MultiViewCollate
from easyssl.loss import DINOLoss, NegativeCosineSimilarity, SwaVLoss
from easyssl.methods import build_model, get_method
from easyssl.models.backbones import backbone
from easyssl.models.base import TrainingProgress
from easyssl.models.byol import BYOL
from easyssl.models.dino import DINO
from easyssl.models.mae import MAE, MAELoss
from easyssl.models.moco import MoCo, MoCoV3, MoCoV3Loss
from easyssl.models.momentum import deactivate_requires_grad, momentum_copy, update_momentum
from easyssl.models.nnclr import NNMemoryBankModule
from easyssl.models.simsiam import SimSiam
from easyssl.models.swav import SwaV
from easyssl.transforms.dino import DINOTransform

METHODS = ["moco", "mocov3", "byol", "simsiam", "barlowtwins", "vicreg", "dino", "swav", "nnclr", "mae"]

#: Small heads, so that every test runs in seconds on a CPU.
SMALL_HEADS = {
    "moco": {"hidden_dim": 64, "out_dim": 32},
    "mocov3": {"hidden_dim": 64, "out_dim": 32},
    "byol": {"hidden_dim": 64, "out_dim": 32},
    "simsiam": {"hidden_dim": 64, "out_dim": 64, "pred_hidden_dim": 16},
    "barlowtwins": {"hidden_dim": 64, "out_dim": 64},
    "vicreg": {"hidden_dim": 64, "out_dim": 64},
    "dino": {"hidden_dim": 64, "bottleneck_dim": 32, "output_dim": 64},
    "swav": {"hidden_dim": 64, "out_dim": 32, "n_prototypes": 16, "queue_length": 16},
    "nnclr": {"hidden_dim": 64, "out_dim": 32, "pred_hidden_dim": 64, "support_set_size": 64},
    "mae": {"decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 2},
}
SMALL_CRITERION = {"dino": {"output_dim": 64}, "moco": {"memory_bank_size": 16}}
SMALL_VIEWS = {"dino": {"n_local_views": 2}, "swav": {"n_local_views": 2}}


def _tiny_backbone_config(method: str) -> dict:
    if method == "mae":
        return {"backbone": "vit-tiny", "width": 0.5}
    return {"backbone": "resnet-18", "width": 0.125}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these tiny models run faster without threads contending for 2 shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return easyssl.make_demo_dataset(tmp_path_factory.mktemp("demo"), images_per_class=8, image_size=32)


@pytest.fixture(scope="module")
def tiny_images(tiny_folder):
    files = sorted(glob.glob(os.path.join(tiny_folder, "*", "*.png")))
    return [Image.open(f).convert("RGB") for f in files]


def _progress(step: int, max_steps: int, max_epochs: int = 1) -> TrainingProgress:
    return TrainingProgress(epoch=0, max_epochs=max_epochs, step=step, max_steps=max_steps)


# ---------------------------------------------------------------------------------------- registry


def test_every_method_and_vit_is_registered():
    names = easyssl.available_methods()
    for method in METHODS + ["simclr"]:
        assert method in names
        spec = get_method(method)
        assert spec.description and spec.optimizer_defaults["name"] in ("sgd", "adamw", "lars")
    assert get_method("MoCo-v3").name == "mocov3" and get_method("barlow_twins").name == "barlowtwins"
    from easyssl.models.backbones import available_backbones

    for name in ("vit-tiny", "vit-small", "vit-b-16", "vit-b-32", "vit-l-16"):
        assert name in available_backbones()


def test_default_configs_are_complete():
    config = easyssl.default_config("dino")
    assert config["model"]["output_dim"] == config["criterion"]["output_dim"]
    assert config["collate"]["n_local_views"] == 6
    assert easyssl.default_config("mae")["model"]["backbone"] == "vit-tiny"
    moco = easyssl.default_config("moco")["criterion"]
    assert moco["temperature"] == 0.2 and moco["memory_bank_size"] == 4096
    assert easyssl.default_config("byol")["collate"]["solarization_prob"] == (0.0, 0.2)


# ------------------------------------------------------------------------- train by name, then embed


@pytest.mark.parametrize("method", METHODS)
def test_train_by_name_and_embed(method, tiny_folder, tmp_path):
    checkpoint = easyssl.train_embedding_model(
        input_dir=tiny_folder,
        method=method,
        model={**_tiny_backbone_config(method), **SMALL_HEADS[method]},
        criterion=SMALL_CRITERION.get(method, {}),
        collate={"input_size": 32, **SMALL_VIEWS.get(method, {})},
        loader={"batch_size": 16, "num_workers": 0},
        trainer={"max_steps": 2, "max_epochs": None, "progress_bar": False},
        checkpoint_dir=str(tmp_path / method),
    )
    assert os.path.exists(checkpoint)
    embeddings, labels, filenames = easyssl.embed_images(tiny_folder, checkpoint)  # the checkpoint alone rebuilds the model
    assert embeddings.dtype == np.float32 and embeddings.ndim == 2 and embeddings.shape[0] == 40
    assert np.isfinite(embeddings).all()
    assert len(labels) == len(filenames) == 40
    expected_dim = 96 if method == "mae" else 64  # vit-tiny at width 0.5; resnet-18 at width 0.125
    assert embeddings.shape[1] == expected_dim


def test_moco_resume_restores_queue_and_momentum_encoder(tiny_folder, tmp_path):
    common = dict(
        method="moco", model={"backbone": "resnet-18", "width": 0.125, "hidden_dim": 32, "out_dim": 16},
        criterion={"memory_bank_size": 32}, collate={"input_size": 32}, loader={"batch_size": 16, "num_workers": 0},
        checkpoint_dir=str(tmp_path),
    )
    path = easyssl.train_embedding_model(tiny_folder, trainer={"max_steps": 2, "max_epochs": None, "progress_bar": False}, **common)
    saved = easyssl.load_checkpoint(path)
    assert "backbone_momentum.conv1.weight" in saved["model"]
    assert saved["criterion"]["memory_bank.bank"].shape == (32, 16)
    run = easyssl.build_training(tiny_folder, resume=True, trainer={"max_steps": 3, "max_epochs": None, "progress_bar": False}, **common)
    run.trainer.load_checkpoint(run.resume_from)
    assert torch.equal(run.trainer.criterion.memory_bank.bank, saved["criterion"]["memory_bank.bank"])
    assert torch.equal(run.trainer.model.backbone_momentum.conv1.weight, saved["model"]["backbone_momentum.conv1.weight"])


# --------------------------------------------------------------------- the loss falls on a tiny batch


def _fixed_views(method: str, images, **collate):
    spec = get_method(method)
    transform = spec.transform(input_size=32, **{**spec.collate_defaults, **collate})
    views, _, _ = MultiViewCollate()([(transform(image), 0, "") for image in images])
    return views


def _build(method: str, **model):
    spec = get_method(method)
    net = build_model(spec, {**_tiny_backbone_config(method), **SMALL_HEADS[method], **model}, input_size=32)
    criterion = spec.criterion(**{**spec.criterion_defaults, **SMALL_CRITERION.get(method, {})})
    return net, criterion


def _fit(model, criterion, batches, steps: int, lr: float = 1e-3, skip: int = 0) -> list[float]:
    """A plain PyTorch loop over fixed batches of views; returns the losses after ``skip`` warm-up steps."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for step in range(steps):
        progress = _progress(step, steps)
        loss = model.training_loss(batches[step % len(batches)], criterion, progress)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.on_after_step(progress)
        losses.append(loss.item())
    assert all(math.isfinite(x) for x in losses)
    return losses[skip:]


def _falls(losses: list[float]) -> bool:
    return float(np.mean(losses[-5:])) < float(np.mean(losses[:5]))


@pytest.mark.parametrize("method", ["mocov3", "byol", "simsiam", "barlowtwins", "vicreg", "swav", "nnclr", "mae"])
def test_loss_falls_on_a_fixed_batch(method, tiny_images):
    torch.manual_seed(0)
    model, criterion = _build(method, **({"queue_length": 0} if method == "swav" else {}))
    views = _fixed_views(method, tiny_images[::5], **SMALL_VIEWS.get(method, {}))  # 8 images
    losses = _fit(model, criterion, [views], steps=16)
    assert _falls(losses), losses


def test_moco_loss_falls_once_the_queue_holds_real_keys(tiny_images):
    # A queue filled with the very batch being trained on holds copies of the positives, so the
    # batches rotate over the 40 images (5 batches of 8, queue of 16: two batches of keys).
    torch.manual_seed(0)
    model, criterion = _build("moco")
    batches = [_fixed_views("moco", tiny_images[i::5]) for i in range(5)]
    losses = _fit(model, criterion, batches, steps=24, skip=2)  # the first 2 steps still see the random initial queue
    assert _falls(losses), losses


def test_dino_loss_falls_once_the_centre_follows_the_teacher(tiny_images):
    # At initialisation all teacher outputs are alike; centring them makes the teacher uniform and
    # the loss first *rises* towards log(output_dim) whatever the student does. Starting from a
    # centre that already follows the teacher, the loss falls as the student learns.
    torch.manual_seed(0)
    model, _ = _build("dino", momentum=0.99)
    criterion = DINOLoss(output_dim=64, warmup_teacher_temp=0.04, teacher_temp=0.04, warmup_teacher_temp_epochs=0)
    views = _fixed_views("dino", tiny_images[::4], n_local_views=2)
    with torch.no_grad():
        for _ in range(50):
            criterion.update_center([model.forward_teacher(torch.cat(views[:2]))])
    losses = _fit(model, criterion, [views], steps=25)
    assert _falls(losses), losses


def test_byol_docstring_loop_learns(tiny_images):
    # The plain loop of BYOL's docstring, with forward / forward_target / update_momentum.
    torch.manual_seed(0)
    model = BYOL(backbone("resnet-18", width=0.125, input_size=32), hidden_dim=64, out_dim=32)
    criterion = NegativeCosineSimilarity()
    x1, x2 = _fixed_views("byol", tiny_images[::4])
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    losses = []
    for step in range(20):
        p1, p2 = model(x1), model(x2)
        z1, z2 = model.forward_target(x1), model.forward_target(x2)
        loss = 0.5 * (criterion(p1, z2) + criterion(p2, z1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        model.update_momentum(step / 20)
        losses.append(loss.item())
    assert _falls(losses), losses


# -------------------------------------------------------------------------------- momentum encoders


def test_update_momentum_by_hand():
    online, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    deactivate_requires_grad(target)
    expected = [0.9 * t + 0.1 * o for t, o in zip(target.parameters(), online.parameters())]
    update_momentum(online, target, 0.9)
    for got, want in zip(target.parameters(), expected):
        assert torch.allclose(got, want)
        assert not got.requires_grad
    copy = momentum_copy(online)
    assert all(not p.requires_grad for p in copy.parameters()) and all(p.requires_grad for p in online.parameters())
    with pytest.raises(ValueError):
        update_momentum(online, target, 1.5)


MOMENTUM_MODELS = {
    "moco": (lambda b: MoCo(b, hidden_dim=32, out_dim=16), [("backbone", "backbone_momentum"), ("projection_head", "projection_head_momentum")], 0.996),
    "mocov3": (lambda b: MoCoV3(b, hidden_dim=32, out_dim=16), [("backbone", "backbone_momentum"), ("projection_head", "projection_head_momentum")], 0.99),
    "byol": (lambda b: BYOL(b, hidden_dim=32, out_dim=16), [("backbone", "backbone_momentum"), ("projection_head", "projection_head_momentum")], 0.99),
    "dino": (lambda b: DINO(b, hidden_dim=32, bottleneck_dim=16, output_dim=32), [("backbone", "teacher_backbone"), ("head", "teacher_head")], 0.996),
}


@pytest.mark.parametrize("name", list(MOMENTUM_MODELS))
def test_momentum_encoder_after_a_step(name):
    torch.manual_seed(0)
    build, pairs, start = MOMENTUM_MODELS[name]
    model = build(backbone("resnet-18", width=0.125, input_size=32))
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    for online_name, target_name in pairs:
        target = getattr(model, target_name)
        assert all(id(p) not in trainable for p in target.parameters()), "momentum encoder must not be optimised"
        assert any(key.startswith(target_name + ".") for key in model.state_dict()), "checkpoints must hold it"
    # Move the online network away from its copy, as an optimiser step would.
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    old = {target: [p.clone() for p in getattr(model, target).parameters()] for _, target in pairs}
    progress = _progress(step=30, max_steps=100)
    m = 1.0 - (1.0 - start) * (math.cos(math.pi * 0.3) + 1) / 2  # cosine schedule start -> 1 at 30% of training
    model.on_after_step(progress)
    for online_name, target_name in pairs:
        for new, before, online in zip(getattr(model, target_name).parameters(), old[target_name], getattr(model, online_name).parameters()):
            assert torch.allclose(new, m * before + (1 - m) * online, atol=1e-6)


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


def test_mocov3_loss_by_hand():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    k = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    t = 0.5
    # normalised: q = [[1, 0], [0, 1]], k = [[1, 0], [s, s]] with s = 1/sqrt(2)
    s = 1 / math.sqrt(2)
    logits = torch.tensor([[1.0, s], [0.0, s]]) / t
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])) * 2 * t
    assert MoCoV3Loss(temperature=t)(q, k).item() == pytest.approx(expected.item(), rel=1e-6)


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


# ------------------------------------------------------------------------------------------ NNCLR


def test_nn_memory_bank_returns_nearest_neighbours():
    bank = NNMemoryBankModule(size=3, dim=2)
    z = torch.tensor([[1.0, 0.1], [0.1, 1.0]])
    assert torch.equal(bank(z, update=True), z)  # empty support set: unchanged
    query = torch.tensor([[0.0, 5.0], [3.0, 0.0]])
    expected = torch.nn.functional.normalize(z, dim=1).flip(0)
    assert torch.allclose(bank(query), expected)
    bank(torch.tensor([[-1.0, 0.0], [0.0, -1.0]]), update=True)  # wraps around: 3 slots
    assert int(bank.filled) == 3 and int(bank.ptr) == 1
    assert torch.allclose(bank(torch.tensor([[-2.0, 0.1]])), torch.tensor([[-1.0, 0.0]]))
    assert "bank" in bank.state_dict()


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
