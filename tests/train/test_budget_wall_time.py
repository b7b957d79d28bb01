"""Issue 11 item 4: a time budget is the wall time of the whole call (start-up, cache fill, whitening pass included)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch
from PIL import Image

import easyssl
from easyssl.runtime.budget import TimeBudget
from easyssl.train.timing import BudgetPlan
from easyssl.train.whitening import calibrate_embeddings


def _small_folder(root, n: int = 600, size: int = 28):
    """``n`` grayscale PNGs of ``size`` px in 4 class folders (Fashion-MNIST-like)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"c{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L").save(folder / f"{i:04d}.png")
    return root


@pytest.mark.parametrize("seconds", [6.0])
def test_train_embedding_model_returns_within_its_budget(tmp_path, seconds):
    folder = _small_folder(tmp_path / "images")
    start = time.perf_counter()
    easyssl.train_embedding_model(folder, checkpoint_dir=tmp_path / "run", trainer={"max_time": seconds, "progress_bar": False})
    wall = time.perf_counter() - start
    # The bound: within max(3 %, 2 s) of the budget, counted from the call's start.
    assert abs(wall - seconds) <= max(0.03 * seconds, 2.0), f"max_time={seconds} s took {wall:.2f} s"
    state = torch.load(tmp_path / "run" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["elapsed"] <= seconds + 1.0 and state["model"]  # the model is saved with its whitening
    assert any(key.endswith("embedding_mean") for key in state["model"])


def test_the_budget_counts_from_the_given_start_and_stops_before_an_overrunning_step():
    budget = TimeBudget(10.0)
    budget.begin(started_at=time.perf_counter() - 7.0)  # 7 s already spent setting up
    plan = BudgetPlan(budget, calibration_images=0)
    plan.record_checkpoint(0.0)
    assert 7.0 <= budget.used() < 8.0 and not plan.stop_now()
    plan.record_step(images=10, seconds=30.0)  # the first step: not a rate, but the only guess of the next step's time
    assert plan.stop_now() and plan.images == 0
    plan.record_step(images=10, seconds=0.5)
    assert not plan.stop_now() and plan.images == 10
    plan.record_step(images=10, seconds=9.0)  # smoothed: the next step would end past 10 s
    assert plan.stop_now()
    budget.begin(already=9.5)  # a resumed run that used 9.5 s before
    assert budget.deadline() == pytest.approx(budget.started_at + 0.5)


def test_the_plan_sets_aside_the_calibration_pass_and_the_last_checkpoint():
    budget = TimeBudget(100.0)
    plan = BudgetPlan(budget, calibration_images=8000)
    plan.record_step(images=10, seconds=30.0)  # warm-up step, left out
    plan.record_step(images=1000, seconds=10.0)  # 100 training images/s, embedding 800/s (EMBED_COST = 1/8)
    plan.record_checkpoint(1.5)
    plan.update()
    assert plan.calibration_seconds() == pytest.approx(10.0)
    assert budget.stop_at == pytest.approx(100.0 - 10.0 - 1.5)
    assert plan.calibration_deadline() == pytest.approx(budget.started_at + 98.5)
    plan.calibration_images = 30_000  # 37.5 s of embedding: at most a fifth of the budget is kept back
    assert plan.calibration_seconds() == pytest.approx(20.0)


class _Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 4)
        self.seen = 0

    def embed(self, images):
        self.seen += images.shape[0]
        return self.linear(images.float().mean((2, 3)))

    def set_embedding_statistics(self, mean, whitening):
        self.statistics = (mean, whitening)


def test_the_calibration_pass_stops_at_its_deadline_after_one_batch():
    data = [(torch.rand(3, 4, 4), 0, f"{i}") for i in range(64)]
    loader = torch.utils.data.DataLoader(data, batch_size=8, collate_fn=lambda b: (torch.stack([x[0] for x in b]), torch.zeros(len(b)), [x[2] for x in b]))
    model = _Model()
    assert calibrate_embeddings(model, loader, device="cpu", precision="32", deadline=time.perf_counter() - 1) == 8
    assert model.seen == 8 and hasattr(model, "statistics")
    model = _Model()
    assert calibrate_embeddings(model, loader, device="cpu", precision="32", deadline=time.perf_counter() + 60) == 64


def test_the_call_logs_where_its_wall_time_went(tmp_path, caplog):
    """A short run pays fixed costs outside its epochs (issue 11: 5 of 12 s on a GPU): one INFO line names each phase."""
    import re

    folder = _small_folder(tmp_path / "images", n=256)
    caplog.set_level("INFO", logger="easyssl")
    start = time.perf_counter()
    easyssl.train_embedding_model(folder, checkpoint_dir=tmp_path / "run", loader={"batch_size": 64}, trainer={"max_epochs": 2, "progress_bar": False})
    wall = time.perf_counter() - start
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("easyssl: ") and "set-up" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    phases = dict((name, float(s)) for name, s in re.findall(r"(set-up|training|whitening|final checkpoint) ([\d.]+) s", lines[0]))
    assert list(phases) == ["set-up", "training", "whitening", "final checkpoint"], lines[0]
    total = float(re.match(r"easyssl: ([\d.]+) s:", lines[0]).group(1))
    assert total == pytest.approx(sum(phases.values()), abs=0.25) and total <= wall + 0.1 and total >= wall - 1.0, (lines[0], wall)
    epochs = torch.load(tmp_path / "run" / "last.ckpt", map_location="cpu", weights_only=True)["history"]
    assert phases["training"] >= sum(h["seconds"] for h in epochs) - 0.1 and "(2 epoch(s), the first " in lines[0]


