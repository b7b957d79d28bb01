"""``SelfSupervisedEmbedding``: the training loop, in plain PyTorch."""

from __future__ import annotations

import contextlib
import math
import os
import time
from typing import Any, Callable, ContextManager, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from easyssl.data.collate import is_empty_batch
from easyssl.inference.loop import embed_with
from easyssl.nn import IMAGE_ONLY, SSLModel, TrainingProgress, views_cost
from easyssl.runtime import distributed
from easyssl.runtime.budget import TimeBudget
from easyssl.runtime.checkpoint import LAST_CHECKPOINT, load_checkpoint, save_checkpoint
from easyssl.runtime.device import resolve_device, resolve_precision
from easyssl.runtime.log import logger
from easyssl.runtime.rng import RandomStreams
from easyssl.train.live_eval import LiveEvaluation
from easyssl.train.lock import hold_run_folder
from easyssl.train.metrics import RunReporter
from easyssl.train.memory import explain_out_of_memory
from easyssl.train.compat import AUTO_RUN_DIR, before_training, check_training_loader, embedding_loader, schedules
from easyssl.train.state import restore_state, training_state
from easyssl.train.step import StepRunner, TrainStep
from easyssl.train.timing import BudgetPlan
from easyssl.train.whitening import calibrate_embeddings, calibration_size, time_calibration


