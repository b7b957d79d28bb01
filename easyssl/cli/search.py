"""``easyssl similar`` and ``easyssl duplicates``: searching an embeddings file."""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

from easyssl.cli.common import CLIError, check_dir, check_positive, class_names, match_filename, quote_name, read_embeddings, write_lines
from easyssl.config import eval_transform
from easyssl.data import load_image
from easyssl.inference import embeddings_training_steps, load_model
from easyssl.inference.views import CROP_VIEWS
from easyssl.runtime.device import autocast, resolve_precision
from easyssl.tools.duplicates import (
    DUPLICATE_CONTEXT,
    DUPLICATE_RATIO,
    DUPLICATE_THRESHOLD,
    find_duplicate_images,
    find_duplicates,
    warn_if_too_short,
)
from easyssl.tools.search import nearest_neighbors
from easyssl.tools.visualize import plot_nearest_neighbors


def embed_file(path: str, checkpoint: str, dim: int) -> np.ndarray:
    """Embed one image file with a checkpoint's model (as embed_images does: whitened, at its precision)."""
    model, config = load_model(checkpoint)
    transform = eval_transform(config)
    try:
        image = load_image(path)
    except OSError as error:
        raise CLIError(str(error)) from None
    device = torch.device("cpu")
    with torch.inference_mode(), autocast(device, resolve_precision("auto", device)):
        vector = model.embedding(transform(image)[None]).float().numpy()  # whitened, as in the embeddings file
    if vector.shape[1] != dim:
        raise CLIError(
            f"checkpoint {checkpoint!r} makes {vector.shape[1]}-dimensional embeddings but the embeddings file has "
            f"{dim}: use the checkpoint that made the file"
        )
    return vector[0]


