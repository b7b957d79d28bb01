"""Every method of METHODS trained by name through the API, then embedded; and each method's loss falls on a tiny batch."""

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
from easyssl.loss import DINOLoss, NegativeCosineSimilarity
from easyssl.methods import METHODS, build_model, get_method
from easyssl.methods.byol import BYOL
from easyssl.nn import TrainingProgress, backbone

#: Small heads, so that every test runs in seconds on a CPU.
SMALL_HEADS = {
    "simclr": {"hidden_dim": 64, "out_dim": 32},
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


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return easyssl.make_demo_dataset(tmp_path_factory.mktemp("demo"), images_per_class=8, image_size=32)


@pytest.fixture(scope="module")
def tiny_images(tiny_folder):
    files = sorted(glob.glob(os.path.join(tiny_folder, "*", "*.png")))
    return [Image.open(f).convert("RGB") for f in files]


def _progress(step: int, max_steps: int, max_epochs: int = 1) -> TrainingProgress:
    return TrainingProgress(epoch=0, max_epochs=max_epochs, step=step, max_steps=max_steps)


# ------------------------------------------------------------------------- train by name, then embed


def _config(method: str, checkpoint_dir: str, max_steps: int, **extra) -> dict:
    return dict(
        method=method,
        model={**_tiny_backbone_config(method), **SMALL_HEADS[method]},
        criterion=SMALL_CRITERION.get(method, {}),
        collate={"input_size": 32, **SMALL_VIEWS.get(method, {})},
        loader={"batch_size": 16, "num_workers": 0},
        trainer={"max_steps": max_steps, "max_epochs": None, "progress_bar": False},
        checkpoint_dir=checkpoint_dir,
        **extra,
    )


@pytest.mark.parametrize("method", list(METHODS))
def test_train_by_name_embed_and_resume(method, tiny_folder, tmp_path):
    checkpoint = easyssl.train_embedding_model(input_dir=tiny_folder, **_config(method, str(tmp_path / method), max_steps=2))
    assert os.path.exists(checkpoint)
    embeddings, labels, filenames = easyssl.embed_images(tiny_folder, checkpoint)  # the checkpoint alone rebuilds the model
    assert embeddings.dtype == np.float32 and embeddings.ndim == 2 and embeddings.shape[0] == 40
    assert np.isfinite(embeddings).all()
    assert len(labels) == len(filenames) == 40
    expected_dim = 96  # vit-tiny at width 0.5; resnet-18 at width 0.125 pools its last two stages on a CPU: 32 + 64
    assert embeddings.shape[1] == expected_dim
    saved = easyssl.load_checkpoint(checkpoint)
    assert saved["config"]["method"] == method and saved["step"] == 2
    # resume: the run goes on from step 2 with the saved model and loss state
    resumed = easyssl.train_embedding_model(input_dir=tiny_folder, **_config(method, str(tmp_path / method), max_steps=3, resume=True))
    again = easyssl.load_checkpoint(resumed)
    assert again["step"] == 3 and set(again["model"]) == set(saved["model"])
    assert any(not torch.equal(again["model"][k], saved["model"][k]) for k in saved["model"] if saved["model"][k].is_floating_point())


@pytest.mark.parametrize("method", list(METHODS))
def test_train_by_name_on_the_command_line(method, tiny_folder, tmp_path, capsys):
    from easyssl.cli import main

    run = tmp_path / "run"
    sets = [f"model.{key}={value!r}" for key, value in {**_tiny_backbone_config(method), **SMALL_HEADS[method]}.items()]
    sets += [f"criterion.{key}={value!r}" for key, value in SMALL_CRITERION.get(method, {}).items()]
    sets += [f"collate.{key}={value!r}" for key, value in SMALL_VIEWS.get(method, {}).items()]
    argv = ["train", tiny_folder, "--method", method, "--max-steps", "1", "--input-size", "32", "--batch-size", "16",
            "--num-workers", "0", "--checkpoint-dir", str(run), "--quiet"]
    assert main(argv + [arg for s in sets for arg in ("--set", s)]) == 0, capsys.readouterr().err
    assert easyssl.load_checkpoint(str(run / "last.ckpt"))["config"]["method"] == method


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


def _resolved(criterion: dict) -> dict:
    """The loss arguments with "auto" resolved as on one process (no gathering)."""
    return {key: False if value == "auto" else value for key, value in criterion.items()}


def _build(method: str, **model):
    spec = get_method(method)
    net = build_model(spec, {**_tiny_backbone_config(method), **SMALL_HEADS[method], **model}, input_size=32)
    criterion = spec.criterion(**_resolved({**spec.criterion_defaults, **SMALL_CRITERION.get(method, {})}))
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


@pytest.mark.parametrize("method", ["simclr", "mocov3", "byol", "simsiam", "barlowtwins", "vicreg", "swav", "nnclr", "mae"])
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
