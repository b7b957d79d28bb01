"""Where each point of an embedding plot goes: class colours and names, the plot's layout, its framing and pixels.

:mod:`easyssl.tools.manifold` makes the 2-D points (UMAP, t-SNE or PCA);
:mod:`easyssl.tools.visualize` draws with these; tests use :func:`pixel_positions` to find the
pixel of every point.
"""

from __future__ import annotations

import colorsys
import os
from functools import lru_cache
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from easyssl.data.scan import list_image_folder
from easyssl.tools.arrays import ArrayLike
from easyssl.tools.manifold import pca_2d, project_2d

__all__ = ["PALETTE", "UNLABELED_COLOR", "check_size", "dataset_class_names", "folder_class_names", "font_size", "frame_bounds", "grid_snap",
           "load_font", "map_points", "palette_color", "pca_2d", "pixel_positions", "plot_layout", "prepare_labels", "to_pixels"]

RGB = tuple[int, int, int]


def _hex(h: str) -> RGB:
    return (int(h[1:3], 16), int(h[3:5], 16), int(h[5:7], 16))


#: Class colours: the 10 "tab10" colours followed by their 10 lighter "tab20"
#: companions. Integer labels ``0..19`` map to ``PALETTE[label]``.
PALETTE: tuple[RGB, ...] = tuple(
    _hex(h)
    for h in (
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
        "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
        "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
    )
)  # fmt: skip
#: Point colour when no labels are given.
UNLABELED_COLOR: RGB = (110, 110, 110)


def palette_color(i: int) -> RGB:
    """Colour number ``i``: :data:`PALETTE` first, then evenly spread hues."""
    if 0 <= i < len(PALETTE):
        return PALETTE[i]
    hue = (i * 0.618033988749895) % 1.0  # golden-ratio hue steps stay distinct
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.85)
    return (round(r * 255), round(g * 255), round(b * 255))


def check_size(size: object) -> tuple[int, int]:
    """A plot's ``(width, height)`` in pixels, at least 64 each."""
    try:
        w, h = (int(v) for v in size)  # type: ignore[union-attr]
    except Exception:
        raise ValueError(f"size must be a (width, height) pair of integers, got {size!r}") from None
    if w < 64 or h < 64:
        raise ValueError(f"size must be at least (64, 64) pixels, got {(w, h)}")
    return w, h


def prepare_labels(
    labels: Optional[ArrayLike], num: int, class_names: Optional[Union[Sequence[str], Mapping]]
) -> tuple[Optional[np.ndarray], list[tuple[str, RGB]], list[RGB]]:
    """(per-point colour index or None, legend entries, colours by index)."""
    if labels is None:
        return None, [], [UNLABELED_COLOR]
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != num:
        raise ValueError(f"labels must be a 1-D sequence with one label per embedding ({num}), got shape {lab.shape}")
    classes, inverse = np.unique(lab, return_inverse=True)
    integer = lab.dtype.kind in "iu" or (lab.dtype.kind == "b")
    if integer and classes.min() >= 0:
        color_ids = [int(c) for c in classes]  # class c always gets PALETTE[c]
    else:
        color_ids = list(range(len(classes)))
    colors = [palette_color(i) for i in color_ids]

    def name(c: object) -> str:
        if isinstance(class_names, Mapping):
            return str(class_names.get(c, class_names.get(str(c), c)))  # type: ignore[call-overload]
        if class_names is not None and integer and 0 <= int(c) < len(class_names):  # type: ignore[arg-type]
            return str(class_names[int(c)])  # type: ignore[arg-type]
        return str(c)

    legend = [(name(c.item() if hasattr(c, "item") else c), colors[i]) for i, c in enumerate(classes)]
    return inverse.reshape(-1), legend, colors


