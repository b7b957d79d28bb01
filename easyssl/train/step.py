"""One training step (forward, loss, backward, optimiser update), and the same step replayed as a CUDA graph.

Why graphs: a small model's step on a GPU is bound by the host, not the device. Quarter-width ResNet-18 on
20-px views at batch 256 (the small-image recipe) costs the GPU a millisecond or two, but the host launches
about 3,500 kernels for it, one by one: on an H200 behind a 16-core Xeon that was 16-30 ms a step (8,000-16,000
training images/s, fourteenth and eighteenth sessions), whatever the batch size. A CUDA graph records the
step's kernels once and launches them all in one call; PyTorch's own answer to launch-bound work
(``torch.compile(mode="reduce-overhead")`` captures graphs too, but compiling costs tens of seconds, a whole
short budget). Measured on an H200 (eighteenth session, ``examples/benchmarks/gpu.py``): that step went from 15.5-17.7 ms
to 3.26 ms with the same losses, and a 60-s Fashion-MNIST run from 53 to 130 epochs.

:class:`StepRunner` captures the step of a model whose loss is graph-safe (``model.graph_safe``: its
``training_loss`` neither reads the host, nor syncs with it, nor depends on the training progress, whose
values a graph would freeze) trained by plain momentum SGD (the update is written out with ``_foreach`` ops
that read the learning rate from a device tensor, so the schedule still moves it; a change of momentum, weight decay
or momentum buffers, which the graph holds as they were, drops the graphs for a new capture). Each shape of views gets
its own graph after :data:`GRAPH_WARMUP_STEPS` ordinary steps (the warm-up PyTorch asks for, run on a side
stream). Anything else (another optimiser, DDP, ``torch.compile``, a CPU) takes the ordinary step, as does
every step after a capture that failed (with one warning).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from easyssl.nn import SSLModel, TrainingProgress
from easyssl.runtime.device import autocast
from easyssl.runtime.log import logger

__all__ = ["GRAPH_WARMUP_STEPS", "MAX_GRAPHS", "StepRunner", "TrainStep", "graphs_supported"]

#: Ordinary steps of a shape of views before its graph is captured (PyTorch's examples warm up 3 iterations:
#: lazy initialisation, cuDNN's algorithm search and the optimiser's momentum buffers happen outside the graph).
GRAPH_WARMUP_STEPS = 3
#: Graphs kept at most (one per shape of views: the small-image recipe has two, 20 px then 28 px). Shapes
#: beyond these, e.g. a last short batch, take the ordinary step.
MAX_GRAPHS = 4
#: Times the graphs are dropped and captured again because the optimiser's momentum, weight decay or momentum buffers
#: changed (a scheduler that cycles the momentum, a loaded optimiser state) before graphs are turned off for the run.
MAX_RECAPTURES = 2


class TrainStep(nn.Module):
    """Model and criterion under one ``forward``, so that DistributedDataParallel sees the whole step."""

    def __init__(self, model: SSLModel, criterion: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.criterion = criterion

    def forward(self, views: Sequence[torch.Tensor], progress: TrainingProgress) -> torch.Tensor:
        return self.model.training_loss(views, self.criterion, progress)


def graphs_supported(optimizer: torch.optim.Optimizer) -> str | None:
    """None when :class:`StepRunner` can replay ``optimizer``'s update in a graph, else why not."""
    if type(optimizer) is not torch.optim.SGD:
        return f"the optimiser is {type(optimizer).__name__}, the graphed update is plain SGD's"
    for group in optimizer.param_groups:
        if group.get("nesterov") or group.get("dampening") or group.get("maximize") or group.get("differentiable"):
            return "SGD with nesterov, dampening or maximize"
    return None


