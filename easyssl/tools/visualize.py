"""Pictures of embeddings: a 2-D map (UMAP, t-SNE or PCA; dots or thumbnails) and a nearest-neighbour grid.

Only pillow and numpy are needed (matplotlib is *not* required; umap-learn / scikit-learn
make better maps when installed). Both plot
functions write a PNG and return its path. Images are read as everywhere in easyssl
(:func:`easyssl.data.load_image`, :func:`easyssl.data.to_rgb`); where the points go is
computed in :mod:`easyssl.tools.projection` and :mod:`easyssl.tools.manifold`.

Example:
    >>> import numpy as np, tempfile, os
    >>> from easyssl import plot_embeddings
    >>> emb = np.random.default_rng(0).normal(size=(200, 32)).astype("float32")
    >>> labels = np.arange(200) % 4
    >>> out = plot_embeddings(emb, labels, os.path.join(tempfile.mkdtemp(), "emb.png"))
    >>> out.endswith("emb.png")
    True
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from easyssl.data.images import load_image, to_rgb
from easyssl.runtime.files import atomic_save
from easyssl.tools.arrays import ArrayLike
from easyssl.tools.picture import Picture
from easyssl.tools.manifold import MAP_NAMES, MIN_POINTS_NONLINEAR, resolve_map_method
from easyssl.tools.projection import (
    PALETTE,
    RGB,
    UNLABELED_COLOR,
    dataset_class_names,
    folder_class_names,
    grid_snap,
    load_font,
    map_points,
    pca_2d,
)

__all__ = ["map_caption", "pca_2d", "plot_embeddings", "plot_nearest_neighbors", "PALETTE", "QUERY_FRAME_COLOR", "UNLABELED_COLOR"]

ImageLike = Union[str, "os.PathLike[str]", Image.Image]

#: Frame colour of the query cell in :func:`plot_nearest_neighbors`.
QUERY_FRAME_COLOR: RGB = (220, 20, 60)
_BACKGROUND: RGB = (255, 255, 255)
_LETTERBOX: RGB = (235, 235, 235)
_INK: RGB = (0, 0, 0)
_CAPTION_H = 14
_CAPTION_INK: RGB = (90, 90, 90)


def _rgb(image: ImageLike) -> Image.Image:
    """An image given as a path or a PIL image, as 8-bit RGB, decoded as the datasets decode it."""
    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    raise ValueError(f"images must be file paths or PIL.Image.Image objects, got {type(image).__name__}")


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


def plot_embeddings(
    embeddings: ArrayLike,
    labels: Optional[ArrayLike] = None,
    path: Union[str, "os.PathLike[str]"] = "embeddings.png",
    *,
    size: tuple[int, int] = (800, 800),
    point_radius: int = 3,
    title: Optional[str] = None,
    class_names: Optional[Union[Sequence[str], Mapping]] = None,
    method: str = "auto",
    filenames: Optional[Sequence[str]] = None,
    input_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
    thumbnails: bool = False,
    images: Optional[Sequence[ImageLike]] = None,
    thumb_size: Optional[int] = None,
) -> str:
    """Save a 2-D map of the embeddings as a PNG (pillow only; UMAP / t-SNE when installed).

    ``method`` makes the 2-D positions (:func:`~easyssl.tools.manifold.project_2d`):
    ``"umap"`` (needs ``umap-learn``), ``"tsne"`` (needs ``scikit-learn``), ``"pca"``, or
    ``"auto"`` (the default): UMAP when umap-learn is installed, else t-SNE when
    scikit-learn is, else PCA (``pip install "easyssl[maps]"`` installs both). The caption
    under the map says which was used. UMAP and t-SNE keep neighbours together; PCA of
    whitened embeddings shows near-arbitrary directions.

    The map frames the 1st-99th percentile of the points (plus a margin), so a few outliers
    do not squeeze the rest into a corner; points beyond it are drawn on the border, outlined
    in black, and counted in the caption. Text is scaled to the picture (DejaVu Sans when
    installed). With ``labels`` each class gets a fixed colour (integer label ``c`` in
    ``0..19`` always uses ``PALETTE[c]``; other labels use palette colours in sorted order)
    and a legend names the classes; without labels all points are grey.

    Class names, first found: ``class_names``; the class folders of ``filenames`` (as
    ``embed_images`` returns them, e.g. ``"cat/001.jpg"``: the same names ``easyssl plot``
    shows); the sub-folders of ``input_dir``; else the labels themselves.

    With ``thumbnails=True`` the images are drawn at their places: the map is cut into
    ``thumb_size`` squares and each square holding points shows the image nearest its centre
    (framed in its class colour), so thumbnails never overlap. The images are ``images``
    (paths or PIL images, one per row), else ``input_dir`` joined with ``filenames``.

    Args:
        embeddings: Array of shape ``(N, D)``.
        labels: Optional per-point labels of length ``N`` (ints or strings).
        path: Output PNG path; parent folders are created.
        size: Image ``(width, height)`` in pixels; the PNG has exactly this size.
        point_radius: Radius of each point in pixels (0 draws single pixels).
        title: Optional title drawn above the plot.
        class_names: Legend names, either a sequence indexed by integer label
            or a mapping ``label -> name``.
        method: ``"auto"``, ``"umap"``, ``"tsne"`` or ``"pca"`` (see above).
        filenames: The rows' filenames relative to the image folder (``embed_images``' third result).
        input_dir: The folder the embeddings were made from.
        thumbnails: Draw the images instead of dots where there is room.
        images: The rows' images for ``thumbnails`` (default: ``input_dir`` / ``filenames``).
        thumb_size: Thumbnail side in pixels (default: 1/16 of the shorter side, at least 24).

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: Bad embeddings, labels of the wrong length, a too small
            ``size``, negative ``point_radius``, an unknown ``method``, or
            ``thumbnails`` without images.
        ImportError: ``method="umap"`` or ``"tsne"`` without its package.

    Example:
        >>> emb = np.random.default_rng(1).normal(size=(50, 8))
        >>> import tempfile, os
        >>> p = plot_embeddings(emb, np.arange(50) % 3, os.path.join(tempfile.mkdtemp(), "e.png"),
        ...                     size=(300, 200), title="demo", class_names=["cat", "dog", "car"], method="pca")
        >>> Image.open(p).size
        (300, 200)
    """
    if isinstance(point_radius, bool) or not isinstance(point_radius, (int, np.integer)) or point_radius < 0:
        raise ValueError(f"point_radius must be a non-negative integer, got {point_radius!r}")
    thumbs = _thumbnail_sources(embeddings, images, input_dir, filenames) if thumbnails else None
    if class_names is None and labels is not None:
        lab = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        if filenames is not None and lab.dtype.kind in "iu" and len(filenames) == len(lab):
            class_names = folder_class_names(lab.tolist(), filenames)
        if class_names is None and input_dir is not None:
            class_names = dataset_class_names(input_dir) or None
    placed = map_points(embeddings, labels, size=size, point_radius=point_radius, title=title,
                        class_names=class_names, method=method)
    size, font, layout, pixels = placed["size"], placed["font"], placed["layout"], placed["pixels"]
    box, colors, color_index = layout["box"], placed["colors"], placed["color_index"]

    img = Image.new("RGB", size, _BACKGROUND)
    draw = ImageDraw.Draw(img)
    draw.rectangle(box, outline=_INK, width=1)
    r = int(point_radius)
    outside = placed["outside"]
    dots = [] if thumbs is not None else np.argsort(outside, kind="stable").tolist()  # outliers last, on top
    for i in dots:  # (with thumbnails every point's grid square shows an image instead)
        x, y = pixels[i].tolist()
        color = colors[0] if color_index is None else colors[color_index[i]]
        if outside[i]:
            m = max(r, 2) + 1
            draw.polygon([(x, y - m), (x + m, y), (x, y + m), (x - m, y)], fill=color, outline=_INK)
        elif r == 0:
            draw.point((x, y), fill=color)
        else:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
    if thumbs is not None:
        cell = int(thumb_size) if thumb_size is not None else max(24, min(size) // 16)
        if cell < 8:
            raise ValueError(f"thumb_size must be at least 8, got {thumb_size!r}")
        for i, (x0, y0) in zip(*grid_snap(pixels, box, cell)):
            frame = colors[0] if color_index is None else colors[color_index[i]]
            draw.rectangle((x0, y0, x0 + cell - 1, y0 + cell - 1), fill=frame)
            img.paste(_letterbox(_rgb(thumbs[i]), cell - 4), (int(x0) + 2, int(y0) + 2))

    margin, line_h = layout["margin"], layout["line_h"]
    if title:
        text = _fit_text(draw, str(title), font, size[0] - 2 * margin)
        tw = draw.textlength(text, font=font)
        draw.text(((size[0] - tw) / 2, margin), text, fill=_INK, font=font)
    legend = placed["legend"]
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
    caption = map_caption(placed["method"], method, int(outside.sum()), len(pixels))
    draw.text((box[0], box[3] + 3), _fit_text(draw, caption, font, size[0] - 2 * margin), fill=_CAPTION_INK, font=font)

    return _save(img, path)


def map_caption(used: str, asked: str, outliers: int = 0, num_points: int = 0) -> str:
    """The line under a map: the method, why ``"auto"`` chose it, and how many outliers sit on the border."""
    text = MAP_NAMES[used]
    if asked == "auto":
        if used != "pca":
            why = {"umap": "umap-learn installed", "tsne": "scikit-learn installed, umap-learn not"}[used]
        elif num_points and num_points < MIN_POINTS_NONLINEAR:
            why = "too few points for UMAP / t-SNE"
        elif resolve_map_method("auto") == "pca":
            why = "install umap-learn or scikit-learn for UMAP / t-SNE"
        else:
            why = f"{num_points} points, more than UMAP / t-SNE take by default; pass method="
        text += f" (auto: {why})"
    elif asked != used:
        text += f" ({MAP_NAMES[asked]} needs more points)"
    if outliers:
        text += f"; {outliers} outlier{'s' if outliers > 1 else ''} on the border, outlined"
    return text


def _thumbnail_sources(
    embeddings: ArrayLike, images: Optional[Sequence[ImageLike]], input_dir: Optional[Union[str, "os.PathLike[str]"]],
    filenames: Optional[Sequence[str]],
) -> list:
    """One image (path or PIL image) per embedding row, for ``thumbnails=True``."""
    num = len(embeddings)
    if images is None:
        if input_dir is None or filenames is None:
            raise ValueError("thumbnails=True needs the images: pass images=[...] (one per row), "
                             "or input_dir= and filenames= (as embed_images returns them)")
        images = [os.path.join(os.fspath(input_dir), f) for f in filenames]
    if isinstance(images, (str, os.PathLike, Image.Image)) or len(images) != num:
        raise ValueError(f"images must be a sequence with one image per embedding ({num})")
    return list(images)


def _save(img: Image.Image, path: Union[str, "os.PathLike[str]"]) -> str:
    """Write the picture atomically (temporary file, fsync, rename): a failure leaves any previous picture intact."""
    # A Picture is the path string itself, and shows the image when a notebook cell ends with it (tools/picture.py).
    return Picture(atomic_save(path, lambda handle: img.save(handle, format="PNG")))


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
    font = load_font(11)  # fits the 14 px caption line; scalable, unlike Pillow's bitmap default

    for row in range(num_q):
        y0 = b + row * (t + b + caption_h)
        cells = [queries[row]] + rows[row]
        for col, image in enumerate(cells):
            x0 = b + col * (t + b)
            img.paste(_letterbox(_rgb(image), t), (x0, y0))
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
