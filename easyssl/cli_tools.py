"""Command-line tools for what people do with embeddings.

``easyssl similar``, ``duplicates``, ``select``, ``label-next``, ``plot`` and ``export``.
Each works on an embeddings file written by ``easyssl embed``/``easyssl run`` (``.csv`` or
``.npz``) or on a checkpoint; importing this module registers them in
:data:`easyssl.cli.EXTRA_COMMANDS`.
"""

from __future__ import annotations

import argparse
import csv
import os
from typing import Any, Sequence

import numpy as np

from easyssl.cli import EXTRA_COMMANDS, CLIError

# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def _load(path: str) -> tuple[np.ndarray, list[int], list[str]]:
    from easyssl.embeddings_io import load_embeddings

    embeddings, labels, filenames = load_embeddings(path)
    if embeddings.shape[0] == 0:
        raise CLIError(f"{path!r} holds no embeddings")
    return embeddings, labels, filenames


def _norm(name: str) -> str:
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name


def match_filename(query: str, filenames: Sequence[str]) -> int | None:
    """Row of ``query`` among ``filenames``: an exact match, a path ending in a filename
    (``/data/imgs/cats/a.jpg`` matches ``cats/a.jpg``), or the unique filename ending in
    the query (``a.jpg`` matches ``cats/a.jpg``). ``None`` when nothing matches.

    Raises:
        CLIError: several filenames end in the query.
    """
    q = _norm(query)
    names = [_norm(f) for f in filenames]
    for i, name in enumerate(names):
        if name == q:
            return i
    ending = [(len(name), i) for i, name in enumerate(names) if q.endswith("/" + name)]
    if ending:
        return max(ending)[1]  # the longest (most specific) filename the path ends in
    inside = [i for i, name in enumerate(names) if name.endswith("/" + q)]
    if len(inside) == 1:
        return inside[0]
    if len(inside) > 1:
        shown = ", ".join(repr(filenames[i]) for i in inside[:3])
        more = f" and {len(inside) - 3} more" if len(inside) > 3 else ""
        raise CLIError(f"query {query!r} is ambiguous: it matches {shown}{more}; give more of the path")
    return None


def _embed_file(path: str, checkpoint: str, dim: int) -> np.ndarray:
    """Embed one image file with a checkpoint's model (as embed_images does)."""
    import torch

    from easyssl.api import load_model
    from easyssl.data.images import load_image
    from easyssl.transforms.base import IMAGENET_NORMALIZE, EvalTransform

    model, config = load_model(checkpoint)
    collate = config["collate"]
    transform = EvalTransform(int(collate["input_size"]), collate.get("normalize", IMAGENET_NORMALIZE))
    try:
        image = load_image(path)
    except OSError as error:
        raise CLIError(str(error)) from None
    from easyssl.embedding import _autocast, resolve_precision

    device = torch.device("cpu")
    with torch.inference_mode(), _autocast(device, resolve_precision("auto", device)):  # the precision embed_images uses
        vector = model.embedding(transform(image)[None]).numpy()  # whitened, as in the embeddings file
    if vector.shape[1] != dim:
        raise CLIError(
            f"checkpoint {checkpoint!r} makes {vector.shape[1]}-dimensional embeddings but the embeddings file has "
            f"{dim}: use the checkpoint that made the file"
        )
    return vector[0]


def _class_names(labels: Sequence[int], filenames: Sequence[str]) -> dict[int, str] | None:
    """``label -> class folder`` when every label's files share one top-level folder."""
    names: dict[int, str] = {}
    for label, name in zip(labels, filenames):
        name = _norm(name)
        if "/" not in name:
            return None
        folder = name.split("/", 1)[0]
        if names.setdefault(label, folder) != folder:
            return None
    return names


def _write_lines(path: str, lines: Sequence[str]) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)


def _read_names(path: str, filenames: Sequence[str], what: str) -> list[int]:
    """Rows of the filenames listed one per line in ``path``."""
    if not os.path.isfile(path):
        raise CLIError(f"{what} file {path!r} does not exist")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            name = line.strip()
            if not name or name.startswith("#"):
                continue
            row = match_filename(name, filenames)
            if row is None:
                raise CLIError(f"{path!r} line {line_number}: {name!r} is not in the embeddings file")
            rows.append(row)
    return rows


def _positive(value: int | None, flag: str) -> None:
    if value is not None and value < 1:
        raise CLIError(f"{flag} must be at least 1, got {value}")