# --------------------------------------------------------------------------- similar
def add_similar(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``easyssl similar`` to its sub-parser."""
    p.epilog = """examples:
  easyssl similar --embeddings embeddings.csv --query cats/img1.jpg -k 10
  easyssl similar --embeddings embeddings.csv --query img1.jpg --query img7.jpg \\
      --image-dir my/images/ --plot neighbors.png
  easyssl similar --embeddings embeddings.csv --query new_photo.jpg --checkpoint runs/a/last.ckpt

Prints rank, cosine similarity and filename of the nearest images (the query itself
excluded). A query is a filename as stored in the embeddings file, any path ending in one
(my/images/cats/img1.jpg), or a unique name ending (img1.jpg). An image that is not in the
file is embedded on the fly when --checkpoint is given.
"""
    p.add_argument("--embeddings", required=True, help="embeddings file (.csv or .npz) from `easyssl embed` or `easyssl run`")
    p.add_argument("--query", required=True, action="append", help="filename or image path (repeatable)")
    p.add_argument("-k", type=int, default=10, help="number of neighbours (default: 10)")
    p.add_argument("--checkpoint", help="checkpoint that made the embeddings, to embed a query image not in the file")
    p.add_argument("--image-dir", help="folder the embeddings were made from (needed for --plot)")
    p.add_argument("--plot", metavar="PNG", help="write a picture: each query, then its neighbours")
    p.add_argument("--thumb-size", type=int, default=96, help="thumbnail side in pixels for --plot (default: 96)")


def cmd_similar(args: argparse.Namespace) -> int:
    """Run ``easyssl similar`` with the parsed arguments; returns the exit code."""
    check_positive(args.k, "-k")
    if args.plot and not args.image_dir:
        raise CLIError("--plot needs --image-dir, the folder of the images the embeddings were made from")
    embeddings, labels, filenames = read_embeddings(args.embeddings)
    num = embeddings.shape[0]
    rows: list[int | None] = []
    vectors = []
    for query in args.query:
        row = match_filename(query, filenames)
        if row is None:
            if not args.checkpoint:
                raise CLIError(
                    f"query {query!r} matches no filename in {args.embeddings!r} (they look like {filenames[0]!r}); "
                    "give a filename from it, or --checkpoint CKPT with the path of a new image to embed it"
                )
            if not os.path.isfile(query):
                raise CLIError(f"query {query!r} is neither a filename in {args.embeddings!r} nor an image file")
            vectors.append(embed_file(query, args.checkpoint, embeddings.shape[1]))
        else:
            vectors.append(embeddings[row])
        rows.append(row)
    others = num - 1 if any(r is not None for r in rows) else num
    if args.k > others:
        raise CLIError(f"-k {args.k} is more than the {others} other images in {args.embeddings!r}")

    # One extra neighbour, so that a query found in the file can drop itself.
    idx, sim = nearest_neighbors(embeddings, np.stack(vectors), k=min(args.k + 1, num))
    results = []
    for q, (query, row) in enumerate(zip(args.query, rows)):
        keep = [j for j in range(idx.shape[1]) if idx[q, j] != row][: args.k]
        results.append((idx[q, keep], sim[q, keep]))
        print(f"query: {filenames[row] if row is not None else query}")
        for rank, (i, s) in enumerate(zip(*results[-1]), start=1):
            print(f"{rank:4d}  {s:.4f}  {filenames[i]}")
    if args.plot:
        _plot_similar(args, labels, filenames, rows, results)
    return 0


def _plot_similar(args: argparse.Namespace, labels: list[int], filenames: list[str], rows: list[int | None], results: list) -> None:
    names = class_names(labels, filenames)

    def caption(i: int) -> str:
        return names[labels[i]] if names else ""

    query_images = [os.path.join(args.image_dir, filenames[r]) if r is not None else q for q, r in zip(args.query, rows)]
    neighbor_images = [[os.path.join(args.image_dir, filenames[i]) for i in found] for found, _ in results]
    for path in [p for group in [query_images, *neighbor_images] for p in group]:
        if not os.path.isfile(path):
            raise CLIError(f"image {path!r} does not exist: is --image-dir the folder the embeddings were made from?")
    captions = [[caption(r) if r is not None else "query"] + [caption(i) for i in found] for r, (found, _) in zip(rows, results)]
    try:
        path = plot_nearest_neighbors(
            query_images, neighbor_images, args.plot, thumb_size=args.thumb_size,
            similarities=[s for _, s in results], captions=captions if names else None,
        )
    except OSError as error:
        raise CLIError(f"cannot read an image: {error}") from None
    print(f"wrote {path}")


# --------------------------------------------------------------------------- duplicates
def add_duplicates(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``easyssl duplicates`` to its sub-parser."""
    p.epilog = f"""examples:
  easyssl duplicates --input-dir my/images/ --checkpoint runs/a/last.ckpt   # finds cropped copies too
  easyssl duplicates --embeddings embeddings.csv
  easyssl duplicates --embeddings embeddings.csv --ratio 6 --output groups.txt
  easyssl duplicates --input-dir my/images/ --checkpoint runs/a/last.ckpt --to-remove redundant.txt

Two images are linked when they are --ratio times closer to each other (in 1 - cosine
similarity) than each is to its -k-th nearest neighbour, and at least --threshold similar;
linked images form a group. A copy is far closer to its original than to anything else; a
look-alike has many neighbours about as close. With --input-dir and --checkpoint each image
is also embedded as {len(CROP_VIEWS)} crops and at 60 % resolution, and the best-matching view counts: cropped copies are
found this way (from an embeddings file alone most are not). Then the files' pixels confirm
each pair: once any crop is undone, a copy matches its original pixel for pixel, a look-alike
does not (--no-pixel-check skips this). A group is one where every two images are linked.
Raise --ratio for fewer, surer groups; lower it to find looser copies.
"""
    p.add_argument("--embeddings", help="embeddings file (.csv or .npz); or give --input-dir and --checkpoint")
    p.add_argument("--input-dir", help="folder of images, embedded with --checkpoint (whole and cropped)")
    p.add_argument("--checkpoint", help="checkpoint to embed --input-dir with; with --embeddings, only checked for its training length "
                   "(a .npz from `easyssl embed` records it already)")
    p.add_argument("--ratio", type=float, default=DUPLICATE_RATIO,
                   help=f"how many times closer a pair must be than each image's k-th neighbour (default: {DUPLICATE_RATIO:g}; 0: off)")
    p.add_argument("--threshold", type=float, default=DUPLICATE_THRESHOLD,
                   help=f"minimum cosine similarity, -1..1 (default: {DUPLICATE_THRESHOLD})")
    p.add_argument("-k", type=int, default=DUPLICATE_CONTEXT,
                   help=f"neighbours examined per image, the last the ratio test's reference (default: {DUPLICATE_CONTEXT})")
    p.add_argument("--mutual", action="store_true", help="also require each image to be the other's nearest neighbour")
    p.add_argument("--no-pixel-check", action="store_true",
                   help="with --input-dir: link pairs on their embeddings alone, without comparing their pixels")
    p.add_argument("--all-neighbors", action="store_true", help=argparse.SUPPRESS)  # the default since the ratio test
    p.add_argument("--output", help="text file: one group per line, filenames separated by tabs")
    p.add_argument("--to-remove", metavar="FILE", help="text file listing every group member but the first, one per line")
    p.add_argument("--show", type=int, default=20, help="groups printed (default: 20)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_duplicates(args: argparse.Namespace) -> int:
    """Run ``easyssl duplicates`` with the parsed arguments; returns the exit code."""
    check_positive(args.k, "-k")
    if args.ratio < 0:
        raise CLIError(f"--ratio must be >= 0 (0 turns the ratio test off), got {args.ratio:g}")
    options = {"threshold": args.threshold, "ratio": args.ratio or None, "k": args.k, "mutual": args.mutual}
    if args.input_dir:
        if args.embeddings or not args.checkpoint:
            raise CLIError("give either --embeddings FILE, or --input-dir DIR with --checkpoint CKPT (not both)")
        check_dir(args.input_dir)
        names = find_duplicate_images(args.input_dir, args.checkpoint, progress_bar=not args.quiet,
                                      pixel_check=not args.no_pixel_check, **options)
        filenames = sorted({name for group in names for name in group})
        index = {name: i for i, name in enumerate(filenames)}
        groups = [[index[name] for name in group] for group in names]
    elif args.embeddings:
        if args.no_pixel_check:
            raise CLIError("--no-pixel-check goes with --input-dir: from --embeddings no pixels are compared")
        embeddings, _, filenames = read_embeddings(args.embeddings)
        if args.checkpoint:
            warn_if_too_short(args.checkpoint)
        else:  # a .npz from `easyssl embed` / `easyssl run` records its model's training length
            warn_if_too_short(steps=embeddings_training_steps(args.embeddings), source=args.embeddings)
        groups = find_duplicates(embeddings, **options)
    else:
        raise CLIError("give --embeddings FILE, or --input-dir DIR with --checkpoint CKPT")
    lines = ["\t".join(filenames[i] for i in group) for group in groups]
    members = sum(len(g) for g in groups)
    print(f"found {len(groups)} group(s) of near-duplicates ({members} images)")
    for line in lines[: args.show]:
        print("  " + line.replace("\t", "  "))
    if len(lines) > args.show:
        print(f"  ... {len(lines) - args.show} more (use --output to save them all)")
    largest = max((len(g) for g in groups), default=0)
    if args.embeddings and largest > max(10, len(filenames) // 10):
        print(f"hint: the largest group holds {largest} of {len(filenames)} images: raise --ratio (now {args.ratio:g}) "
              f"or --threshold (now {args.threshold:g}) for these embeddings")
    if args.output:
        write_lines(args.output, ["\t".join(quote_name(filenames[i]) for i in group) for group in groups])
        print(f"wrote {args.output} (one group per line, filenames separated by tabs)")
    if args.to_remove:
        write_lines(args.to_remove, [quote_name(filenames[i]) for group in groups for i in group[1:]])
        print(f"wrote {args.to_remove} ({members - len(groups)} files: every group's members but its first)")
    return 0
