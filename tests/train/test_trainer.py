import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from easyssl import MultiViewCollate, SelfSupervisedEmbedding, SimCLRTransform, SSLDataset, backbone, load_checkpoint
from easyssl.runtime.budget import parse_max_time
from easyssl.loss import NTXentLoss
from easyssl.models import SimCLR
from easyssl.transforms import EvalTransform


def _trainer(folder, lr=0.05, **kwargs):
    torch.manual_seed(0)
    dataset = SSLDataset(folder, transform=SimCLRTransform(input_size=32))
    loader = DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True, collate_fn=MultiViewCollate())
    model = SimCLR(backbone("resnet-18", width=0.125, input_size=32), out_dim=16)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return SelfSupervisedEmbedding(model, NTXentLoss(temperature=0.5), optimizer, loader, device="cpu", **kwargs)


def test_max_time_formats():
    assert parse_max_time("00:00:10:00") == 600
    assert parse_max_time("01:00:00") == 3600
    assert parse_max_time(90) == 90 and parse_max_time("90") == 90
    assert parse_max_time({"minutes": 2}) == 120
    assert parse_max_time(None) is None
    with pytest.raises(ValueError, match="DD:HH:MM:SS"):
        parse_max_time("ten minutes")


def test_trains_writes_checkpoint_per_epoch_and_history(demo_folder, tmp_path):
    trainer = _trainer(demo_folder)
    path = trainer.train_embedding(max_epochs=2, checkpoint_dir=tmp_path, progress_bar=False, keep_epoch_checkpoints=True)
    assert path == os.path.join(tmp_path, "last.ckpt")
    assert sorted(os.listdir(tmp_path)) == ["epoch=1.ckpt", "epoch=2.ckpt", "last.ckpt", "metrics.csv", "training_curve.png"]
    state = load_checkpoint(path)
    assert state["epoch"] == 2 and state["step"] == 10  # 40 images / 8 per batch * 2 epochs
    assert [h["epoch"] for h in trainer.history] == [1, 2]
    assert all(h["images_per_second"] > 0 and np.isfinite(h["loss"]) for h in trainer.history)


def test_max_steps_stops_mid_epoch_and_saves(demo_folder, tmp_path):
    trainer = _trainer(demo_folder)
    trainer.train_embedding(max_epochs=None, max_steps=3, checkpoint_dir=tmp_path, progress_bar=False)
    state = load_checkpoint(tmp_path / "last.ckpt")
    assert trainer.progress.step == 3 and state["step"] == 3 and state["epoch"] == 0


def test_loss_falls_on_a_fixed_batch(demo_folder):
    trainer = _trainer(demo_folder, lr=0.1)
    views, _, _ = next(iter(trainer.dataloader))
    trainer.dataloader = [(views, None, None)] * 30
    trainer.train_embedding(max_epochs=1, progress_bar=False, checkpoint_dir=None)
    losses = []
    trainer.model.train()
    # The per-epoch history has one mean; re-run step by step to see the trend.
    trainer2 = _trainer(demo_folder, lr=0.1)
    for _ in range(30):
        loss = trainer2.step_module(trainer2.views((views,)), trainer2.progress)
        trainer2.optimizer.zero_grad(); loss.backward(); trainer2.optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.1


def test_nan_loss_stops_with_advice(demo_folder):
    trainer = _trainer(demo_folder)
    trainer.criterion = lambda z0, z1: (z0 * float("nan")).sum()
    from easyssl.train import TrainStep

    trainer.step_module = TrainStep(trainer.model, torch.nn.Identity())
    trainer.model.training_loss = lambda views, criterion, progress: trainer.model(views[0]).sum() * float("nan")
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        trainer.train_embedding(max_epochs=1, progress_bar=False, checkpoint_dir=None)


def test_resume_restores_everything(demo_folder, tmp_path):
    a = _trainer(demo_folder)
    a.train_embedding(max_epochs=1, checkpoint_dir=tmp_path, progress_bar=False)
    b = _trainer(demo_folder)
    b.train_embedding(max_epochs=2, checkpoint_dir=tmp_path, resume_from=tmp_path / "last.ckpt", progress_bar=False)
    assert b.progress.step == 10 and load_checkpoint(tmp_path / "last.ckpt")["epoch"] == 2
    assert len(b.history) == 2  # the first epoch's record came from the checkpoint