def folder_class_names(labels: Sequence[int], filenames: Sequence[str]) -> Optional[dict[int, str]]:
    """``label -> class folder`` when every label's files share one top-level folder, else ``None``.

    ``embed_images`` and the embeddings files give integer labels and filenames relative to
    the image folder (``"cat/001.jpg"``); the folder names are the class names, the same in
    Python (``plot_embeddings(..., filenames=...)``) as on the command line (``easyssl plot``).
    """
    names: dict[int, str] = {}
    for label, name in zip(labels, filenames):
        name = os.fspath(name).replace("\\", "/")
        while name.startswith("./"):
            name = name[2:]
        if "/" not in name:
            return None
        folder = name.split("/", 1)[0]
        if names.setdefault(int(label), folder) != folder:
            return None
    return names


def dataset_class_names(input_dir: Union[str, "os.PathLike[str]"]) -> list[str]:
    """The class names of an image folder in label order (sorted sub-folder names, as the datasets number them)."""
    return list_image_folder(input_dir)[2]


def font_size(size: tuple[int, int]) -> int:
    """Text height for a plot of ``size``: about 1/48 of its shorter side, at least 11 px."""
    return max(11, round(min(size) / 48))


@lru_cache(maxsize=16)
def load_font(size: int) -> ImageFont.ImageFont:
    """A scalable font of ``size`` px: DejaVu Sans (or Arial) when installed, else Pillow's own
    (``load_default(size=...)``, Pillow >= 10.1 with FreeType), else Pillow's small bitmap font."""
    for name in ("DejaVuSans.ttf", "Arial.ttf", "arial.ttf", "Helvetica.ttc"):
        try:
            return ImageFont.truetype(name, size)
        except (OSError, ImportError):
            continue
    try:
        return ImageFont.load_default(size=size)  # type: ignore[call-arg]
    except (TypeError, OSError, ImportError):  # old Pillow or no FreeType
        return ImageFont.load_default()


def plot_layout(
    size: tuple[int, int], title: Optional[str], legend: list[tuple[str, RGB]], font: ImageFont.ImageFont
) -> dict:
    """Margins, line height, the axes box ``(left, top, right, bottom)`` and the legend's width of a plot of ``size``.

    One text line is kept under the box for the caption (the map's method, clamped outliers).
    """
    w, h = size
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    margin = max(8, round(0.03 * min(w, h)))
    line_h = max(10, draw.textbbox((0, 0), "Ag", font=font)[3]) + 4
    title_h = line_h + 4 if title else 0
    legend_w = 0
    if legend:
        swatch = line_h - 4
        text_w = max(draw.textlength(name, font=font) for name, _ in legend)
        legend_w = min(int(text_w) + swatch + 14, int(0.35 * w))
    box = (margin, margin + title_h, w - margin - legend_w - 1, h - margin - line_h - 1)
    if box[2] - box[0] < 20 or box[3] - box[1] < 20:
        raise ValueError(f"size {size} is too small for the plot with this title/legend")
    return {"margin": margin, "line_h": line_h, "box": box, "legend_w": legend_w}


def frame_bounds(xy: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.0), margin: float = 0.08) -> np.ndarray:
    """The part of the plane a map shows: ``[[xmin, ymin], [xmax, ymax]]``.

    The 1st to 99th percentile of each axis, widened by ``margin`` of that span (never past
    the data), so a few far-out points do not squeeze every other point into a corner; the
    points outside are drawn on the border (:func:`to_pixels`) and marked. Below 20 points
    every point is inside.
    """
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    if xy.shape[0] < 20:
        return np.stack([lo, hi])
    p_lo, p_hi = np.percentile(xy, percentiles, axis=0, method="nearest")  # a real point, not a blend with an outlier
    span = p_hi - p_lo
    return np.stack([np.maximum(p_lo - margin * span, lo), np.minimum(p_hi + margin * span, hi)])


