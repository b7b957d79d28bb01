"""The training step that CUDA graphs replay (easyssl.train.step), checked on a CPU by running the graphed step's
code without capturing it: the same input buffers, learning-rate tensors and written-out SGD update."""

import copy

import pytest
import torch

from easyssl import backbone
from easyssl.loss import NTXentLoss
from easyssl.models import BYOL, SimCLR
from easyssl.nn import TrainingProgress
from easyssl.train.optim import parameter_groups
from easyssl.train.step import GRAPH_WARMUP_STEPS, StepRunner, TrainStep

CPU = torch.device("cpu")


def _simclr(feature_norm: bool = True) -> SimCLR:
    torch.manual_seed(0)
    return SimCLR(backbone("resnet-18", width=0.125, input_size=20, pooled_stages=2), out_dim=16, rotation_weight=0.4,
                  decorrelation_weight=0.1, feature_norm=feature_norm)


@pytest.fixture()
def float64():
    """Double precision: two ways of writing the same update then agree to rounding (1e-16), where float32's
    rounding differences grow through a few steps of a tiny batch's BatchNorm (to 1e-4 in seven steps)."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def _run(model, runner_kwargs, steps=7, optimizer_type=torch.optim.SGD):
    optimizer = optimizer_type(parameter_groups(model, 5e-4), lr=0.1, **({"momentum": 0.9} if optimizer_type is torch.optim.SGD else {}))
    criterion = NTXentLoss(temperature=0.2)
    step = TrainStep(model, criterion)
    runner = StepRunner(model, optimizer, CPU, "32", **runner_kwargs)
    progress, losses = TrainingProgress(), []
    data = torch.Generator().manual_seed(1)
    for i in range(steps):
        views = [torch.randn(16, 3, 20, 20, generator=data) for _ in range(2)]
        for group in optimizer.param_groups:
            group["lr"] = 0.1 * (i + 1) / steps  # a schedule that moves every step: the graph must not freeze it
        torch.manual_seed(100 + i)  # the same quarter turns for both runs
        losses.append(runner(step, views, progress).item())
    return runner, losses, model


def test_graphed_step_trains_exactly_like_sgd(float64):
    reference_runner, reference_losses, reference = _run(_simclr(feature_norm=False), {"enabled": False})
    runner, losses, model = _run(_simclr(feature_norm=False), {"capture": False})
    assert reference_runner.replays == 0 and reference_runner.why_not == "turned off"
    assert runner.why_not is None and runner.replays == 7 - GRAPH_WARMUP_STEPS  # the graphed code ran after the warm-up
    assert losses == pytest.approx(reference_losses, rel=1e-12)
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):  # weights, BatchNorm statistics
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14, msg=lambda m: f"{name}: {m}")
    for p, q in zip(model.parameters(), reference.parameters()):  # and the last step's gradients
        assert p.grad is not None and torch.allclose(p.grad, q.grad, rtol=1e-10, atol=1e-14)


def test_graphed_step_with_the_feature_norm_in_float32():
    """The small-image recipe's model as it trains (float32, feature BatchNorm): the same losses to float32 rounding."""
    _, reference_losses, _ = _run(_simclr(), {"enabled": False})
    runner, losses, _ = _run(_simclr(), {"capture": False})
    assert runner.replays == 7 - GRAPH_WARMUP_STEPS and losses == pytest.approx(reference_losses, rel=1e-3)


def test_graphed_update_follows_the_learning_rate():
    """The learning-rate tensors are filled from the optimiser before every replay: tensors left at the rate of the
    capture would train like a schedule that stops moving there. (That the captured code reads no Python rate is
    the test with the guard below: run uncaptured, this one cannot tell.)"""
    _, _, moving = _run(_simclr(), {"capture": False})
    model = _simclr()
    optimizer = torch.optim.SGD(parameter_groups(model, 5e-4), lr=0.1, momentum=0.9)
    runner = StepRunner(model, optimizer, CPU, "32", capture=False)
    step, progress, data = TrainStep(model, NTXentLoss(temperature=0.2)), TrainingProgress(), torch.Generator().manual_seed(1)
    for i in range(7):
        views = [torch.randn(16, 3, 20, 20, generator=data) for _ in range(2)]
        lr = 0.1 * (min(i, GRAPH_WARMUP_STEPS) + 1) / 7  # the rate stops moving once the graph exists
        for group in optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(100 + i)
        runner(step, views, progress)
    assert not torch.allclose(model.projection_head.layers[0].weight, moving.projection_head.layers[0].weight)


def test_views_of_a_new_shape_get_their_own_graph_after_a_warm_up():
    model = _simclr()
    optimizer = torch.optim.SGD(parameter_groups(model, 5e-4), lr=0.05, momentum=0.9)
    runner, step, progress = StepRunner(model, optimizer, CPU, "32", capture=False), TrainStep(model, NTXentLoss()), TrainingProgress()
    for size, count in ((20, 5), (28, 5)):  # the small-image recipe's last fifth at the full size
        for _ in range(count):
            runner(step, [torch.randn(8, 3, size, size) for _ in range(2)], progress)
    assert len(runner.graphs) == 2 and runner.replays == 2 * (5 - GRAPH_WARMUP_STEPS)