def test_the_phase_report_counts_from_the_start_and_the_checkpoint_writes():
    plan = BudgetPlan(TimeBudget(None))
    start = time.perf_counter() - 3.0
    plan.marks = [("set-up", start + 1.0), ("training", start + 2.5), ("whitening", start + 2.75)]
    plan.record_checkpoint(0.25)
    plan.record_checkpoint(0.5)
    assert plan.phases(start) == pytest.approx({"set-up": 1.0, "training": 1.5, "whitening": 0.25})
    line = plan.report(start, [{"seconds": 1.0}, {"seconds": 0.4}])
    assert line == "easyssl: 2.8 s: set-up 1.0 s, training 1.5 s (2 epoch(s), the first 1.0 s; checkpoints 0.8 s), whitening 0.2 s"


def test_a_measured_calibration_rate_replaces_the_modelled_one():
    """Eighteenth session: with a GPU's steps replayed as CUDA graphs a training image cost a few microseconds while
    the pass's forward passes did not get faster, so EMBED_COST x the training rate kept back a fraction of the pass."""
    budget = TimeBudget(100.0)
    plan = BudgetPlan(budget, calibration_images=8000)
    plan.record_step(images=10, seconds=30.0)
    plan.record_step(images=1000, seconds=10.0)
    assert plan.calibration_seconds() == pytest.approx(10.0)  # modelled: 8000 x 1/8 x 10 ms
    plan.measure_calibration(images=256, seconds=0.64)  # 2.5 ms an image, timed on the pass itself
    assert plan.calibration_seconds() == pytest.approx(20.0)  # 8000 x 2.5 ms = 20 s: at the fifth of the budget
    assert budget.stop_at == pytest.approx(100.0 - 20.0 - plan.checkpoint_seconds)
    plan.measure_calibration(images=256, seconds=0.128)
    assert plan.calibration_seconds() == pytest.approx(4.0)
    plan.calibrated_images = 5376
    plan.marks = [("training", time.perf_counter()), ("whitening", time.perf_counter())]
    assert "whitening 0.0 s (5,376 of 8,000 images)" in plan.report(time.perf_counter(), [])


def test_time_calibration_times_the_second_batch_and_skips_worker_loaders():
    from easyssl.train.whitening import time_calibration

    data = [(torch.rand(3, 4, 4), 0, f"{i}") for i in range(64)]
    collate = lambda b: (torch.stack([x[0] for x in b]), torch.zeros(len(b)), [x[2] for x in b])  # noqa: E731
    model = _Model().train()
    images, seconds = time_calibration(model, torch.utils.data.DataLoader(data, batch_size=8, collate_fn=collate), device="cpu", precision="32")
    assert images == 8 and seconds > 0 and model.seen == 16 and model.training  # two batches embedded, the model's mode kept
    with_workers = torch.utils.data.DataLoader(data, batch_size=8, collate_fn=collate, num_workers=2)
    assert time_calibration(_Model(), with_workers, device="cpu", precision="32") == (0, 0.0)


def test_a_budgeted_run_times_its_calibration_pass_and_whitens_every_image(tmp_path, caplog, monkeypatch):
    import easyssl.defaults

    # the pass is timed only where its loader has no workers (2 cores have none; more cores get some): any machine
    monkeypatch.setattr(easyssl.defaults, "default_embed_workers", lambda device: 0)
    folder = _small_folder(tmp_path / "images", n=200)
    caplog.set_level("INFO", logger="easyssl")
    run = easyssl.build_training(folder, checkpoint_dir=tmp_path / "run", loader={"batch_size": 32, "num_workers": 0},
                                 trainer={"max_time": 10, "progress_bar": False})
    run.trainer.train_embedding(max_time=10, checkpoint_dir=tmp_path / "run", progress_bar=False)
    assert run.trainer.plan.calibration_rate is not None and run.trainer.plan.calibration_rate > 0
    assert run.trainer.plan.calibrated_images == 200
    assert any("(200 of 200 images)" in r.getMessage() for r in caplog.records)