class SelfSupervisedEmbedding:
    """Train a self-supervised model on a data loader, checkpoint it, and embed images with it.

    Works with any :class:`~easyssl.nn.SSLModel` and loss. The loader yields
    ``(views, targets, filenames)`` batches (targets are ignored during training); when
    ``batch_transform`` is given, the loader yields raw ``uint8`` image batches instead and
    ``batch_transform`` turns each batch into the list of augmented views on the training
    device (batched augmentation, on the GPU when there is one).

    What it does to what you pass: it trains ``model``'s parameters in place (they are the
    optimiser's) and moves the model to ``device`` as ``nn.Module.to`` does; it does not
    convert the model's memory format (``channels_last`` concerns the input batches) and
    does not replace its modules, except with ``sync_batchnorm=True``, which turns its
    batch norms into ``SyncBatchNorm`` in place (PyTorch has no way back). For
    DistributedDataParallel and ``compile`` it wraps the model in :attr:`step_module`,
    leaving ``model`` itself as it is. With ``seed`` given, training draws from random
    streams of its own and leaves the process's global random state as it was; with
    ``seed=None`` it draws from (and advances) the global generators like a plain PyTorch
    loop, and resuming a checkpoint sets them to the saved state.

    Args:
        model: The model to train.
        criterion: Its loss.
        optimizer: Optimiser over the model's parameters.
        dataloader: Training batches.
        lr_schedule: Learning-rate factor as a function of the fraction of training done
            (default: :class:`~easyssl.train.WarmupCosineSchedule` with no warm-up); the
            optimiser's initial ``lr`` is the peak. Pass ``None`` for a constant rate.
        scheduler: A ``torch.optim.lr_scheduler`` stepped after each step, instead of ``lr_schedule``.
        batch_transform: Callable mapping a batch on the device to the list of views; its ``set_progress(fraction)``, if any, is called before each batch.
        config: Everything needed to rebuild the model (saved in checkpoints so that
            ``embed_images(input_dir, checkpoint)`` needs nothing else).
        device: ``"auto"`` (CUDA, else an Apple GPU, else the CPU), or any torch device.
        precision: ``"auto"`` (bf16 autocast on CUDA, float32 on CPU), ``"32"``, ``"bf16"``, ``"16"``.
        channels_last: Feed the views in the channels-last memory format (default: on, for
            CUDA and CPU, where convolutions run 1.3-1.5x faster in it; measured on CPU, the
            same speed whether or not the weights are converted too).
        compile: Compile the training step with ``torch.compile``.
        sync_batchnorm: Under ``torch.distributed`` on GPUs, turn batch norms into
            ``SyncBatchNorm`` (in place) so their statistics cover the global batch.
        calibration_loader: Training images with the evaluation transform, batches of
            ``(images, targets, filenames)``: at the end of training the embedding statistics
            are computed from them (:func:`~easyssl.train.calibrate_embeddings`) and saved
            with the model, so embeddings come out whitened. A time budget keeps the few
            seconds this takes.
        seed: An int or :class:`~easyssl.runtime.rng.RandomStreams`: the random streams
            training draws from (see above); None for the global ones.
        live_evaluation: kNN top-1 on a labelled folder during training (:class:`~easyssl.train.live_eval.LiveEvaluation`).
        cuda_graphs: ``"auto"``: on a CUDA device, steps of a graph-safe loss under plain SGD are captured as CUDA
            graphs and replayed (a small model's step is bound by the host's kernel launches; see
            :mod:`easyssl.train.step`); True: the same, with a warning when it cannot be; False: never.

    Example:
        >>> trainer = SelfSupervisedEmbedding(model, NTXentLoss(), optimizer, loader, seed=1)
        >>> checkpoint = trainer.train_embedding(max_epochs=10, checkpoint_dir="runs/simclr")
        >>> embeddings, labels, filenames = trainer.embed(eval_loader)
    """

    def __init__(
        self,
        model: SSLModel,
        criterion: nn.Module,
        optimizer: torch.optim.Optimizer,
        dataloader: DataLoader | None,
        lr_schedule: Callable[[float], float] | None | str = "default",
        scheduler: Any = None,
        batch_transform: Callable[[torch.Tensor], list[torch.Tensor]] | None = None,
        config: dict | None = None,
        device: str | torch.device | None = "auto",
        precision: str = "auto",
        channels_last: bool | None = None,
        compile: bool = False,
        sync_batchnorm: bool = False,
        calibration_loader: DataLoader | None = None,
        seed: int | RandomStreams | None = None,
        live_evaluation: LiveEvaluation | None = None,
        cuda_graphs: bool | str = "auto",
    ) -> None:
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.channels_last = self.device.type in ("cuda", "cpu") if channels_last is None else channels_last
        if sync_batchnorm:
            model = distributed.convert_sync_batchnorm(model, self.device)
        self.model = model.to(self.device)
        self.criterion = criterion.to(self.device)
        self.optimizer = optimizer
        self.dataloader = check_training_loader(dataloader)  # a view transform given as collate_fn: an error that says what to pass
        self.lr_schedule, self.scheduler = schedules(lr_schedule, scheduler)  # LightlySSL's 5th argument, a scheduler, too
        self.batch_transform = batch_transform
        self.config, self.compile = config, compile
        self.run_description: str | None = None  # one line on what it trains, logged as training starts (build_training sets it)
        self.calibration_loader = calibration_loader
        self.live_evaluation = live_evaluation
        self.reporter = RunReporter(None, False, None, None)  # progress, metrics.csv and the curve of a run (train/metrics.py)
        #: The random streams training draws from (None: the process's global generators).
        self.random_streams = RandomStreams(seed) if isinstance(seed, int) else seed
        self.budget = TimeBudget(None)
        self.plan = BudgetPlan(self.budget)
        self.progress = TrainingProgress()
        self.elapsed = 0.0
        self.history: list[dict[str, float]] = []
        #: Files that could not be read during the last ``train_embedding`` (skipped, with a warning).
        self.skipped_files: list[str] = []
        self._base_lrs = [group["lr"] for group in optimizer.param_groups]
        step: nn.Module = TrainStep(self.model, self.criterion)
        if distributed.is_distributed():
            ids = [self.device.index] if self.device.type == "cuda" else None
            step = nn.parallel.DistributedDataParallel(step, device_ids=ids, find_unused_parameters=False)
        #: What one training step calls: :class:`TrainStep`, wrapped by DDP and ``torch.compile`` when they are on.
        self.step_module: nn.Module = torch.compile(step) if compile else step
        #: Runs each step: :class:`~easyssl.train.step.StepRunner` (CUDA graphs where possible, see ``cuda_graphs``).
        self.steps = StepRunner(self.model, optimizer, self.device, self.precision, enabled=cuda_graphs)

    # ------------------------------------------------------------------ training
    def views(self, batch: Any) -> list[torch.Tensor]:
        """The list of views of a loader batch, on the device and in the memory format of training."""
        samples = batch[0] if isinstance(batch, (list, tuple)) else batch
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        if self.batch_transform is not None:
            if hasattr(self.batch_transform, "set_progress"):  # views whose size follows training (transforms.FinalSizeViews)
                self.batch_transform.set_progress(self.progress.fraction)
            return [v.contiguous(memory_format=fmt) for v in self.batch_transform(samples.to(self.device, non_blocking=True))]
        if isinstance(samples, torch.Tensor):
            samples = [samples]
        return [v.to(self.device, non_blocking=True, memory_format=fmt) for v in samples]

    def _set_lr(self) -> None:
        if self.scheduler is not None or self.lr_schedule is None:
            return
        factor = self.lr_schedule(self.progress.fraction)
        for group, base in zip(self.optimizer.param_groups, self._base_lrs):
            group["lr"] = base * factor

    def _random(self) -> ContextManager:
        """The random streams of training: its own (see ``seed``) or the global ones."""
        return self.random_streams.active() if self.random_streams is not None else contextlib.nullcontext()

    def train_embedding(
        self,
        max_epochs: int | None = 10,
        max_steps: int | None = None,
        max_time: Any = None,
        checkpoint_dir: str | os.PathLike | None = AUTO_RUN_DIR,
        resume_from: str | os.PathLike | None = None,
        progress_bar: bool = True,
        keep_epoch_checkpoints: bool = False,
        started_at: float | None = None,
        gpus: int | None = None,
    ) -> str | None:
        """Train until ``max_epochs``, ``max_steps`` or ``max_time`` is reached, whichever comes first.

        A checkpoint ``checkpoint_dir/last.ckpt`` is written atomically after epochs (spaced out where they are short, see
        BudgetPlan.checkpoint_due) and at the end, so an interrupted run keeps its last one; ``Ctrl-C`` keeps it too.

        Args:
            max_epochs: Number of passes over the data (None: no epoch limit).
            max_steps: Number of optimisation steps (None: no step limit).
            max_time: Training-time budget: seconds or ``"DD:HH:MM:SS"`` (see :func:`~easyssl.runtime.budget.parse_max_time`).
            checkpoint_dir: Folder for checkpoints (default: a new ``easyssl_runs/<date_time>/``, logged; None: no checkpoints).
                The run holds the folder: a second run on it is refused meanwhile (:mod:`easyssl.train.lock`).
            gpus: LightlySSL's argument: 0 trains on the CPU, 1 on the GPU when there is one (else on the CPU, said once).
            resume_from: A checkpoint to continue from: model, optimiser, schedule,
                momentum encoders, memory banks and RNG state are restored.
            progress_bar: Show progress: a bar per epoch on a terminal or in a notebook, one line per epoch in logs.
            keep_epoch_checkpoints: Also keep ``epoch=N.ckpt`` for every epoch.
            started_at: The ``time.perf_counter()`` value ``max_time`` counts from (default: this call's start;
                :func:`easyssl.train_embedding_model` passes its own start, so set-up counts too).

        Returns:
            The path of the last checkpoint, or None when ``checkpoint_dir`` is None.
        """
        started_at = time.perf_counter() if started_at is None else started_at
        checkpoint_dir = before_training(self, gpus, checkpoint_dir)  # a dataloader, gpus, the default run folder, spawn-safe workers
        self.budget = TimeBudget(max_time)
        if max_epochs is None and max_steps is None and not self.budget:
            raise ValueError("give at least one of max_epochs, max_steps or max_time, or training never ends")
        if max_epochs is not None and max_epochs < 1:
            raise ValueError(f"max_epochs must be at least 1, got {max_epochs}: zero epochs would save an untrained model")
        start_epoch = 0
        if resume_from is not None:
            start_epoch = self.load_checkpoint(resume_from, restore_training_state=True)
        try:
            steps_per_epoch = len(self.dataloader)
        except TypeError:
            steps_per_epoch = 0
        if steps_per_epoch == 0:
            raise ValueError(
                "the dataloader yields no batches: the dataset is smaller than the batch size with drop_last=True; "
                "lower loader={'batch_size': ...} or add images"
            )
        planned = [x for x in (max_steps, max_epochs * steps_per_epoch if max_epochs else None) if x]
        self.progress.max_steps = min(planned) if planned else steps_per_epoch * 10**6
        self.progress.max_epochs = max_epochs or math.ceil(self.progress.max_steps / steps_per_epoch)
        self.budget.begin(started_at, already=self.elapsed)  # the wall clock from the call's start (see easyssl.train.timing)
        views = getattr(self.model, "embedding_views", IMAGE_ONLY)  # the pass embeds the model's test-time views
        self.plan = BudgetPlan(self.budget, calibration_size(self.calibration_loader), views_cost(views), self.device.type != "cpu")
        self.plan.seed_from_history(self.history)
        self.progress.max_time = self.budget.seconds
        self.progress.elapsed = self.elapsed
        checkpoint_path = os.path.join(os.fspath(checkpoint_dir), LAST_CHECKPOINT) if checkpoint_dir else None
        self.reporter = RunReporter.for_run(self, checkpoint_dir, progress_bar, max_epochs, steps_per_epoch)
        with hold_run_folder(checkpoint_dir if checkpoint_path else None), self._random():  # one run per checkpoint folder
            if self.run_description and distributed.is_main_process():  # logged once the folder is this run's
                logger.info("easyssl: %s", self.run_description)
            self.plan.mark("set-up")
            epoch = self._train_epochs(start_epoch, max_epochs, max_steps, progress_bar, checkpoint_path, keep_epoch_checkpoints)
            self.plan.training_ended()
            if self.calibration_loader is not None and self.history:
                # Every process computes the same statistics (no collective); a budget's deadline leaves the last checkpoint its share.
                deadline = self.plan.calibration_deadline() if self.budget else None
                self.plan.calibrated_images = calibrate_embeddings(self.model, self.calibration_loader, self.device, self.precision,
                                                                   self.channels_last, deadline=deadline)
                self.plan.mark("whitening")
                self.elapsed = self.budget.used()
                self.model.train()
                if checkpoint_path and distributed.is_main_process():
                    self.save_checkpoint(checkpoint_path, epochs_done=epoch)
                    self.plan.mark("final checkpoint")
        logger.info(self.plan.report(started_at, self.history[start_epoch:]))  # where the call's time went
        distributed.barrier()
        self._report_skipped()
        return checkpoint_path

    def _train_epochs(self, epoch: int, max_epochs: int | None, max_steps: int | None, progress_bar: bool,
                      checkpoint_path: str | None, keep_epoch_checkpoints: bool) -> int:
        """Epochs from ``epoch`` until a limit; returns the number of completed epochs."""
        start_epoch = epoch

        def done() -> bool:
            over = self.plan.stop_now()  # keeps back the calibration pass and the last checkpoint (see BudgetPlan)
            if distributed.is_distributed():  # all processes must agree, or the next collective hangs
                over = bool(distributed.all_reduce_max([float(over)], self.device)[0])
            return (max_steps is not None and self.progress.step >= max_steps) or over

        self.model.train()
        try:
            while (max_epochs is None or epoch < max_epochs) and not done():
                self.progress.epoch = epoch
                sampler = getattr(self.dataloader, "sampler", None)
                if hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(epoch)
                with explain_out_of_memory(getattr(self.dataloader, "batch_size", None), self.device):  # names the batch size and the memory
                    finished = self._train_epoch(epoch, max_steps, progress_bar)
                self.reporter.epoch_done(self, epoch + int(finished), not finished or (max_epochs is not None and epoch + 1 >= max_epochs) or done())
                if (finished and self.calibration_loader is not None and not self.plan.calibration_timed and not done()
                        and self.plan.calibration_probe_affordable(getattr(self.calibration_loader, "batch_size", None) or 256)):
                    # the pass that follows training, timed on two of its batches: its share of the budget (see BudgetPlan)
                    self.plan.calibration_timed = True
                    self.plan.measure_calibration(*time_calibration(self.model, self.calibration_loader, self.device, self.precision,
                                                                    self.channels_last))
                self.plan.update()
                if finished:
                    epoch += 1
                    budget = self.budget.seconds
                    if budget is not None and self.elapsed > 0:  # time-bound: re-estimate the epochs that fit
                        fit = epoch + int((budget - self.elapsed) / (self.elapsed / max(1, epoch - start_epoch)))
                        self.progress.max_epochs = max(epoch, min(fit, max_epochs or fit))
                final = not finished or (max_epochs is not None and epoch >= max_epochs) or done()  # on every rank (done() may reduce)
                # Short epochs: last.ckpt at most once per 20 write times; the final one always, after the pass if one follows (BudgetPlan.checkpoint_due).
                main = checkpoint_path and distributed.is_main_process()
                if main and self.plan.checkpoint_due(final, pass_follows=self.calibration_loader is not None):
                    written = time.perf_counter()
                    self.save_checkpoint(checkpoint_path, epochs_done=epoch)
                    self.plan.record_checkpoint(time.perf_counter() - written)
                if main and keep_epoch_checkpoints and finished:  # asked for: every epoch's, spaced or not
                    self.save_checkpoint(os.path.join(os.path.dirname(checkpoint_path), f"epoch={epoch}.ckpt"), epochs_done=epoch)
                if not finished:
                    break
        except KeyboardInterrupt:
            kept = f"; the last checkpoint is kept at {checkpoint_path}" if checkpoint_path and os.path.exists(checkpoint_path) else ""
            logger.warning(f"\neasyssl: training interrupted at epoch {epoch}, step {self.progress.step}{kept}")
            raise
        return epoch

    def _report_skipped(self) -> None:
        """Collect the files skipped by every process's loader, store them in ``skipped_files`` and log a summary."""
        dataset = getattr(self.dataloader, "dataset", None)
        for _ in range(4):  # datasets wrapped by caches or subsets keep theirs in .dataset
            if dataset is None or hasattr(dataset, "skipped_files"):
                break
            dataset = getattr(dataset, "dataset", None)
        local = list(dataset.skipped_files()) if dataset is not None and hasattr(dataset, "skipped_files") else []
        names = sorted({name for names in distributed.all_gather_object(local) for name in names})
        self.skipped_files = names
        if names and distributed.is_main_process():
            shown = ", ".join(names[:20]) + (f", ... ({len(names) - 20} more)" if len(names) > 20 else "")
            logger.warning(f"easyssl: skipped {len(names)} unreadable file(s) during training: {shown}")

    def _train_epoch(self, epoch: int, max_steps: int | None, progress_bar: bool) -> bool:
        """One pass over the loader; False when a step or time budget stopped it early."""
        total = len(self.dataloader)
        bar = self.reporter.bar(epoch, total, self.elapsed, self.progress.max_epochs)
        losses: list[torch.Tensor] = []
        images = seen = 0
        start = last = time.perf_counter()
        stopped = False
        for batch in self.dataloader:
            seen += 1
            views = [] if is_empty_batch(batch) else self.views(batch)
            size = views[0].shape[0] if views else 0
            if distributed.is_distributed():
                # Every process must take the same steps with the same batch size (gathered losses,
                # DDP): trim to the smallest batch (files may have been skipped) and stop together.
                neg_size, over_any = distributed.all_reduce_max([-size, float(self.plan.stop_now(self.elapsed))], self.device)
                if over_any:
                    stopped = True
                    break
                size = int(-neg_size)
                views = [v[:size] for v in views]
            if size == 0:  # every file of this batch was unreadable
                bar.update(1)
                continue
            self._set_lr()
            loss = self.steps(self.step_module, views, self.progress)  # forward, backward, update (a CUDA graph's replay where it can)
            if self.scheduler is not None:
                self.scheduler.step()
            self.model.on_after_step(self.progress)
            self.progress.step += 1
            losses.append(loss.detach())
            images += views[0].shape[0]
            now = time.perf_counter()
            self.plan.record_step(views[0].shape[0], now - last)
            self.elapsed = self.budget.used()
            self.progress.elapsed = self.elapsed
            last = now
            if (seen - 1) % 10 == 0 or seen == total:
                # Reading the loss waits for the device, so it is done every 10 steps, not every step.
                value = loss.item()
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"the loss became {value} at epoch {epoch + 1}, step {self.progress.step}: lower the learning rate "
                        "(optimizer={'lr': ...}) or use precision='32'; the last checkpoint was kept"
                    )
                bar.set_postfix(loss=f"{value:.4f}", img_s=f"{images / max(1e-9, now - start):.0f}")
                self.reporter.sample(self.progress.step, value)
            bar.update(1)
            if (max_steps is not None and self.progress.step >= max_steps) or (
                self.plan.stop_now(self.elapsed) and not distributed.is_distributed()
            ):
                stopped = seen < total
                break
        bar.close()
        seconds = time.perf_counter() - start
        mean_loss = torch.stack(losses).mean().item() if losses else float("nan")
        self.history.append(
            {"epoch": epoch + 1, "loss": mean_loss, "images": images, "seconds": seconds, "images_per_second": images / max(seconds, 1e-9),
             "step": self.progress.step, "lr": float(self.optimizer.param_groups[0]["lr"]), "elapsed": self.elapsed}
        )
        return not stopped

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, epochs_done: int) -> dict[str, Any]:
        """Everything needed to rebuild the model and to resume training (see :func:`~easyssl.train.state.training_state`)."""
        return training_state(self, epochs_done)

    def save_checkpoint(self, path: str | os.PathLike, epochs_done: int | None = None) -> str:
        """Write a checkpoint atomically (temporary file, then rename) and return its path."""
        return save_checkpoint(path, self.state_dict(self.progress.epoch if epochs_done is None else epochs_done))

    def load_checkpoint(self, path: str | os.PathLike, restore_training_state: bool = True) -> int:
        """Load weights (and, with ``restore_training_state``, optimiser, schedule, loss and RNG state).

        Returns:
            The number of completed epochs recorded in the checkpoint.
        """
        state = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(state["model"])
        if restore_training_state:
            restore_state(self, state)
        return int(state.get("epoch", 0))

    # ------------------------------------------------------------------ embedding
    def embed(self, dataloader: DataLoader, progress_bar: bool = True, whiten: bool = True) -> tuple[np.ndarray, list[int], list[str]]:
        """Embed every image of ``dataloader`` with the model's backbone.

        The loader yields ``(images, targets, filenames)`` with deterministic
        (evaluation) transforms. Runs in eval mode under ``torch.inference_mode``. Features
        are whitened with the model's embedding statistics when it has them (set at the end
        of training from ``calibration_loader``); ``whiten=False`` gives the raw ones.

        Returns:
            ``(embeddings, labels, filenames)``: a float32 array ``(N, D)``, and lists of ``N``
            labels and filenames in the loader's order.
        """
        return embed_with(self.model, embedding_loader(self, dataloader), self.device, self.precision, self.channels_last, progress_bar, whiten)