def test_graphs_are_off_where_they_cannot_replay_the_step():
    def why(model=None, criterion=None, optimizer_type=torch.optim.SGD, **kwargs):
        model = model or _simclr()
        kw = {"momentum": 0.9} if optimizer_type is torch.optim.SGD else {}
        runner = StepRunner(model, optimizer_type(model.parameters(), lr=0.1, **kw), CPU, "32", **kwargs)
        runner(TrainStep(model, criterion or NTXentLoss()), [torch.randn(8, 3, 20, 20) for _ in range(2)], TrainingProgress())
        return runner.why_not, runner.replays

    assert "CUDA" in why()[0]  # a CPU captures nothing
    assert "AdamW" in why(optimizer_type=torch.optim.AdamW, capture=False)[0]
    assert "not graph-safe" in why(criterion=NTXentLoss(memory_bank_size=64), capture=False)[0]  # the bank's position is read on the host
    byol = BYOL(backbone("resnet-18", width=0.125, input_size=20))  # its momentum schedule reads the progress
    assert "BYOL" in why(model=byol, criterion=copy.deepcopy(NTXentLoss()), capture=False)[0]
    assert why(capture=False) == (None, 0)  # one step: still warming up


def test_trainer_uses_the_step_runner(demo_folder, tmp_path):
    """The trainer's steps go through StepRunner (its steps counted); on a CPU it says why there are no graphs."""
    import easyssl

    from conftest import fast_config

    run = easyssl.build_training(demo_folder, checkpoint_dir=str(tmp_path / "run"), **fast_config(trainer={"device": "cpu"}))
    run.trainer.train_embedding(max_epochs=1, checkpoint_dir=None, progress_bar=False)
    assert run.trainer.steps.why_not and "CUDA" in run.trainer.steps.why_not
    assert run.trainer.config["trainer"]["cuda_graphs"] == "auto"


def _train(model, runner_kwargs, momentum=0.9, change=None, steps=8):
    optimizer = torch.optim.SGD(parameter_groups(model, 5e-4), lr=0.1, momentum=momentum)
    runner = StepRunner(model, optimizer, CPU, "32", **runner_kwargs)
    step, progress, data = TrainStep(model, NTXentLoss(temperature=0.2)), TrainingProgress(), torch.Generator().manual_seed(1)
    for i in range(steps):
        views = [torch.randn(16, 3, 20, 20, generator=data) for _ in range(2)]
        if change is not None:
            change(i, optimizer)
        torch.manual_seed(100 + i)
        runner(step, views, progress)
    return runner, model


def _same_weights(a, b):
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-14, msg=lambda m: f"{name}: {m}")


def test_graphed_update_without_momentum(float64):
    """Plain SGD without momentum keeps no momentum buffers: the graphed update must still move every weight."""
    runner, model = _train(_simclr(feature_norm=False), {"capture": False}, momentum=0.0)
    _, reference = _train(_simclr(feature_norm=False), {"enabled": False}, momentum=0.0)
    assert runner.replays == 8 - GRAPH_WARMUP_STEPS
    _same_weights(model, reference)


def test_a_changed_momentum_or_optimiser_state_is_captured_again(float64):
    """The graph holds momentum and weight decay as numbers and the momentum buffers as they were: a scheduler that
    changes the momentum, or a loaded optimiser state, drops the graphs for a new capture, and training stays SGD's."""
    def change(i, optimizer):
        if i == 5:
            for group in optimizer.param_groups:
                group["momentum"] = 0.5
        if i == 11:  # after the new capture (step 8): a loaded state, as from a checkpoint, brings new buffer tensors
            optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))

    runner, model = _train(_simclr(feature_norm=False), {"capture": False}, change=change, steps=17)
    _, reference = _train(_simclr(feature_norm=False), {"enabled": False}, change=change, steps=17)
    assert runner.recaptures == 2 and not runner.failed and runner.graphs and runner.replays == 2 + 3 + 3
    _same_weights(model, reference)


def test_the_graphed_update_reads_no_learning_rate_from_the_optimiser():
    """Run uncaptured, the graphed code would follow a Python learning rate too; captured, a rate read while recording
    would be frozen. So the graphed body must take it from its tensors only: reading ``group["lr"]`` there fails."""
    model = _simclr()
    optimizer = torch.optim.SGD(parameter_groups(model, 5e-4), lr=0.1, momentum=0.9)
    runner = StepRunner(model, optimizer, CPU, "32", capture=False)
    body = runner._graphed_body

    class NoLearningRate(dict):
        def __getitem__(self, key):
            if key == "lr":
                raise AssertionError("the graphed step read the optimiser's Python learning rate")
            return super().__getitem__(key)

    def guarded(*args, **kwargs):
        groups = optimizer.param_groups
        optimizer.param_groups = [NoLearningRate(group) for group in groups]
        try:
            return body(*args, **kwargs)
        finally:
            optimizer.param_groups = groups

    runner._graphed_body = guarded
    step, progress = TrainStep(model, NTXentLoss()), TrainingProgress()
    for _ in range(GRAPH_WARMUP_STEPS + 2):
        runner(step, [torch.randn(8, 3, 20, 20) for _ in range(2)], progress)
    assert runner.replays == 2


def test_timing_the_whitening_pass_leaves_training_random_stream_alone(demo_folder, tmp_path, monkeypatch):
    import easyssl
    import easyssl.defaults

    monkeypatch.setattr(easyssl.defaults, "default_embed_workers", lambda device: 0)  # timed only without workers: any machine
    from easyssl.train.whitening import time_calibration

    from conftest import fast_config

    run = easyssl.build_training(demo_folder, checkpoint_dir=str(tmp_path / "run"), **fast_config(trainer={"device": "cpu"}))
    state = torch.get_rng_state()
    images, seconds = time_calibration(run.trainer.model, run.trainer.calibration_loader, device="cpu", precision="32")
    assert images > 0 and seconds > 0 and torch.equal(state, torch.get_rng_state())