def test_timing_the_pass_is_skipped_where_it_would_cost_a_short_budget_too_much():
    budget = TimeBudget(6.0)
    budget.begin(time.perf_counter())
    plan = BudgetPlan(budget, calibration_images=600, views_cost=4.6)
    plan.record_step(images=10, seconds=1.0)
    plan.record_step(images=128, seconds=0.55)  # 4.3 ms a training image: 2 x 256 images of the pass, modelled, 1.3 s
    assert not plan.calibration_probe_affordable(256)  # more than a tenth of the 6 s left
    assert plan.calibration_probe_affordable(16)
    budget = TimeBudget(600.0)
    budget.begin(time.perf_counter())
    plan = BudgetPlan(budget, calibration_images=10_000, views_cost=4.6)
    plan.record_step(images=10, seconds=1.0)
    plan.record_step(images=128, seconds=0.55)
    assert plan.calibration_probe_affordable(256)


def test_on_a_gpu_the_pass_gets_a_margin_and_a_slack_a_cpu_does_not():
    """Twenty-second session, H200: planned from its timed batch alone, 4 of 5 passes of 60-s runs were cut (2,048 to
    7,936 of 10,000 images); the host's clock runs ahead of the device, and the epoch's end is not a step."""
    plans = {}
    for asynchronous in (False, True):
        budget = TimeBudget(60.0)
        plan = plans[asynchronous] = BudgetPlan(budget, calibration_images=10_000, asynchronous=asynchronous)
        plan.record_step(images=256, seconds=1.0)
        plan.record_step(images=256, seconds=0.01)
        plan.measure_calibration(images=256, seconds=0.0128)  # 50 microseconds an image: half a second for the pass
        plan.record_checkpoint(0.2)
        plan.update()
        assert plan.calibration_seconds() == pytest.approx(0.5)
    assert plans[False].budget.stop_at == pytest.approx(60.0 - 0.5 - 0.2)  # a CPU: as timed
    assert plans[True].calibration_reserve() == pytest.approx(0.5 * 1.25 + 0.6)  # 25 % more, and 1 % of the budget
    assert plans[True].budget.stop_at == pytest.approx(60.0 - 1.225 - 0.2)
    assert BudgetPlan(TimeBudget(60.0), calibration_images=0, asynchronous=True).calibration_reserve() == 0.0  # no pass: nothing


def test_the_last_epoch_writes_no_checkpoint_where_the_pass_and_the_final_one_follow():
    plan = BudgetPlan(TimeBudget(60.0))
    assert plan.checkpoint_due() and plan.checkpoint_due(final=True)  # the first write; the final one without a pass
    assert not plan.checkpoint_due(final=True, pass_follows=True)  # written after the pass instead
    plan.record_checkpoint(0.0)
    assert plan.checkpoint_due()  # spacing of 20 x 0 s: due


def test_a_trained_run_writes_last_ckpt_once_after_the_pass_not_also_before_it(tmp_path, monkeypatch):
    import easyssl.train.timing
    from easyssl.train.trainer import SelfSupervisedEmbedding

    monkeypatch.setattr(easyssl.train.timing, "CHECKPOINT_SPACING", 0)  # every epoch's write is due
    writes = []  # (file name, epochs done, the call's phase that ended last)
    original = SelfSupervisedEmbedding.save_checkpoint

    def recording_save(self, path, epochs_done=None):
        writes.append((os.path.basename(path), epochs_done, self.plan.marks[-1][0] if self.plan.marks else None))
        return original(self, path, epochs_done)

    monkeypatch.setattr(SelfSupervisedEmbedding, "save_checkpoint", recording_save)
    folder = _small_folder(tmp_path / "images", n=64)
    run = easyssl.build_training(folder, checkpoint_dir=tmp_path / "run", loader={"batch_size": 16, "num_workers": 0},
                                 trainer={"max_epochs": 3, "progress_bar": False})
    run.trainer.train_embedding(max_epochs=3, checkpoint_dir=tmp_path / "run", progress_bar=False, keep_epoch_checkpoints=True)
    last = [(epochs, mark) for name, epochs, mark in writes if name == "last.ckpt"]
    assert last == [(1, "set-up"), (2, "set-up"), (3, "whitening")]  # not also after epoch 3, before the pass
    assert sorted(name for name, _, _ in writes if name != "last.ckpt") == ["epoch=1.ckpt", "epoch=2.ckpt", "epoch=3.ckpt"]
    state = torch.load(tmp_path / "run" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["epoch"] == 3 and any(key.endswith("embedding_mean") for key in state["model"])


def test_the_report_says_how_far_training_ran_past_its_stop_point():
    budget = TimeBudget(60.0)
    budget.begin(started_at=time.perf_counter() - 59.5)
    plan = BudgetPlan(budget, calibration_images=10_000)
    plan.marks = [("set-up", budget.started_at + 0.5)]
    budget.set_aside(1.0)  # the stop point at 59 s; training ends at 59.5 s
    plan.training_ended()
    assert plan.stop_overrun == pytest.approx(0.5, abs=0.05)
    line = plan.report(budget.started_at, [{"seconds": 30.0}, {"seconds": 29.0}])
    assert line.startswith("easyssl: 59.5 s: set-up 0.5 s, training 59.0 s (2 epoch(s), the first 30.0 s; checkpoints 0.0 s; 0.5")
    assert line.endswith(" s past its stop point)")
