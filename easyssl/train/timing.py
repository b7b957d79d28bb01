"""Keeping a training call within its time budget: what training measures, and what it sets aside for after.

A ``max_time`` is the wall time the caller waits (see :class:`~easyssl.runtime.budget.TimeBudget`). Training
must stop early enough for what follows it: the whitening (calibration) pass over up to 10,000 training
images and the final checkpoint. :class:`BudgetPlan` measures, while training, the seconds per training image
(decoding into the cache included in the first epoch), the seconds of a step and of a checkpoint write, and
from them keeps back the time of the calibration pass (a forward pass per image is taken as :data:`EMBED_COST` of a
training image's time) and of the last checkpoint write. The trainer
stops before a step that would cross the stop point, and the calibration pass stops at its own deadline,
so a wrong estimate costs calibration images, not the budget.
"""

from __future__ import annotations

import time

from easyssl.runtime.budget import TimeBudget

#: A forward pass of one image (evaluation transform, read from the cache) costs about this fraction of a training
#: image (two augmented views, forward and backward). Measured on 2 CPU cores (idle, 2026-11-26), defaults on 10,000
#: Fashion-MNIST images: training 2.0-2.1 ms per image, the calibration pass 2.5-2.7 s for 10,000 images (0.25 ms), so
#: 1/8. The earlier guess of 1/3 kept back 6 s for a 2.6 s pass and ended a 30-s call 3.4 s early. Too low an estimate
#: costs calibration images (the pass stops at its deadline), not the budget.
EMBED_COST = 1 / 8

#: Seconds kept back for the final checkpoint write before any write has been timed.
FIRST_CHECKPOINT_GUESS = 0.5

#: Checkpoints after epochs are written at most once per this many checkpoint-write times (5 % of the time).
CHECKPOINT_SPACING = 20

#: At most this fraction of the budget is kept back for the calibration pass: when embedding every planned image
#: would take longer, the pass stops at its deadline with fewer images (the whitening's shrinkage grows with D/N).
MAX_CALIBRATION_SHARE = 0.2

#: On a device that runs the host's work asynchronously (CUDA, Apple GPUs), the pass's estimate is raised by this
#: fraction, and :data:`ASYNC_SLACK_SHARE` of the budget is kept back besides. Measured on an H200 (twenty-second
#: session: Fashion-MNIST within ``max_time`` 60, and 32 px crops of photos within 30): planned from one timed batch of a
#: few milliseconds alone, 4 of 5 passes of 0.3-0.6 s were cut at their deadline (2,048 to 7,936 of 10,000 images);
#: with the margin and the slack (1.2 s of 60, about two epochs) none of 4, training ending 0.02-0.06 s past its stop
#: point. The likely causes, inferred and not timed apart: one batch is a poor sample at that scale, the host's clock
#: runs ahead of the device's queued work, and an epoch's end (the loader's stop, the last loss read) is not a step the
#: plan sees. Not on a CPU, where the pass and its timed batch are both arithmetic and every 10-minute pass since the
#: eighth session was whole.
ASYNC_MARGIN = 0.25
ASYNC_SLACK_SHARE = 0.01


