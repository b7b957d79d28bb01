"""``easyssl select`` and ``easyssl label-next``: choosing images from an embeddings file."""

from __future__ import annotations

import argparse
import csv
import os
from typing import Sequence

import numpy as np

from easyssl.cli.common import CLIError, match_filename, quote_name, read_embeddings, read_names, write_lines
from easyssl.tools.selection import select_diverse, select_for_labeling


# --------------------------------------------------------------------------- select
def add_select(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``easyssl select`` to its sub-parser."""
    p.epilog = """examples:
  easyssl select --embeddings embeddings.csv -n 100 --output chosen.txt

Picks -n images that cover the whole collection (k-center greedy coreset: each pick is the
image farthest from those already picked) and writes their filenames, one per line, in
the order picked: any prefix of the list is itself a diverse subset.
"""
    p.add_argument("--embeddings", required=True, help="embeddings file (.csv or .npz)")
    p.add_argument("-n", type=int, required=True, help="number of images to choose")
    p.add_argument("--output", required=True, help="text file for the chosen filenames")
    p.add_argument("--metric", choices=["cosine", "euclidean"], default="cosine", help="distance (default: cosine)")


def cmd_select(args: argparse.Namespace) -> int:
    """Run ``easyssl select`` with the parsed arguments; returns the exit code."""
    embeddings, _, filenames = read_embeddings(args.embeddings)
    chosen = select_diverse(embeddings, args.n, metric=args.metric)
    write_lines(args.output, [quote_name(filenames[i]) for i in chosen])
    print(f"chose {len(chosen)} diverse images out of {len(filenames)}: {args.output}")
    return 0


# --------------------------------------------------------------------------- label-next
def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_predictions(path: str, filenames: Sequence[str]) -> np.ndarray:
    """Class probabilities ``(N, C)`` in the embeddings' row order, from ``.npy`` or ``.csv``.

    A ``.npy`` array and a CSV without a filename column must be in the embeddings file's
    row order; a CSV whose first column is headed ``filename`` or ``filenames`` is matched
    to the embeddings by filename.
    """
    if not os.path.isfile(path):
        raise CLIError(f"predictions file {path!r} does not exist")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npy":
        try:
            probabilities = np.load(path, allow_pickle=False)
        except Exception as error:
            raise CLIError(f"cannot read {path!r} as a numpy array: {error}") from None
    elif extension == ".csv":
        probabilities = _csv_predictions(path, filenames)
    else:
        raise CLIError(f"cannot read predictions from {path!r}: use a .npy array or a .csv file of shape (images, classes)")
    if probabilities.ndim != 2 or probabilities.shape[0] != len(filenames):
        raise CLIError(
            f"predictions in {path!r} must have shape ({len(filenames)}, classes), one row per embedding, "
            f"got {probabilities.shape}"
        )
    return probabilities


def _csv_predictions(path: str, filenames: Sequence[str]) -> np.ndarray:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if not rows:
        raise CLIError(f"predictions file {path!r} is empty")
    header = rows[0] if not all(_is_number(c) for c in rows[0]) else None
    body = rows[1:] if header else rows
    by_name = header is not None and header[0].strip().lower() in ("filename", "filenames")
    try:
        values = np.asarray([[float(c) for c in (r[1:] if by_name else r)] for r in body], dtype=np.float64)
    except ValueError as error:
        raise CLIError(f"{path!r}: every column but a leading filename column must hold numbers ({error})") from None
    if not by_name:
        return values
    order = {}
    for r, row in enumerate(body):
        i = match_filename(row[0], filenames)
        if i is None:
            raise CLIError(f"{path!r}: {row[0]!r} is not in the embeddings file")
        order[i] = r
    missing = [filenames[i] for i in range(len(filenames)) if i not in order]
    if missing:
        raise CLIError(f"{path!r} has no predictions for {len(missing)} image(s), e.g. {missing[0]!r}")
    return values[[order[i] for i in range(len(filenames))]]


def add_label_next(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``easyssl label-next`` to its sub-parser."""
    p.epilog = """examples:
  easyssl label-next --embeddings embeddings.csv --predictions probs.npy -n 50 --output to_label.txt
  easyssl label-next --embeddings embeddings.csv --predictions probs.csv -n 50 --output to_label.txt \\
      --uncertainty margin --diversity 0.3 --labeled already_labeled.txt

Active learning: picks the images your classifier is least sure about, spread over the
collection. --predictions holds class probabilities, one row per image: a .npy array of
shape (images, classes) in the embeddings file's order, or a .csv (with a header whose
first column is "filename" to match rows by filename). Pass --softmax for logits.
--diversity 0 picks by uncertainty alone, 1 by coverage alone.
"""
    p.add_argument("--embeddings", required=True, help="embeddings file (.csv or .npz)")
    p.add_argument("--predictions", required=True, help="class probabilities: .npy (images, classes) or .csv")
    p.add_argument("-n", type=int, required=True, help="number of images to choose")
    p.add_argument("--output", required=True, help="text file for the chosen filenames")
    p.add_argument("--uncertainty", choices=["entropy", "margin", "least_confidence"], default="entropy",
                   help="uncertainty measure (default: entropy)")
    p.add_argument("--diversity", type=float, default=0.5, help="weight of coverage versus uncertainty, 0..1 (default: 0.5)")
    p.add_argument("--labeled", metavar="FILE", help="filenames already labeled, one per line (never chosen)")
    p.add_argument("--softmax", action="store_true", help="the predictions are logits: apply softmax first")


def cmd_label_next(args: argparse.Namespace) -> int:
    """Run ``easyssl label-next`` with the parsed arguments; returns the exit code."""
    embeddings, _, filenames = read_embeddings(args.embeddings)
    probabilities = load_predictions(args.predictions, filenames)
    if args.softmax:
        shifted = probabilities - probabilities.max(axis=1, keepdims=True)
        probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    labeled = read_names(args.labeled, filenames, "--labeled") if args.labeled else None
    chosen = select_for_labeling(
        embeddings, probabilities, args.n, method=args.uncertainty, diversity=args.diversity, labeled_indices=labeled
    )
    write_lines(args.output, [quote_name(filenames[i]) for i in chosen])
    print(f"chose {len(chosen)} images to label next ({args.uncertainty} uncertainty, diversity {args.diversity:g}): {args.output}")
    return 0