# --------------------------------------------------------------------------- #
# similar
# --------------------------------------------------------------------------- #
def cmd_similar(args: argparse.Namespace) -> int:
    from easyssl.search import nearest_neighbors

    _positive(args.k, "-k")
    if args.plot and not args.image_dir:
        raise CLIError("--plot needs --image-dir, the folder of the images the embeddings were made from")
    embeddings, labels, filenames = _load(args.embeddings)
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
            vectors.append(_embed_file(query, args.checkpoint, embeddings.shape[1]))
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
        from easyssl.visualize import plot_nearest_neighbors

        names = _class_names(labels, filenames)

        def caption(i: int) -> str:
            return names[labels[i]] if names else ""

        query_images = [os.path.join(args.image_dir, filenames[r]) if r is not None else q for q, r in zip(args.query, rows)]
        neighbor_images = [[os.path.join(args.image_dir, filenames[i]) for i in found] for found, _ in results]
        for path in [p for group in [query_images, *neighbor_images] for p in group]:
            if not os.path.isfile(path):
                raise CLIError(f"image {path!r} does not exist: is --image-dir the folder the embeddings were made from?")
        captions = [
            [caption(r) if r is not None else "query"] + [caption(i) for i in found] for r, (found, _) in zip(rows, results)
        ]
        try:
            path = plot_nearest_neighbors(
                query_images, neighbor_images, args.plot, thumb_size=args.thumb_size,
                similarities=[s for _, s in results], captions=captions if names else None,
            )
        except OSError as error:
            raise CLIError(f"cannot read an image: {error}") from None
        print(f"wrote {path}")
    return 0


def _add_similar(p: argparse.ArgumentParser) -> None:
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


