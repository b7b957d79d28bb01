"""What a run folder says about its training: ``metrics.csv``, the ``training_curve.png`` loss curve, and the progress lines.

The history lives in the checkpoint too (``state["history"]``), but a user should not need
``torch.load`` to see whether the loss went down: after every epoch the trainer rewrites
``metrics.csv`` (one row per epoch, from the whole history, so a resumed run keeps its earlier
rows) and redraws the curve with PIL (matplotlib is not a dependency). :class:`RunReporter`
is the trainer's one object for all of this: the per-epoch bar or line, the loss samples of
the curve, the files and the warnings about runs too small to learn much.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
import warnings
from typing import Any, Sequence

from PIL import Image, ImageDraw, ImageFont

from easyssl.runtime import distributed
from easyssl.runtime.files import atomic_save, atomic_write
from easyssl.runtime.progress import progress_bar, progress_mode

#: File names written into the run folder.
METRICS_FILE = "metrics.csv"
CURVE_FILE = "training_curve.png"
#: The curve is redrawn at most this often (seconds), and after the last epoch: a run of many short epochs
#: would otherwise spend a noticeable share of its time drawing (about 25 ms a picture).
CURVE_EVERY_SECONDS = 10.0
#: Columns of ``metrics.csv``, in order; live evaluation adds :data:`EVAL_COLUMNS`.
COLUMNS = ("epoch", "step", "loss", "lr", "images_per_second", "elapsed")
EVAL_COLUMNS = ("knn_top1", "eval_seconds")

_INK, _GRID, _LOSS, _KNN, _TRACE = (0, 0, 0), (225, 225, 225), (31, 119, 180), (214, 39, 40), (160, 190, 225)


def format_seconds(seconds: float) -> str:
    """``0:05``, ``1:05`` or ``1:02:03`` from seconds, for progress lines."""
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def write_metrics(path: str | os.PathLike, history: Sequence[dict[str, Any]]) -> str:
    """Write ``history`` (the trainer's per-epoch records) as a CSV with :data:`COLUMNS` (plus the
    live-evaluation columns when any epoch has them), atomically; returns the path."""
    path = os.fspath(path)
    columns = list(COLUMNS) + [c for c in EVAL_COLUMNS if any(c in row for row in history)]
    with atomic_write(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in history:
            writer.writerow([_cell(row.get(c)) for c in columns])
    return path


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv`` as dicts of floats (empty cells left out)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]


# --------------------------------------------------------------------------- the curve
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten apart) covering ``[low, high]``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:.4g}"


def _panel(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], xs: list[float], series: list[tuple[list[float], list[float], tuple, int]],
           x_range: tuple[float, float], ylabel: str, xlabel: str, fonts: tuple[Any, Any]) -> None:
    """One chart: axes in ``box``, ticks with values, axis labels, and each ``(x, y, colour, width)`` series as a line."""
    font, small = fonts
    x0, y0, x1, y1 = box
    ys = [y for _, values, _, _ in series for y in values if math.isfinite(y)]
    low, high = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    pad = 0.05 * (high - low)
    low, high = low - pad, high + pad
    xmin, xmax = x_range
    if xmax - xmin < 1e-12:
        xmin, xmax = xmin - 1, xmax + 1

    def at(x: float, y: float) -> tuple[float, float]:
        return x0 + (x - xmin) / (xmax - xmin) * (x1 - x0), y1 - (y - low) / (high - low) * (y1 - y0)

    for tick in nice_ticks(low, high):
        _, py = at(xmin, tick)
        draw.line([(x0, py), (x1, py)], fill=_GRID)
        text = _label(tick)
        draw.text((x0 - 6 - draw.textlength(text, font=small), py - 7), text, fill=_INK, font=small)
    for tick in nice_ticks(xmin, xmax):
        px, _ = at(tick, low)
        draw.line([(px, y1), (px, y1 + 4)], fill=_INK)
        text = _label(tick)
        draw.text((px - draw.textlength(text, font=small) / 2, y1 + 6), text, fill=_INK, font=small)
    draw.rectangle(box, outline=_INK)
    draw.text(((x0 + x1) / 2 - draw.textlength(xlabel, font=font) / 2, y1 + 24), xlabel, fill=_INK, font=font)
    draw.text((x0, y0 - 22), ylabel, fill=_INK, font=font)
    for x_values, y_values, colour, width in series:
        points = [at(x, y) for x, y in zip(x_values, y_values) if math.isfinite(y)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=width, joint="curve")
        for px, py in points if len(points) <= 60 and width > 1 else []:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)


def plot_training_curve(history: Sequence[dict[str, Any]], path: str | os.PathLike, trace: Sequence[tuple[int, float]] = (),
                        title: str = "training loss", size: tuple[int, int] = (800, 480)) -> str:
    """Draw the loss curve of a run as a PNG and return its path.

    The x axis is the optimisation step: the mean loss of each epoch (``history``) as a line
    with dots, over the loss sampled every few steps (``trace``, this session's, faint) so
    that a run of one or two epochs still shows its curve. When the history holds live
    evaluation (``knn_top1``), a second panel below shows kNN top-1 accuracy per epoch.
    """
    path = os.fspath(path)
    has_knn = any("knn_top1" in row for row in history)
    width, height = size[0], size[1] + (260 if has_knn else 0)
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    fonts = (_font(15), _font(12))
    draw.text((width / 2 - draw.textlength(title, font=_font(17)) / 2, 10), title, fill=_INK, font=_font(17))
    steps = [float(row.get("step", row.get("epoch", i + 1))) for i, row in enumerate(history)]
    losses = [float(row.get("loss", float("nan"))) for row in history]
    trace = list(trace)[:: max(1, len(trace) // 4000)]  # a long run's samples, thinned to what 800 pixels can show
    trace_x = [float(s) for s, _ in trace]
    trace_y = [float(v) for _, v in trace]
    xs = steps + trace_x
    x_range = (0.0, max(xs) if xs else 1.0)
    box = (80, 64, width - 30, size[1] - 56)
    _panel(draw, box, xs, [(trace_x, trace_y, _TRACE, 1), (steps, losses, _LOSS, 3)], x_range, "loss (mean per epoch; faint: every few steps)", "step", fonts)
    if has_knn:
        rows = [(s, float(row["knn_top1"])) for s, row in zip(steps, history) if "knn_top1" in row]
        knn_box = (80, size[1] + 20, width - 30, height - 56)
        _panel(draw, knn_box, xs, [([r[0] for r in rows], [r[1] for r in rows], _KNN, 3)], x_range, "kNN top-1 on the evaluation folder", "step", fonts)
    return atomic_save(path, lambda handle: image.save(handle, format="PNG"))


# --------------------------------------------------------------------------- during training
def check_run_size(num_images: int, batch_size: int, steps_per_epoch: int) -> None:
    """Warn when a run is too small to learn much: fewer than two batches per epoch, or a batch as large as the set."""
    if num_images and batch_size >= num_images:
        warnings.warn(
            f"only {num_images} images, trained in one batch of {batch_size} per epoch: self-supervised learning needs "
            "many images (hundreds at least) and several batches; add images", stacklevel=4)
    elif steps_per_epoch < 2:
        warnings.warn(
            f"only {steps_per_epoch} batch of {batch_size} per epoch ({num_images} images): add images or lower "
            "loader={'batch_size': ...} so that an epoch has several steps", stacklevel=4)


class RunReporter:
    """Progress and outputs of one ``train_embedding`` call: the bar of each epoch (a terminal or notebook)
    or one line per epoch (logs), loss samples for the curve, and ``metrics.csv`` plus the curve after every epoch.

    Args:
        run_dir: The run folder (None: nothing written).
        show: Progress wanted (``progress_bar`` and the main process).
        max_epochs: The epoch limit the user gave (None: bounded by steps or time).
        budget_seconds: The time budget (None: none); with one, the progress says the time left.
    """

    def __init__(self, run_dir: str | None, show: bool, max_epochs: int | None, budget_seconds: float | None) -> None:
        self.run_dir = run_dir
        self.show = show
        self.lines = show and progress_mode() == "lines"
        self.max_epochs = max_epochs
        self.budget_seconds = budget_seconds
        self.trace: list[tuple[int, float]] = []
        self.drawn_at = -math.inf

    @classmethod
    def for_run(cls, trainer: Any, checkpoint_dir: Any, progress_bar: bool, max_epochs: int | None, steps_per_epoch: int) -> "RunReporter":
        """The reporter of one ``train_embedding`` call of ``trainer`` (files and progress on the main process only),
        after warning when the run is too small to learn much (:func:`check_run_size`)."""
        main = distributed.is_main_process()
        loader = trainer.dataloader
        check_run_size(len(getattr(loader, "dataset", ())), int(getattr(loader, "batch_size", 0) or 0), steps_per_epoch)
        run_dir = os.fspath(checkpoint_dir) if checkpoint_dir and main else None
        return cls(run_dir, progress_bar and main, max_epochs, trainer.budget.seconds)

    def label(self, epoch: int, elapsed: float, max_epochs: int | None = None) -> str:
        """``epoch 3/10``, or ``epoch 3 (1:05 left)`` under a time budget (never ``epoch 3/1000000``)."""
        if self.budget_seconds is not None:
            left = format_seconds(self.budget_seconds - elapsed)
            return f"epoch {epoch + 1}" + (f"/{self.max_epochs}" if self.max_epochs else "") + f" ({left} left)"
        limit = self.max_epochs or max_epochs
        return f"epoch {epoch + 1}" + (f"/{limit}" if limit and limit < 10**6 else "")

    def bar(self, epoch: int, total: int, elapsed: float, max_epochs: int | None = None) -> Any:
        """The bar of one epoch (disabled, yet counting, in ``lines`` mode)."""
        return progress_bar(total=total, desc=self.label(epoch, elapsed, max_epochs), enabled=self.show and not self.lines, leave=True)

    def sample(self, step: int, loss: float) -> None:
        """Keep a loss sample for the curve (the trainer reads the loss every few steps anyway)."""
        self.trace.append((int(step), float(loss)))

    def epoch_done(self, trainer: Any, epochs_done: int, last: bool) -> None:
        """After an epoch of ``trainer``: its live evaluation when due (and after the last epoch), then the progress
        line and ``metrics.csv`` and the curve, rewritten."""
        live, history = trainer.live_evaluation, trainer.history
        if not history:
            return
        if live is not None and (live.due(epochs_done) or last):
            seconds = sum(h["seconds"] for h in history)  # the evaluation's size is set from them at its first run
            live.choose_images(seconds, sum(h["images"] for h in history) / max(1e-9, seconds))
            history[-1].update(live(trainer.model, trainer.device, trainer.precision, trainer.channels_last))
            # Its time counts against a time budget: a last evaluation past the stop point comes out of the
            # whitening pass's share, which stops at its own deadline (easyssl.train.timing), not out of the budget.
            trainer.elapsed = trainer.budget.used()
            trainer.model.train()
        self.write(history, trainer.progress.max_epochs, last)

    def write(self, history: Sequence[dict[str, Any]], max_epochs: int | None = None, last: bool = True) -> None:
        """Print the last epoch's line (``lines`` mode; its kNN line otherwise) and rewrite ``metrics.csv`` and the curve
        (the curve at most every :data:`CURVE_EVERY_SECONDS`, and always when ``last``)."""
        row = history[-1]
        if "knn_top1" in row and self.show and not self.lines:
            print(f"epoch {int(row['epoch'])}: kNN top-1 {row['knn_top1']:.3f} ({row['eval_seconds']:.1f} s)", file=sys.stderr, flush=True)
        if self.lines:
            line = (f"{self.label(int(row['epoch']) - 1, float(row.get('elapsed', 0.0)), max_epochs)}: step {row.get('step', '?')}"
                    f"  loss {row['loss']:.4f}  lr {row.get('lr', float('nan')):.3g}  {row['images_per_second']:.0f} img/s"
                    f"  {format_seconds(float(row.get('elapsed', 0.0)))} elapsed")
            if "knn_top1" in row:
                line += f"  kNN top-1 {row['knn_top1']:.3f}"
            print(line, file=sys.stderr, flush=True)
        if self.run_dir:
            os.makedirs(self.run_dir, exist_ok=True)
            write_metrics(os.path.join(self.run_dir, METRICS_FILE), history)
            if not last and time.monotonic() - self.drawn_at < CURVE_EVERY_SECONDS:
                return
            self.drawn_at = time.monotonic()
            title = f"training loss: {os.path.basename(os.path.abspath(self.run_dir))}"
            plot_training_curve(history, os.path.join(self.run_dir, CURVE_FILE), self.trace, title=title)
