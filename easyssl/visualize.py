"""Pictures of embeddings: a 2-D PCA scatter plot and a nearest-neighbour grid.

Only pillow and numpy are needed (matplotlib is *not* required). Both plot
functions write a PNG and return its path.

Example:
    >>> import numpy as np, tempfile, os
    >>> from easyssl.visualize import plot_embeddings
    >>> emb = np.random.default_rng(0).normal(size=(200, 32)).astype("float32")
    >>> labels = np.arange(200) % 4
    >>> out = plot_embeddings(emb, labels, os.path.join(tempfile.mkdtemp(), "emb.png"))
    >>> out.endswith("emb.png")
    True
"""

from __future__ import annotations

import colorsys
import os
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps

from easyssl.search import ArrayLike, _as_matrix

__all__ = ["pca_2d", "plot_embeddings", "plot_nearest_neighbors", "load_image_rgb", "PALETTE"]

ImageLike = Union[str, "os.PathLike[str]", Image.Image]
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
#: Frame colour of the query cell in :func:`plot_nearest_neighbors`.
QUERY_FRAME_COLOR: RGB = (220, 20, 60)
_BACKGROUND: RGB = (255, 255, 255)
_LETTERBOX: RGB = (235, 235, 235)
_INK: RGB = (0, 0, 0)
_CAPTION_H = 14


def palette_color(i: int) -> RGB:
    """Colour number ``i``: :data:`PALETTE` first, then evenly spread hues."""
    if 0 <= i < len(PALETTE):
        return PALETTE[i]
    hue = (i * 0.618033988749895) % 1.0  # golden-ratio hue steps stay distinct
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.85)
    return (round(r * 255), round(g * 255), round(b * 255))


# --------------------------------------------------------------------------- #
# Images
# --------------------------------------------------------------------------- #
def load_image_rgb(path_or_image: ImageLike) -> Image.Image:
    """Load an image (path or PIL image) as 8-bit RGB.

    Handles EXIF orientation, grayscale (``L``/``1``), palette (``P``, with
    transparency), alpha (``RGBA``/``LA``, composited on white), ``CMYK``,
    16-bit (``I;16*``, ``I``) and float (``F``) images.

    Args:
        path_or_image: File path or an already opened ``PIL.Image.Image``.

    Returns:
        A new ``PIL.Image.Image`` in mode ``"RGB"`` (the input is not modified).

    Raises:
        ValueError: ``path_or_image`` is neither a path nor a PIL image.
        FileNotFoundError / PIL.UnidentifiedImageError: unreadable file.

    Example:
        >>> load_image_rgb(Image.new("I;16", (4, 4), 65535)).getpixel((0, 0))
        (255, 255, 255)
    """
    if isinstance(path_or_image, Image.Image):
        img = path_or_image
    elif isinstance(path_or_image, (str, os.PathLike)):
        with Image.open(path_or_image) as f:
            f.load()
            try:
                img = ImageOps.exif_transpose(f) or f.copy()
            except Exception:  # malformed EXIF: keep the unrotated image
                img = f.copy()
    else:
        raise ValueError(
            f"path_or_image must be a file path or a PIL.Image.Image, got {type(path_or_image).__name__}"
        )

    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        elif mode == "F" and arr.size and arr.min() >= 0 and arr.max() <= 1.0:
            arr = arr * 255.0
        elif arr.size and arr.max() > 255:
            if arr.min() >= 0 and arr.max() <= 65535:  # 16-bit data stored as "I"
                arr = arr / 257.0
            else:
                lo, hi = float(arr.min()), float(arr.max())
                arr = (arr - lo) * (255.0 / (hi - lo))
        gray = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
        return gray.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("L", "RGB") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _letterbox(img: Image.Image, size: int) -> Image.Image:
    """Scale to fit in a ``size`` x ``size`` square (aspect kept), centred on grey."""
    w, h = img.size
    scale = size / max(w, h)
    new = (max(1, min(size, round(w * scale))), max(1, min(size, round(h * scale))))
    if new != img.size:
        img = img.resize(new, Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (size, size), _LETTERBOX)
    canvas.paste(img, ((size - new[0]) // 2, (size - new[1]) // 2))
    return canvas


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "..", font=font) > width:
        text = text[:-1]
    return text + ".."


# --------------------------------------------------------------------------- #
# PCA
# --------------------------------------------------------------------------- #
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
    x = _as_matrix(embeddings, "embeddings")
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


# --------------------------------------------------------------------------- #
# Scatter plot
# --------------------------------------------------------------------------- #
def _check_size(size: object) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size)  # type: ignore[union-attr]
    except Exception:
        raise ValueError(f"size must be a (width, height) pair of integers, got {size!r}") from None
    if w < 64 or h < 64:
        raise ValueError(f"size must be at least (64, 64) pixels, got {(w, h)}")
    return w, h