def to_pixels(xy: np.ndarray, box: tuple[int, int, int, int], pad: int, bounds: Optional[np.ndarray] = None) -> np.ndarray:
    """Map 2-D points into ``box`` with equal x/y scale (y up), integer pixels.

    ``bounds`` (from :func:`frame_bounds`; default: all points) fills the box; points outside
    it are clamped to its edge.
    """
    left, top, right, bottom = box
    inner_w = max(1, right - left - 2 * pad)
    inner_h = max(1, bottom - top - 2 * pad)
    lo, hi = (xy.min(axis=0), xy.max(axis=0)) if bounds is None else (bounds[0], bounds[1])
    xy = np.clip(xy, lo, hi)
    span = hi - lo
    largest = max(span[0] / inner_w, span[1] / inner_h)
    scale = 1.0 / largest if largest > 0 else 0.0
    center = (lo + hi) / 2.0
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    px = np.rint(cx + (xy[:, 0] - center[0]) * scale)
    py = np.rint(cy - (xy[:, 1] - center[1]) * scale)
    return np.stack([px, py], axis=1).astype(np.int64)


def grid_snap(pixels: np.ndarray, box: tuple[int, int, int, int], cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Thumbnail places that never overlap: the box is cut into ``cell`` px squares and each
    square holding points shows one of them, the one nearest the square's centre.

    Returns:
        ``(indices, corners)``: the points that get a thumbnail and the top-left pixel of
        each one's square (int64 ``(M,)`` and ``(M, 2)``), in row-major order of the squares.
    """
    left, top, right, bottom = box
    cols, rows = max(1, (right - left) // cell), max(1, (bottom - top) // cell)
    x0 = left + ((right - left) - cols * cell) // 2  # centre the grid in the box
    y0 = top + ((bottom - top) - rows * cell) // 2
    gx = np.clip((pixels[:, 0] - x0) // cell, 0, cols - 1)
    gy = np.clip((pixels[:, 1] - y0) // cell, 0, rows - 1)
    centre = np.stack([x0 + gx * cell + cell / 2, y0 + gy * cell + cell / 2], axis=1)
    dist = ((pixels - centre) ** 2).sum(axis=1)
    square = gy * cols + gx
    order = np.lexsort((np.arange(len(pixels)), dist, square))  # by square, nearest first, then index
    first = order[np.concatenate([[True], square[order][1:] != square[order][:-1]])] if len(order) else order
    corners = np.stack([x0 + gx[first] * cell, y0 + gy[first] * cell], axis=1)
    return first.astype(np.int64), corners.astype(np.int64)


def map_points(
    embeddings: ArrayLike,
    labels: Optional[ArrayLike] = None,
    *,
    size: tuple[int, int] = (800, 800),
    point_radius: int = 3,
    title: Optional[str] = None,
    class_names: Optional[Union[Sequence[str], Mapping]] = None,
    method: str = "auto",
    pad: Optional[int] = None,
) -> dict:
    """Everything :func:`~easyssl.tools.visualize.plot_embeddings` places: the method used, the
    font, layout, legend and colours, each point's pixel and whether it was clamped to the border."""
    size = check_size(size)
    prepare_labels(labels, len(embeddings), class_names)  # a wrong label count fails before the (slow) projection
    xy, used = project_2d(embeddings, method)
    color_index, legend, colors = prepare_labels(labels, xy.shape[0], class_names)
    font = load_font(font_size(size))
    layout = plot_layout(size, title, legend, font)
    bounds = frame_bounds(xy)
    outside = ((xy < bounds[0]) | (xy > bounds[1])).any(axis=1)
    pixels = to_pixels(xy, layout["box"], int(point_radius) + 3 if pad is None else pad, bounds)
    return {"method": used, "font": font, "layout": layout, "legend": legend, "colors": colors,
            "color_index": color_index, "pixels": pixels, "outside": outside, "size": size}


def pixel_positions(
    embeddings: ArrayLike,
    labels: Optional[ArrayLike] = None,
    *,
    size: tuple[int, int] = (800, 800),
    point_radius: int = 3,
    title: Optional[str] = None,
    class_names: Optional[Union[Sequence[str], Mapping]] = None,
    method: str = "auto",
) -> np.ndarray:
    """Pixel centre of every point as drawn by :func:`plot_embeddings` (same arguments; points, not thumbnails)."""
    return map_points(embeddings, labels, size=size, point_radius=point_radius, title=title,
                      class_names=class_names, method=method)["pixels"]