class _Graph:
    """One captured step: its input buffers, learning-rate tensors, graph and loss, and what its update was captured
    with: each group's momentum and weight decay (Python numbers, frozen into the graph) and the momentum buffers it
    updates (held here, so that their memory outlives any replacement, e.g. by ``optimizer.load_state_dict``)."""

    def __init__(self, inputs: list[torch.Tensor], lrs: list[torch.Tensor], hyper: tuple, buffers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.inputs = inputs
        self.lrs = lrs
        self.hyper = hyper
        self.buffers = buffers
        self.graph: Any = None
        self.loss: torch.Tensor | None = None


class StepRunner:
    """Runs training steps: ordinary ones, or replays of a CUDA graph where that is possible (see the module).

    Args:
        model: The model being trained (its ``graph_safe`` says whether its loss may be captured).
        optimizer: The optimiser of the step.
        device: The training device; graphs only on CUDA.
        precision: The resolved precision (``"32"``, ``"bf16"``...).
        enabled: ``"auto"`` (graphs when everything allows them), True (the same, and a warning when they are
            not possible), False (never).
        capture: False runs the graphed step's code without capturing it (tests on a CPU: the same buffers,
            the same written-out update, eagerly).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device, precision: str,
                 enabled: bool | str = "auto", capture: bool = True) -> None:
        self.model = model
        self.optimizer = optimizer
        self.device = device
        self.precision = precision
        self.capture = capture
        self.graphs: dict[tuple, _Graph] = {}
        self.seen: dict[tuple, int] = {}
        self.failed: str | None = None  # why graphs are off for the rest of the run
        self.replays = 0
        self.recaptures = 0
        self.enabled = enabled
        #: Why graphs are off (None: they are on), known at the first step.
        self.why_not: str | None = None
        self._checked = False

    def _check(self, step: Any) -> None:
        """Decide at the first step whether graphs are possible; a warning when they were asked for and are not."""
        self._checked = True
        criterion = getattr(step, "criterion", None)
        if self.enabled is False or self.enabled == "off":
            self.why_not = "turned off"
        elif self.capture and self.device.type != "cuda":
            self.why_not = f"training runs on {self.device.type}, graphs need a CUDA device"
        elif not isinstance(step, TrainStep):
            self.why_not = "the step is wrapped (DistributedDataParallel or torch.compile)"
        elif not getattr(self.model, "graph_safe", False):
            self.why_not = f"{type(self.model).__name__}'s training loss is not marked graph-safe"
        elif not getattr(criterion, "graph_safe", False):
            self.why_not = f"the loss {type(criterion).__name__} is not graph-safe"
        else:
            self.why_not = graphs_supported(self.optimizer)
        if self.why_not and self.enabled is True:
            logger.warning(f"easyssl: CUDA graphs are off: {self.why_not}")
        elif self.why_not and self.device.type == "cuda":
            logger.info(f"easyssl: no CUDA graph for the training step: {self.why_not}")

    def __call__(self, step: Callable[[Sequence[torch.Tensor], TrainingProgress], torch.Tensor], views: Sequence[torch.Tensor],
                 progress: TrainingProgress) -> torch.Tensor:
        """One optimisation step on ``views``; returns the loss (a tensor of its own, detached)."""
        if not self._checked:
            self._check(step)
        if self.why_not or self.failed:
            return self._ordinary(step, views, progress).detach()
        key = tuple((tuple(v.shape), v.dtype, v.stride()) for v in views)
        graph = self.graphs.get(key)
        if graph is not None and self._stale(graph):
            self._drop_graphs()
            if self.failed:
                return self._ordinary(step, views, progress).detach()
            graph = None
        if graph is None:
            self.seen[key] = self.seen.get(key, 0) + 1
            if self.seen[key] <= GRAPH_WARMUP_STEPS or len(self.graphs) >= MAX_GRAPHS:
                return self._warm_up(step, views, progress).detach()
            graph = self._record(step, views, progress, key)
            if graph is None:
                return self._ordinary(step, views, progress).detach()
        for buffer, view in zip(graph.inputs, views):
            buffer.copy_(view)
        for lr, group in zip(graph.lrs, self.optimizer.param_groups):
            lr.fill_(group["lr"])
        if graph.graph is not None:
            graph.graph.replay()
        else:  # capture=False: the graph's code, run as it is (a replay's backward writes the gradients afresh)
            self.optimizer.zero_grad(set_to_none=True)
            graph.loss = self._graphed_body(step, graph.inputs, graph.lrs, progress)
        self.replays += 1
        assert graph.loss is not None
        return graph.loss.detach().clone()  # the graph overwrites its loss at the next replay

    def _hyper(self) -> tuple:
        """What a graph freezes of the optimiser's groups: their number, momentum and weight decay."""
        return tuple((group["momentum"], group["weight_decay"], len(group["params"])) for group in self.optimizer.param_groups)

    def _momentum_buffers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(p, self.optimizer.state[p]["momentum_buffer"]) for group in self.optimizer.param_groups if group["momentum"]
                for p in group["params"] if "momentum_buffer" in self.optimizer.state.get(p, {})]

    def _stale(self, graph: _Graph) -> bool:
        """Whether the optimiser changed what ``graph`` was captured with (its replay would train the old way)."""
        if graph.hyper != self._hyper():
            return True
        return any(self.optimizer.state.get(p, {}).get("momentum_buffer") is not buffer for p, buffer in graph.buffers)

    def _drop_graphs(self) -> None:
        """Forget the graphs (they are captured again after a warm-up), or turn graphs off after :data:`MAX_RECAPTURES`."""
        self.graphs.clear()
        self.seen.clear()
        self.recaptures += 1
        if self.recaptures > MAX_RECAPTURES:
            self.failed = "the optimiser's momentum, weight decay or state kept changing during training"
            logger.info(f"easyssl: no CUDA graph for the training step from now on: {self.failed}")

    def _ordinary(self, step: Callable, views: Sequence[torch.Tensor], progress: TrainingProgress) -> torch.Tensor:
        with autocast(self.device, self.precision):
            loss = step(views, progress)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss

    def _warm_up(self, step: Callable, views: Sequence[torch.Tensor], progress: TrainingProgress) -> torch.Tensor:
        if not self.capture:
            return self._ordinary(step, views, progress)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            loss = self._ordinary(step, views, progress)
        torch.cuda.current_stream(self.device).wait_stream(side)
        return loss

    def _graphed_body(self, step: Callable, inputs: list[torch.Tensor], lrs: list[torch.Tensor], progress: TrainingProgress) -> torch.Tensor:
        """What the graph holds: forward, backward and the SGD update with the learning rates of ``lrs``."""
        with autocast(self.device, self.precision, cache_enabled=False):  # autocast's weight cache cannot live in a graph
            loss = step(inputs, progress)
        loss.backward()
        self._sgd_update(lrs)
        return loss

    @torch.no_grad()
    def _sgd_update(self, lrs: list[torch.Tensor]) -> None:
        """``torch.optim.SGD``'s step (momentum, weight decay; no nesterov or dampening), with tensor learning rates."""
        for group, lr in zip(self.optimizer.param_groups, lrs):
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            if group["momentum"]:
                buffers = [self.optimizer.state[p]["momentum_buffer"] for p in params]
                torch._foreach_mul_(buffers, group["momentum"])
                torch._foreach_add_(buffers, grads)
                grads = buffers
            torch._foreach_sub_(params, torch._foreach_mul(grads, lr))

    def _record(self, step: Callable, views: Sequence[torch.Tensor], progress: TrainingProgress, key: tuple) -> _Graph | None:
        """Capture the step for views like ``views``; None (and graphs off for the run) when capture fails."""
        if any(p.grad is not None and "momentum_buffer" not in self.optimizer.state.get(p, {})
               for g in self.optimizer.param_groups for p in g["params"] if g["momentum"]):
            self.failed = "a parameter has a gradient but no momentum buffer"
            return None
        graph = _Graph([v.detach().clone() for v in views], [torch.tensor(float(g["lr"]), device=self.device) for g in self.optimizer.param_groups],
                       self._hyper(), self._momentum_buffers())
        self.optimizer.zero_grad(set_to_none=True)  # backward in the graph allocates the gradients in its own pool
        if self.capture:
            try:
                cuda_graph = torch.cuda.CUDAGraph()
                # thread_local: the loader's pin-memory thread may allocate pinned memory meanwhile, which the
                # default ("global") mode forbids to every thread during a capture
                with torch.cuda.graph(cuda_graph, capture_error_mode="thread_local"):
                    graph.loss = self._graphed_body(step, graph.inputs, graph.lrs, progress)
                graph.graph = cuda_graph
                logger.info(f"easyssl: training steps on views of {list(views[0].shape)} replayed as a CUDA graph from now on")
            except Exception as error:  # noqa: BLE001 - whatever the capture met, the ordinary step still works
                self.failed = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                logger.warning(f"easyssl: capturing the training step as a CUDA graph failed ({self.failed}); "
                               "training goes on with ordinary steps")
                self.optimizer.zero_grad(set_to_none=True)
                torch.cuda.synchronize(self.device)
                return None
        self.graphs[key] = graph
        return graph