def test_embed_returns_float32_in_loader_order(demo_folder):
    trainer = _trainer(demo_folder)
    loader = DataLoader(SSLDataset(demo_folder, transform=EvalTransform(32)), batch_size=16, collate_fn=MultiViewCollate())
    embeddings, labels, filenames = trainer.embed(loader, progress_bar=False)
    assert embeddings.shape == (40, 64) and embeddings.dtype == np.float32
    assert filenames == SSLDataset(demo_folder).filenames and labels == [i // 8 for i in range(40)]
    again, _, _ = trainer.embed(loader, progress_bar=False)
    assert np.allclose(embeddings, again)  # eval mode: deterministic


def test_atomic_checkpoint_survives_a_failed_write(demo_folder, tmp_path, monkeypatch):
    trainer = _trainer(demo_folder)
    path = trainer.save_checkpoint(tmp_path / "last.ckpt", epochs_done=1)
    before = open(path, "rb").read()

    def broken_save(obj, handle, *args, **kwargs):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint(path, epochs_done=2)
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_progress_fraction_follows_the_nearer_of_steps_and_time():
    from easyssl.nn import TrainingProgress

    assert TrainingProgress(step=5, max_steps=10).fraction == 0.5
    assert TrainingProgress(step=1, max_steps=10, elapsed=30, max_time=60).fraction == 0.5
    assert TrainingProgress(step=9, max_steps=10, elapsed=30, max_time=60).fraction == 0.9
    assert TrainingProgress(step=1, max_steps=10, elapsed=90, max_time=60).fraction == 1.0


def test_time_budget_stops_training_and_drives_the_schedule(demo_folder, tmp_path):
    trainer = _trainer(demo_folder)
    lrs = []
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda *a, **k: (lrs.append(trainer.optimizer.param_groups[0]["lr"]), step(*a, **k))[1]
    trainer.train_embedding(max_epochs=None, max_time=8.0, checkpoint_dir=tmp_path, progress_bar=False)
    # The budget is wall time from the call's start; training stops before a step that would cross it.
    assert 6.0 <= trainer.elapsed <= 9.0 and trainer.progress.fraction > 0.7
    assert len(lrs) >= 3 and lrs[0] == 0.05 and all(a >= b for a, b in zip(lrs, lrs[1:])) and lrs[-1] < 0.05
    assert load_checkpoint(tmp_path / "last.ckpt")["elapsed"] == pytest.approx(trainer.elapsed)


def _conv_weights(model):
    return [p for p in model.parameters() if p.ndim == 4]


def test_the_trainer_leaves_the_callers_model_as_it_was(demo_folder):
    torch.manual_seed(0)
    model = SimCLR(backbone("resnet-18", width=0.125, input_size=32), out_dim=16)
    types_before = [type(m) for m in model.modules()]
    parameters = list(model.parameters())
    dataset = SSLDataset(demo_folder, transform=SimCLRTransform(input_size=32))
    loader = DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True, collate_fn=MultiViewCollate())
    trainer = SelfSupervisedEmbedding(model, NTXentLoss(), torch.optim.SGD(model.parameters(), lr=0.05), loader, device="cpu")
    assert trainer.channels_last  # the views go channels-last on a CPU...
    trainer.train_embedding(max_steps=2, progress_bar=False, checkpoint_dir=None)
    # ...but the model is the caller's own: same object, same modules, same parameter objects, same memory format.
    assert trainer.model is model and [type(m) for m in model.modules()] == types_before
    assert all(a is b for a, b in zip(model.parameters(), parameters))
    assert all(p.is_contiguous() for p in _conv_weights(model))
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())


def test_a_seeded_trainer_leaves_the_global_random_state_alone(demo_folder):
    trainer = _trainer(demo_folder, seed=3)  # _trainer seeds torch globally before building
    before = (torch.get_rng_state(), np.random.get_state()[1].copy())
    trainer.train_embedding(max_steps=2, progress_bar=False, checkpoint_dir=None)
    assert torch.equal(torch.get_rng_state(), before[0]) and np.array_equal(np.random.get_state()[1], before[1])
    # Without a seed the trainer draws from the global generators, like a plain PyTorch loop.
    unseeded = _trainer(demo_folder)
    state = torch.get_rng_state()
    unseeded.train_embedding(max_steps=2, progress_bar=False, checkpoint_dir=None)
    assert not torch.equal(torch.get_rng_state(), state)


def test_skipped_files_are_logged_to_the_easyssl_logger(demo_folder, caplog):
    with open(os.path.join(demo_folder, "circle", "broken.png"), "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    trainer = _trainer(demo_folder)
    with caplog.at_level("WARNING", logger="easyssl"):
        trainer.train_embedding(max_epochs=1, progress_bar=False, checkpoint_dir=None)
    assert trainer.skipped_files == ["circle/broken.png"]
    assert [r.name for r in caplog.records if "unreadable file(s) during training" in r.getMessage()] == ["easyssl"]