class BudgetPlan:
    """The measurements behind a trainer's time budget.

    Args:
        budget: The trainer's budget (started, see :meth:`~easyssl.runtime.budget.TimeBudget.begin`).
        calibration_images: Images the calibration pass embeds after training (0: none).
        views_cost: The cost of one image's embedding in forward passes of the image alone: more with the model's
            test-time views (:func:`easyssl.nn.views_cost` of ``model.embedding_views``: 4.6 for small images).
        asynchronous: Whether the training device runs the host's work asynchronously (a GPU): the pass then gets
            :data:`ASYNC_MARGIN` more and :data:`ASYNC_SLACK_SHARE` of the budget besides (see there).

    Example:
        >>> plan = BudgetPlan(budget, calibration_images=10_000)
        >>> plan.record_step(images=128, seconds=0.4)   # after every step
        >>> plan.stop_now()                              # before the next one
        False
    """

    def __init__(self, budget: TimeBudget, calibration_images: int = 0, views_cost: float = 1.0, asynchronous: bool = False) -> None:
        self.budget = budget
        self.calibration_images = int(calibration_images)
        self.views_cost = float(views_cost)
        self.asynchronous = bool(asynchronous)
        #: Seconds training ran past its stop point (the budget less what was kept back), set when it ends: what the
        #: last step, the epoch's end and the device's queued work took beyond the plan, out of the pass's time.
        self.stop_overrun: float | None = None
        self.images = 0
        self.seconds = 0.0
        self.step_seconds = 0.0
        self.image_seconds = 0.0  # recent seconds per training image, smoothed (0: not measured yet)
        self.checkpoint_seconds = FIRST_CHECKPOINT_GUESS
        self.warm = False
        self.last_write: float | None = None
        self.written_seconds = 0.0  # every checkpoint write of the run so far
        self.marks: list[tuple[str, float]] = []
        #: Seconds per calibration image, timed on a batch of the pass itself (:meth:`measure_calibration`); None: modelled.
        self.calibration_rate: float | None = None
        #: Whether the trainer tried to time the pass (once a run: a loader with workers is not timed, see time_calibration).
        self.calibration_timed = False
        #: Images the calibration pass embedded (None: it has not run), for :meth:`report`.
        self.calibrated_images: int | None = None
        self.update()

    def seed_from_history(self, history: list[dict]) -> None:
        """Start from the training rate of earlier epochs (a resumed run)."""
        self.images = int(sum(h.get("images", 0) for h in history))
        self.seconds = float(sum(h.get("seconds", 0.0) for h in history))
        self.update()

    def record_step(self, images: int, seconds: float) -> None:
        """One step of ``images`` images took ``seconds`` (loading, augmentation and the model).

        The first step of a run is left out: it pays one-off costs (loader start-up, kernel selection, compilation)
        that would make the rate look several times slower than it is (measured: 6 s for a first CPU step of 0.5 s).
        """
        if not self.warm:  # its duration is still the best guess of the next step's (too long rather than too short)
            self.warm = True
            self.step_seconds = float(seconds)
            return
        # The last steps' duration, smoothed: what the next step will likely take.
        self.step_seconds = seconds if self.images == 0 else 0.7 * self.step_seconds + 0.3 * seconds
        if images:
            rate = float(seconds) / int(images)
            self.image_seconds = rate if not self.image_seconds else 0.9 * self.image_seconds + 0.1 * rate
        self.images += int(images)
        self.seconds += float(seconds)
        self.update()

    def record_checkpoint(self, seconds: float) -> None:
        """A checkpoint write took ``seconds``: the final one is expected to take as long."""
        self.checkpoint_seconds = float(seconds)
        self.written_seconds += float(seconds)
        self.last_write = time.perf_counter()

    def checkpoint_due(self, final: bool = False, pass_follows: bool = False) -> bool:
        """Whether to write ``last.ckpt`` after this epoch: always for the ``final`` one and the first, else once
        :data:`CHECKPOINT_SPACING` write times have passed since the last write. On a GPU an epoch of a small set
        takes about a second and a checkpoint a few tenths (fsync included): writing after every epoch cost
        12 of the 72 s of a 60 s Fashion-MNIST run; spaced out, checkpoints cost at most 5 % of the time.

        ``pass_follows``: the calibration pass follows training and the final checkpoint is written after it (seconds
        later at most), so after the ``final`` epoch nothing is written: a write there would come out of the time kept
        for the pass, which plans one write only (on an H200 a write took 0.2-0.3 s, as long as the pass's half).
        A pass that fails leaves the last spaced-out write, at most :data:`CHECKPOINT_SPACING` write times old.
        """
        if final:
            return not pass_follows
        if self.last_write is None:
            return True
        return time.perf_counter() - self.last_write >= CHECKPOINT_SPACING * self.checkpoint_seconds

    def measure_calibration(self, images: int, seconds: float) -> None:
        """A batch of ``images`` calibration images took ``seconds`` to embed: the pass is planned from this rate from
        now on, not from the training steps' (see :meth:`calibration_seconds`)."""
        if images > 0 and seconds > 0:
            self.calibration_rate = float(seconds) / int(images)
            self.update()

    def calibration_probe_affordable(self, batch_size: int) -> bool:
        """Whether timing two batches of ``batch_size`` images of the pass (what the trainer embeds to measure it) costs
        at most a tenth of the budget that is left, at the modelled rate. A 6-s CPU run's probe took 2.4 s of it."""
        if not self.budget.seconds or not self.images or not self.seconds:
            return False
        modelled = EMBED_COST * self.views_cost * (self.image_seconds or self.seconds / self.images)
        images = min(2 * batch_size, self.calibration_images) if self.calibration_images else 2 * batch_size
        return images * modelled <= 0.1 * (self.budget.seconds - self.budget.used())

    def calibration_seconds(self, images: int | None = None) -> float:
        """Estimated seconds of the calibration pass over ``images`` (default: the planned number); 0 before any measurement.

        From a timed batch of the pass where the trainer measured one (:meth:`measure_calibration`), else from the
        recent training steps' seconds per image (not the run's average: the first epoch also decodes every file into
        the cache, which the calibration pass then reads, so the average overstates the pass's cost) times
        :data:`EMBED_COST`. That ratio holds on a CPU, where both are bound by arithmetic; on a GPU whose steps are
        replayed as CUDA graphs a training image cost a few microseconds while the pass's forward passes still paid
        every kernel launch, and the modelled 0.2 s most likely left a pass of 10,000 Fashion-MNIST images a fraction of them
        (the whitening took 0.3 s there, and the embeddings scored what a whitening of a few hundred images scores).
        """
        images = self.calibration_images if images is None else int(images)
        if self.calibration_rate is not None and images:
            seconds = images * self.calibration_rate
            return min(seconds, MAX_CALIBRATION_SHARE * self.budget.seconds) if self.budget.seconds else seconds
        if not images or not self.images or not self.seconds:
            return 0.0
        per_image = self.image_seconds or self.seconds / self.images
        seconds = images * EMBED_COST * self.views_cost * per_image
        return min(seconds, MAX_CALIBRATION_SHARE * self.budget.seconds) if self.budget.seconds else seconds

    def calibration_reserve(self) -> float:
        """Seconds kept back for the calibration pass: :meth:`calibration_seconds`, and on an asynchronous device
        :data:`ASYNC_MARGIN` more plus :data:`ASYNC_SLACK_SHARE` of the budget (0 while the pass costs nothing)."""
        seconds = self.calibration_seconds()
        if self.asynchronous and seconds > 0:
            seconds = seconds * (1 + ASYNC_MARGIN) + ASYNC_SLACK_SHARE * (self.budget.seconds or 0.0)
        return seconds

    def update(self) -> None:
        """Set aside the calibration pass and the final checkpoint write from the latest measurements."""
        self.budget.set_aside(self.calibration_reserve() + self.checkpoint_seconds)

    def training_ended(self) -> None:
        """Training stops now: record how far past its stop point (:attr:`stop_overrun`, with a budget), then mark it."""
        if self.budget.seconds is not None:
            self.stop_overrun = self.budget.used() - self.budget.stop_at
        self.mark("training")

    def stop_now(self, elapsed: float | None = None) -> bool:
        """True when the next step would end past the stop point (always False without a budget)."""
        return self.budget.exhausted(elapsed, upcoming=self.step_seconds)

    def calibration_deadline(self) -> float:
        """``time.perf_counter()`` value by which the calibration pass must end: the budget less the final checkpoint write."""
        return self.budget.deadline(keep=self.checkpoint_seconds)

    def mark(self, phase: str) -> None:
        """``phase`` of the call (``"set-up"``, ``"training"``, ``"whitening"``, ``"final checkpoint"``) ends now."""
        self.marks.append((phase, time.perf_counter()))

    def phases(self, started_at: float) -> dict[str, float]:
        """Seconds of each marked phase, from ``started_at`` (the call's start) on: where a call's wall time went."""
        seconds, last = {}, started_at
        for phase, at in self.marks:
            seconds[phase] = seconds.get(phase, 0.0) + at - last
            last = at
        return seconds

    def report(self, started_at: float, epochs: list[dict]) -> str:
        """One line of :meth:`phases`: the fixed costs that a short run pays (issue 11: 5 of the 12 s of a two-epoch
        GPU run went outside the epochs), with the first epoch apart (it also fills the cache) and the
        checkpoint writes between epochs."""
        phases = self.phases(started_at)
        parts = [f"{phase} {seconds:.1f} s" for phase, seconds in phases.items()]
        notes = []
        if epochs:
            first = f", the first {epochs[0]['seconds']:.1f} s" if len(epochs) > 1 else ""
            notes.append(f"{len(epochs)} epoch(s){first}; checkpoints {self.written_seconds:.1f} s")
        if self.stop_overrun is not None and self.stop_overrun > 0:  # taken from the pass's share
            notes.append(f"{self.stop_overrun:.2f} s past its stop point")
        if "training" in phases and notes:
            parts[list(phases).index("training")] += f" ({'; '.join(notes)})"
        if "whitening" in phases and self.calibrated_images is not None:  # a pass cut short by its deadline shows here
            parts[list(phases).index("whitening")] += f" ({self.calibrated_images:,} of {self.calibration_images:,} images)"
        return f"easyssl: {sum(phases.values()):.1f} s: " + ", ".join(parts)
