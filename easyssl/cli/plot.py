"""``easyssl plot``: the embeddings on a 2-D map (UMAP, t-SNE or PCA), coloured by label or as thumbnails, as a PNG."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from easyssl.cli.common import CLIError, check_positive, class_names, read_embeddings
from easyssl.tools.manifold import MAP_METHODS, MAP_NAMES, resolve_map_method
from easyssl.tools.visualize import plot_embeddings


def add_plot(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``easyssl plot`` to its sub-parser."""
    p.epilog = """examples:
  easyssl plot --embeddings embeddings.csv --output embeddings.png
  easyssl plot --embeddings embeddings.csv --output embeddings.png --title "my images" --size 600
  easyssl plot --embeddings embeddings.csv --output map.png --thumbnails --image-dir my/images/

Places the embeddings on a 2-D map (--method auto: UMAP when umap-learn is installed, else
t-SNE when scikit-learn is, else PCA; pip install "easyssl[maps]" for both) and draws one
dot per image, coloured by label (the class sub-folder) with a legend when there are several
labels, or with --thumbnails the images themselves where there is room.
"""
    p.add_argument("--embeddings", required=True, help="embeddings file (.csv or .npz)")
    p.add_argument("--output", default="embeddings.png", help="PNG to write (default: embeddings.png)")
    p.add_argument("--title", help="title above the plot")
    p.add_argument("--size", type=int, default=800, help="width and height in pixels (default: 800)")
    p.add_argument("--point-radius", type=int, default=3, help="dot radius in pixels (default: 3)")
    p.add_argument("--no-labels", action="store_true", help="draw every dot grey")
    p.add_argument("--method", choices=MAP_METHODS, default="auto",
                   help="2-D map: umap, tsne, pca, or auto (umap, else tsne, else pca, by what is installed; default)")
    p.add_argument("--thumbnails", action="store_true", help="draw the images at their places (needs --image-dir)")
    p.add_argument("--image-dir", help="folder the embeddings were made from (for --thumbnails)")


def cmd_plot(args: argparse.Namespace) -> int:
    """Run ``easyssl plot`` with the parsed arguments; returns the exit code."""
    check_positive(args.size, "--size")
    if args.thumbnails and not args.image_dir:
        raise CLIError("--thumbnails needs --image-dir, the folder of the images the embeddings were made from")
    try:
        resolve_map_method(args.method)  # a named method whose package is missing: say what to install, before reading
    except ImportError as error:
        raise CLIError(str(error)) from None
    embeddings, labels, filenames = read_embeddings(args.embeddings)
    names = class_names(labels, filenames)
    plot_labels: Any = np.asarray(labels) if len(set(labels)) > 1 and not args.no_labels else None
    try:
        path = plot_embeddings(
            embeddings, plot_labels, args.output, size=(args.size, args.size), point_radius=args.point_radius,
            title=args.title, class_names=names, method=args.method, thumbnails=args.thumbnails,
            input_dir=args.image_dir, filenames=filenames,
        )
    except OSError as error:
        raise CLIError(f"cannot read an image: {error} (is --image-dir the folder the embeddings were made from?)") from None
    used = MAP_NAMES[resolve_map_method(args.method, len(filenames))]
    print(f"wrote {path} ({len(filenames)} images, {used} map{', coloured by label' if plot_labels is not None else ''})")
    return 0