def _prepare_labels(
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


def _layout(
    size: tuple[int, int], title: Optional[str], legend: list[tuple[str, RGB]], font: ImageFont.ImageFont
) -> dict:
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


def _to_pixels(xy: np.ndarray, box: tuple[int, int, int, int], pad: int) -> np.ndarray:
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


def _pixel_positions(
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
    _, legend, _ = _prepare_labels(labels, xy.shape[0], class_names)
    layout = _layout(_check_size(size), title, legend, ImageFont.load_default())
    return _to_pixels(xy, layout["box"], int(point_radius) + 3)


def plot_embeddings(
    embeddings: ArrayLike,
    labels: Optional[ArrayLike] = None,
    path: Union[str, "os.PathLike[str]"] = "embeddings.png",
    *,
    size: tuple[int, int] = (800, 800),
    point_radius: int = 3,
    title: Optional[str] = None,
    class_names: Optional[Union[Sequence[str], Mapping]] = None,
) -> str:
    """Save a 2-D PCA scatter plot of the embeddings as a PNG (pillow only).

    Points are projected with :func:`pca_2d` (equal scale on both axes) and
    drawn inside an axes box on a white background. With ``labels`` each
    class gets a fixed colour (integer label ``c`` in ``0..19`` always uses
    ``PALETTE[c]``; other labels use palette colours in sorted order) and a
    legend lists the classes; without labels all points are grey.

    Args:
        embeddings: Array of shape ``(N, D)``.
        labels: Optional per-point labels of length ``N`` (ints or strings).
        path: Output PNG path; parent folders are created.
        size: Image ``(width, height)`` in pixels; the PNG has exactly this size.
        point_radius: Radius of each point in pixels (0 draws single pixels).
        title: Optional title drawn above the plot.
        class_names: Legend names, either a sequence indexed by integer label
            or a mapping ``label -> name``. Default: the labels themselves.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: Bad embeddings, labels of the wrong length, a too small
            ``size`` or negative ``point_radius``.

    Example:
        >>> emb = np.random.default_rng(1).normal(size=(50, 8))
        >>> import tempfile, os
        >>> p = plot_embeddings(emb, np.arange(50) % 3, os.path.join(tempfile.mkdtemp(), "e.png"),
        ...                     size=(300, 200), title="demo", class_names=["cat", "dog", "car"])
        >>> Image.open(p).size
        (300, 200)
    """
    size = _check_size(size)
    if isinstance(point_radius, bool) or not isinstance(point_radius, (int, np.integer)) or point_radius < 0:
        raise ValueError(f"point_radius must be a non-negative integer, got {point_radius!r}")
    xy = pca_2d(embeddings)
    color_index, legend, colors = _prepare_labels(labels, xy.shape[0], class_names)
    font = ImageFont.load_default()
    layout = _layout(size, title, legend, font)
    box = layout["box"]
    pixels = _to_pixels(xy, box, int(point_radius) + 3)

    img = Image.new("RGB", size, _BACKGROUND)
    draw = ImageDraw.Draw(img)
    draw.rectangle(box, outline=_INK, width=1)
    r = int(point_radius)
    for i, (x, y) in enumerate(pixels.tolist()):
        color = colors[0] if color_index is None else colors[color_index[i]]
        if r == 0:
            draw.point((x, y), fill=color)
        else:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=color)

    margin, line_h = layout["margin"], layout["line_h"]
    if title:
        text = _fit_text(draw, str(title), font, size[0] - 2 * margin)
        tw = draw.textlength(text, font=font)
        draw.text(((size[0] - tw) / 2, margin), text, fill=_INK, font=font)
    if legend:
        x0 = box[2] + 10
        swatch = line_h - 4
        max_rows = max(1, (box[3] - box[1]) // line_h)
        shown = legend if len(legend) <= max_rows else legend[: max_rows - 1]
        text_w = size[0] - margin - (x0 + swatch + 4)
        for j, (name, color) in enumerate(shown):
            y = box[1] + j * line_h
            draw.rectangle((x0, y + 2, x0 + swatch - 1, y + 1 + swatch), fill=color)
            draw.text((x0 + swatch + 4, y + 1), _fit_text(draw, name, font, text_w), fill=_INK, font=font)
        if len(shown) < len(legend):
            y = box[1] + len(shown) * line_h
            draw.text((x0, y + 1), f"+{len(legend) - len(shown)} more", fill=_INK, font=font)
    draw.text((box[0] + 3, box[3] - line_h), "PC1 / PC2", fill=(150, 150, 150), font=font)

    return _save(img, path)


def _save(img: Image.Image, path: Union[str, "os.PathLike[str]"]) -> str:
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    img.save(path, format="PNG")
    return path


# --------------------------------------------------------------------------- #
# Nearest-neighbour grid
# --------------------------------------------------------------------------- #
def plot_nearest_neighbors(
    query_images: Sequence[ImageLike],
    neighbor_images: Sequence[Sequence[ImageLike]],
    path: Union[str, "os.PathLike[str]"] = "neighbors.png",
    *,
    thumb_size: int = 96,
    similarities: Optional[Union[ArrayLike, Sequence[Sequence[float]]]] = None,
    captions: Optional[Sequence[Union[str, Sequence[str]]]] = None,
    border: int = 4,
) -> str:
    """Save a retrieval grid: one row per query, the query then its neighbours.

    Each image (file path or PIL image, any mode) is converted to RGB and
    letterboxed into a ``thumb_size`` square. The query cell is framed in
    red (:data:`QUERY_FRAME_COLOR`, drawn in the ``border`` gutter around
    it). When ``similarities`` or ``captions`` are given, a 14-pixel text
    line is added under every cell.

    Image size, with ``Q`` queries and ``k`` the longest neighbour list::

        width  = (1 + k) * (thumb_size + border) + border
        height = Q * (thumb_size + border + caption_h) + border
        caption_h = 0 if similarities is None and captions is None else 14

    Cell ``(row, col)`` (col 0 = query) has its top-left corner at
    ``(border + col * (thumb_size + border),
    border + row * (thumb_size + border + caption_h))``.

    Args:
        query_images: ``Q`` query images (paths or PIL images).
        neighbor_images: ``Q`` lists of neighbour images (shorter lists
            leave blank cells).
        path: Output PNG path; parent folders are created.
        thumb_size: Side of each square thumbnail in pixels.
        similarities: Optional ``(Q, k)`` scores, printed as ``0.934`` under
            each neighbour.
        captions: Optional ``Q`` entries; each is a string (caption for the
            query) or a list of strings (query caption, then one per
            neighbour). Shown before the similarity when both are given.
        border: Gap between cells in pixels (also the query frame width).

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: Mismatched lengths, ``thumb_size < 8`` or ``border < 0``.

    Example:
        >>> import tempfile, os
        >>> red, blue = Image.new("RGB", (20, 10), "red"), Image.new("RGB", (10, 20), "blue")
        >>> p = plot_nearest_neighbors([red], [[blue, red]], os.path.join(tempfile.mkdtemp(), "n.png"),
        ...                            thumb_size=32, similarities=[[0.9, 0.5]])
        >>> Image.open(p).size  # ((1 + 2) * 36 + 4, 1 * (32 + 4 + 14) + 4)
        (112, 54)
    """
    if isinstance(thumb_size, bool) or not isinstance(thumb_size, (int, np.integer)) or thumb_size < 8:
        raise ValueError(f"thumb_size must be an integer >= 8, got {thumb_size!r}")
    if isinstance(border, bool) or not isinstance(border, (int, np.integer)) or border < 0:
        raise ValueError(f"border must be a non-negative integer, got {border!r}")
    if isinstance(query_images, (str, os.PathLike, Image.Image)):
        raise ValueError("query_images must be a sequence of images (wrap a single image in a list)")
    queries = list(query_images)
    rows = [list(r) for r in neighbor_images]
    num_q = len(queries)
    if num_q == 0:
        raise ValueError("query_images must contain at least one image")
    if len(rows) != num_q:
        raise ValueError(f"neighbor_images must have one list per query ({num_q}), got {len(rows)}")
    for i, r in enumerate(rows):
        if any(isinstance(r, t) for t in (str, Image.Image)):
            raise ValueError(f"neighbor_images[{i}] must be a list of images")
    k = max((len(r) for r in rows), default=0)

    sims: Optional[list[list[float]]] = None
    if similarities is not None:
        if isinstance(similarities, torch.Tensor):
            similarities = similarities.detach().cpu().numpy()
        sims = [list(np.asarray(s, dtype=np.float64).reshape(-1)) for s in similarities]
        if len(sims) != num_q:
            raise ValueError(f"similarities must have one row per query ({num_q}), got {len(sims)}")
        for i, (s, r) in enumerate(zip(sims, rows)):
            if len(s) < len(r):
                raise ValueError(f"similarities[{i}] has {len(s)} values for {len(r)} neighbours")
    caps: Optional[list[list[str]]] = None
    if captions is not None:
        caps = [[c] if isinstance(c, str) else [str(t) for t in c] for c in captions]
        if len(caps) != num_q:
            raise ValueError(f"captions must have one entry per query ({num_q}), got {len(caps)}")

    caption_h = 0 if sims is None and caps is None else _CAPTION_H
    t, b = int(thumb_size), int(border)
    width = (1 + k) * (t + b) + b
    height = num_q * (t + b + caption_h) + b
    img = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()

    for row in range(num_q):
        y0 = b + row * (t + b + caption_h)
        cells = [queries[row]] + rows[row]
        for col, image in enumerate(cells):
            x0 = b + col * (t + b)
            img.paste(_letterbox(load_image_rgb(image), t), (x0, y0))
            text_parts = []
            if caps is not None and col < len(caps[row]):
                text_parts.append(caps[row][col])
            if sims is not None and col > 0:
                text_parts.append(f"{sims[row][col - 1]:.3f}")
            if caption_h and text_parts:
                text = _fit_text(draw, " ".join(text_parts), font, t)
                tw = draw.textlength(text, font=font)
                draw.text((x0 + (t - tw) / 2, y0 + t), text, fill=_INK, font=font)
        if b > 0:  # query frame in the gutter around the query cell (and its caption)
            draw.rectangle(
                (0, y0 - b, b + t + b - 1, y0 + t + caption_h + b - 1),
                outline=QUERY_FRAME_COLOR,
                width=b,
            )
    return _save(img, path)