# --------------------------------------------------------------------------- #
# duplicates
# --------------------------------------------------------------------------- #
def cmd_duplicates(args: argparse.Namespace) -> int:
    from easyssl.search import find_duplicates

    _positive(args.k, "-k")
    embeddings, _, filenames = _load(args.embeddings)
    groups = find_duplicates(embeddings, threshold=args.threshold, k=args.k)
    lines = ["\t".join(filenames[i] for i in group) for group in groups]
    members = sum(len(g) for g in groups)
    print(f"found {len(groups)} group(s) of near-duplicates ({members} images) at cosine similarity >= {args.threshold:g}")
    for line in lines[: args.show]:
        print("  " + line.replace("\t", "  "))
    if len(lines) > args.show:
        print(f"  ... {len(lines) - args.show} more (use --output to save them all)")
    largest = max((len(g) for g in groups), default=0)
    if largest > max(10, len(filenames) // 10):
        from easyssl.search import nearest_neighbors

        centred = embeddings - embeddings.mean(axis=0, keepdims=True)  # as find_duplicates compares them
        _, sim = nearest_neighbors(centred, None, k=1, exclude_self=True)
        print(f"hint: the largest group holds {largest} of {len(filenames)} images, so --threshold {args.threshold:g} is "
              f"too low for these embeddings (each image's nearest neighbour has median similarity "
              f"{float(np.median(sim)):.4f}); raise it, e.g. --threshold {min(0.999, float(np.quantile(sim, 0.9))):.3f}")
    if args.output:
        _write_lines(args.output, lines)
        print(f"wrote {args.output} (one group per line, filenames separated by tabs)")
    if args.to_remove:
        _write_lines(args.to_remove, [filenames[i] for group in groups for i in group[1:]])
        print(f"wrote {args.to_remove} ({members - len(groups)} files: every group's members but its first)")
    return 0


def _add_duplicates(p: argparse.ArgumentParser) -> None:
    p.epilog = """examples:
  easyssl duplicates --embeddings embeddings.csv
  easyssl duplicates --embeddings embeddings.csv --threshold 0.98 --output groups.txt
  easyssl duplicates --embeddings embeddings.csv --to-remove redundant.txt

Images whose embeddings have cosine similarity >= --threshold are linked, and linked
images form a group. Lower the threshold to find looser near-duplicates (crops, edits).
"""
    p.add_argument("--embeddings", required=True, help="embeddings file (.csv or .npz)")
    p.add_argument("--threshold", type=float, default=0.9, help="minimum cosine similarity, -1..1 (default: 0.9)")
    p.add_argument("-k", type=int, default=20, help="neighbours examined per image (default: 20)")
    p.add_argument("--output", help="text file: one group per line, filenames separated by tabs")
    p.add_argument("--to-remove", metavar="FILE", help="text file listing every group member but the first, one per line")
    p.add_argument("--show", type=int, default=20, help="groups printed (default: 20)")


# --------------------------------------------------------------------------- #
# select
# --------------------------------------------------------------------------- #
def cmd_select(args: argparse.Namespace) -> int:
    from easyssl.selection import select_diverse

    embeddings, _, filenames = _load(args.embeddings)
    chosen = select_diverse(embeddings, args.n, metric=args.metric)
    _write_lines(args.output, [filenames[i] for i in chosen])
    print(f"chose {len(chosen)} diverse images out of {len(filenames)}: {args.output}")
    return 0


def _add_select(p: argparse.ArgumentParser) -> None:
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


# --------------------------------------------------------------------------- #
# label-next
# --------------------------------------------------------------------------- #
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
        with open(path, newline="", encoding="utf-8") as handle:
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
        if by_name:
            order = {}
            for r, row in enumerate(body):
                i = match_filename(row[0], filenames)
                if i is None:
                    raise CLIError(f"{path!r}: {row[0]!r} is not in the embeddings file")
                order[i] = r
            missing = [filenames[i] for i in range(len(filenames)) if i not in order]
            if missing:
                raise CLIError(f"{path!r} has no predictions for {len(missing)} image(s), e.g. {missing[0]!r}")
            values = values[[order[i] for i in range(len(filenames))]]
        probabilities = values
    else:
        raise CLIError(f"cannot read predictions from {path!r}: use a .npy array or a .csv file of shape (images, classes)")
    if probabilities.ndim != 2 or probabilities.shape[0] != len(filenames):
        raise CLIError(
            f"predictions in {path!r} must have shape ({len(filenames)}, classes), one row per embedding, "
            f"got {probabilities.shape}"
        )
    return probabilities


def cmd_label_next(args: argparse.Namespace) -> int:
    from easyssl.selection import select_for_labeling

    embeddings, _, filenames = _load(args.embeddings)
    probabilities = load_predictions(args.predictions, filenames)
    if args.softmax:
        shifted = probabilities - probabilities.max(axis=1, keepdims=True)
        probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    labeled = _read_names(args.labeled, filenames, "--labeled") if args.labeled else None
    chosen = select_for_labeling(
        embeddings, probabilities, args.n, method=args.uncertainty, diversity=args.diversity, labeled_indices=labeled
    )
    _write_lines(args.output, [filenames[i] for i in chosen])
    print(f"chose {len(chosen)} images to label next ({args.uncertainty} uncertainty, diversity {args.diversity:g}): {args.output}")
    return 0


def _add_label_next(p: argparse.ArgumentParser) -> None:
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


# --------------------------------------------------------------------------- #
# plot
# --------------------------------------------------------------------------- #
def cmd_plot(args: argparse.Namespace) -> int:
    from easyssl.visualize import plot_embeddings

    _positive(args.size, "--size")
    embeddings, labels, filenames = _load(args.embeddings)
    names = _class_names(labels, filenames)
    plot_labels: Any = np.asarray(labels) if len(set(labels)) > 1 and not args.no_labels else None
    path = plot_embeddings(
        embeddings, plot_labels, args.output, size=(args.size, args.size), point_radius=args.point_radius,
        title=args.title, class_names=names,
    )
    print(f"wrote {path} ({len(filenames)} images, PCA to 2-D{', coloured by label' if plot_labels is not None else ''})")
    return 0


def _add_plot(p: argparse.ArgumentParser) -> None:
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


# --------------------------------------------------------------------------- #
# export
# --------------------------------------------------------------------------- #
def cmd_export(args: argparse.Namespace) -> int:
    from easyssl.export import backbone_from_checkpoint, export_backbone

    if not os.path.isfile(args.checkpoint):
        raise CLIError(f"checkpoint {args.checkpoint!r} does not exist: pass the .ckpt file written by `easyssl train`")
    path = export_backbone(args.checkpoint, args.output, format=args.format)
    print(f"wrote {path}")
    if args.format == "easyssl":
        print(f"load it with: easyssl.export.load_backbone({path!r})")
        return 0
    _, build = backbone_from_checkpoint(args.checkpoint)
    ctor = str(build["name"]).replace("-", "")
    print(f"load it with: model = torchvision.models.{ctor}(); model.load_state_dict(torch.load({path!r}))")
    if build.get("small_input"):
        print("this model has the small-image stem: first set model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False) "
              "and model.maxpool = torch.nn.Identity() (or use easyssl.export.torchvision_model(checkpoint))")
    print("its fc layer is untrained: replace it, e.g. model.fc = torch.nn.Linear(model.fc.in_features, num_classes)")
    return 0


def _add_export(p: argparse.ArgumentParser) -> None:
    p.epilog = """examples:
  easyssl export --checkpoint runs/a/last.ckpt --output backbone.pth
  easyssl export --checkpoint runs/a/last.ckpt --output backbone.pt --format easyssl

--format torchvision (default) writes a state_dict that torchvision.models.resnet18()
(resnet34/50/101/152 likewise) loads with load_state_dict; only width-1 ResNets have a
torchvision twin (train with --width 1). --format easyssl works for every backbone;
rebuild it with easyssl.export.load_backbone(path).
"""
    p.add_argument("--checkpoint", required=True, help="the .ckpt file written by `easyssl train`")
    p.add_argument("--output", required=True, help="file to write, e.g. backbone.pth")
    p.add_argument("--format", choices=["torchvision", "easyssl"], default="torchvision",
                   help="torchvision (default): a state_dict for torchvision.models.resnetXX(); easyssl: any backbone")


#: (name, help, add_arguments, run) of every tool, in the order they are listed.
COMMANDS = [
    ("similar", "print the images most similar to a query image (and draw them)", _add_similar, cmd_similar),
    ("duplicates", "find groups of near-duplicate images", _add_duplicates, cmd_duplicates),
    ("select", "choose a diverse subset of images (a coreset) and write their filenames", _add_select, cmd_select),
    ("label-next", "active learning: choose the next images to label from a classifier's predictions", _add_label_next, cmd_label_next),
    ("plot", "draw the embeddings in 2-D (PCA), coloured by label, as a PNG", _add_plot, cmd_plot),
    ("export", "export the pretrained backbone's weights for torchvision", _add_export, cmd_export),
]

_registered = {entry[0] for entry in EXTRA_COMMANDS}
EXTRA_COMMANDS.extend(entry for entry in COMMANDS if entry[0] not in _registered)
