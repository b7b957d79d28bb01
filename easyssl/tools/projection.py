"""Where each point of an embedding plot goes: PCA to 2-D, class colours, the plot's layout and pixel positions.

:mod:`easyssl.tools.visualize` draws with these; tests use :func:`pixel_positions` to find the
pixel of every point.
"""

from __future__ import annotations

import colorsys
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from easyssl.tools.arrays import ArrayLike, as_matrix

__all__ = ["PALETTE", "UNLABELED_COLOR", "check_size", "palette_color", "pca_2d", "pixel_positions", "plot_layout",
           "prepare_labels", "to_pixels"]

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


def pca_2d(embeddings: ArrayLike) -> np.ndarray:
    """Project embeddings onto their first two principal components.

    The data is centred and the principal axes are taken from the SVD of
    the (D x D) covariance, accumulated in float64 over row chunks (so no
    float64 copy of a large array is made). Each axis' sign is fixed so its
    largest-magnitude loading is positive, making the result deterministic.
    Missing components (``D == 1`` or rank < 2) are filled with zeros.

    Args:
        embeddings: Array of shape ``(N, D)`` (numpy array or torch tensor).

    Returns:
        float64 array of shape ``(N, 2)``.

    Raises:
        ValueError: Not a non-empty 2-D array, or non-finite values.

    Example:
        >>> x = np.array([[0, 5, 0], [2, 5, 0], [4, 5, 0]], dtype=np.float32)
        >>> pca_2d(x)[:, 0].round(2).tolist()  # second column is all zero here
        [-2.0, 0.0, 2.0]
    """
    x = as_matrix(embeddings, "embeddings")
    if isinstance(x, torch.Tensor):
        x = x.cpu().numpy()
    num, dim = x.shape
    step = max(1, (8 * 1024 * 1024) // dim)
    total = np.zeros(dim, dtype=np.float64)
    for s in range(0, num, step):
        chunk = np.asarray(x[s : s + step], dtype=np.float64)
        if not np.isfinite(chunk).all():
            raise ValueError("embeddings contains NaN or infinite values")
        total += chunk.sum(axis=0)
    mean = total / num
    cov = np.zeros((dim, dim), dtype=np.float64)
    for s in range(0, num, step):
        chunk = np.asarray(x[s : s + step], dtype=np.float64) - mean
        cov += chunk.T @ chunk
    u, sv, _ = np.linalg.svd(cov, hermitian=True)
    components = np.zeros((dim, 2), dtype=np.float64)
    for j in range(min(2, dim)):
        if sv[j] <= 1e-12 * max(float(sv[0]), 1e-300):
            continue  # no variance along this axis
        axis = u[:, j]
        components[:, j] = axis if axis[np.argmax(np.abs(axis))] > 0 else -axis
    out = np.empty((num, 2), dtype=np.float64)
    for s in range(0, num, step):
        out[s : s + step] = (np.asarray(x[s : s + step], dtype=np.float64) - mean) @ components
    return out


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


def plot_layout(
    size: tuple[int, int], title: Optional[str], legend: list[tuple[str, RGB]], font: ImageFont.ImageFont
) -> dict:
    """Margins, line height, the axes box ``(left, top, right, bottom)`` and the legend's width of a plot of ``size``."""
    w, h = size
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    margin = max(8, round(0.04 * min(w, h)))
    line_h = max(10, draw.textbbox((0, 0), "Ag", font=font)[3]) + 4
    title_h = line_h + 4 if title else 0
    legend_w = 0
    if legend:
        swatch = line_h - 4
        text_w = max(draw.textlength(name, font=font) for name, _ in legend)
        legend_w = min(int(text_w) + swatch + 14, int(0.35 * w))
    box = (margin, margin + title_h, w - margin - legend_w - 1, h - margin - 1)
    if box[2] - box[0] < 20 or box[3] - box[1] < 20:
        raise ValueError(f"size {size} is too small for the plot with this title/legend")
    return {"margin": margin, "line_h": line_h, "box": box, "legend_w": legend_w}


def to_pixels(xy: np.ndarray, box: tuple[int, int, int, int], pad: int) -> np.ndarray:
    """Map 2-D points into ``box`` with equal x/y scale (y up), integer pixels."""
    left, top, right, bottom = box
    inner_w = max(1, right - left - 2 * pad)
    inner_h = max(1, bottom - top - 2 * pad)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = hi - lo
    largest = max(span[0] / inner_w, span[1] / inner_h)
    scale = 1.0 / largest if largest > 0 else 0.0
    center = (lo + hi) / 2.0
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    px = np.rint(cx + (xy[:, 0] - center[0]) * scale)
    py = np.rint(cy - (xy[:, 1] - center[1]) * scale)
    return np.stack([px, py], axis=1).astype(np.int64)


def pixel_positions(
    embeddings: ArrayLike,
    labels: Optional[ArrayLike] = None,
    *,
    size: tuple[int, int] = (800, 800),
    point_radius: int = 3,
    title: Optional[str] = None,
    class_names: Optional[Union[Sequence[str], Mapping]] = None,
) -> np.ndarray:
    """Pixel centre of every point as drawn by :func:`plot_embeddings` (same arguments)."""
    xy = pca_2d(embeddings)
    _, legend, _ = prepare_labels(labels, xy.shape[0], class_names)
    layout = plot_layout(check_size(size), title, legend, ImageFont.load_default())
    return to_pixels(xy, layout["box"], int(point_radius) + 3)
