"""``easyssl plot``: the embeddings in 2-D (PCA), coloured by label, as a PNG."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from easyssl.cli.common import check_positive, class_names, read_embeddings
from easyssl.tools.visualize import plot_embeddings


def add_plot(p: argparse.ArgumentParser) -> None:
    p.epilog = """examples:
  easyssl plot --embeddings embeddings.csv --output embeddings.png
  easyssl plot --embeddings embeddings.csv --output embeddings.png --title "my images" --size 600

Projects the embeddings to 2-D with PCA and draws one dot per image, coloured by label
(the class sub-folder) with a legend when there are several labels.
"""
    p.add_argument("--embeddings", required=True, help="embeddings file (.csv or .npz)")
    p.add_argument("--output", default="embeddings.png", help="PNG to write (default: embeddings.png)")
    p.add_argument("--title", help="title above the plot")
    p.add_argument("--size", type=int, default=800, help="width and height in pixels (default: 800)")
    p.add_argument("--point-radius", type=int, default=3, help="dot radius in pixels (default: 3)")
    p.add_argument("--no-labels", action="store_true", help="draw every dot grey")


def cmd_plot(args: argparse.Namespace) -> int:
    check_positive(args.size, "--size")
    embeddings, labels, filenames = read_embeddings(args.embeddings)
    names = class_names(labels, filenames)
    plot_labels: Any = np.asarray(labels) if len(set(labels)) > 1 and not args.no_labels else None
    path = plot_embeddings(
        embeddings, plot_labels, args.output, size=(args.size, args.size), point_radius=args.point_radius,
        title=args.title, class_names=names,
    )
    print(f"wrote {path} ({len(filenames)} images, PCA to 2-D{', coloured by label' if plot_labels is not None else ''})")
    return 0
