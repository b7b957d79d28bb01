"""Readout of test-time views: which views a trained model's embeddings should average (``model.embedding_views``).

The probe that chose ``easyssl.defaults.SMALL_IMAGE_EMBEDDING_VIEWS`` (ninth session, issue 12). For a checkpoint
trained on a Fashion-MNIST split (``tuning_screen.py`` keeps its checkpoint in ``/tmp/easyssl-screen-*``), it embeds
the split's 10,000 training images and 10,000 *other* images of the official training set (``--offset``: pick ones
disjoint from the checkpoint's training images; none of the official test set) under each view, then reports
weighted kNN top-1 (k=200, k=20) for several sets of views averaged: the features as they are, and whitened with
:func:`easyssl.fit_whitening` fitted to the averaged training features (what the end-of-training pass does). Labels
serve the evaluation only. 10,000 test images instead of the screens' 2,000: differences of a few tenths of a
point are then above the noise of the test set.

    python examples/benchmarks/embedding_views.py --checkpoint /tmp/easyssl-screen-xxxx/last.ckpt --split tuning --offset 40000
    python examples/benchmarks/embedding_views.py --checkpoint ... --split fresh --offset 50000 --json out.jsonl

The views are taken with ``model.embed`` (one view at a time), so the checkpoint's own ``embedding_views`` do not
matter here. Splits (``fashion_mnist_data.TRAINING_SET_SPLITS``): tuning trains on images 20,000+, fresh on 30,000+,
holdout on 10,000+ (10,000 each), so offsets 40,000 (tuning, holdout) and 50,000 (fresh) are disjoint.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import report, whitened_knn  # noqa: E402
from fashion_mnist_data import TRAINING_SET_SPLITS, build_folder, load_split  # noqa: E402

from easyssl import SSLDataset, knn_accuracy, load_model  # noqa: E402
from easyssl.config import eval_transform  # noqa: E402
from easyssl.nn import embedding_view  # noqa: E402

#: The single views embedded: ``name: (scale, mirrored)``; 8/7 turns 28 px images into 32 px ones, 9/7 into 36 px, 6/7
#: into 24 px (the last three pairs since the sixteenth session).
VIEWS = {"image": (1.0, False), "mirror": (1.0, True), "large": (8 / 7, False), "large_mirror": (8 / 7, True),
         "larger": (9 / 7, False), "larger_mirror": (9 / 7, True), "small": (6 / 7, False), "small_mirror": (6 / 7, True)}
FOUR = ("image", "mirror", "large", "large_mirror")  # the defaults' views (easyssl.defaults.SMALL_IMAGE_EMBEDDING_VIEWS)
#: The sets of views compared (each averaged).
SETS = (("image",), ("image", "mirror"), ("image", "large"), ("image", "mirror", "large"),
        FOUR, ("large", "large_mirror"), (*FOUR, "larger", "larger_mirror"), (*FOUR, "small", "small_mirror"),
        (*FOUR, "larger", "larger_mirror", "small", "small_mirror"), ("large", "large_mirror", "larger", "larger_mirror"))


def view_features(model: torch.nn.Module, batches) -> dict[str, np.ndarray]:
    """``{view name: (N, D) features}`` of the image batches (``model.embed`` of each view)."""
    out: dict[str, list[torch.Tensor]] = {name: [] for name in VIEWS}
    with torch.no_grad():
        for x in batches:
            for name, (scale, mirrored) in VIEWS.items():
                out[name].append(model.embed(embedding_view(x, scale, mirrored)).float())
    return {name: torch.cat(parts).numpy() for name, parts in out.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--split", choices=tuple(TRAINING_SET_SPLITS), default="tuning", help="the split the checkpoint trained on")
    parser.add_argument("--offset", type=int, required=True, help="first of the 10,000 official training images to test on")
    parser.add_argument("--json", help="append the figures as one line to this file")
    args = parser.parse_args(argv)
    train_offset = TRAINING_SET_SPLITS[args.split][0]
    if args.offset < train_offset + 10_000 and train_offset < args.offset + 10_000:
        parser.error(f"--offset {args.offset}: images {args.offset}+ overlap the {args.split} split's training images ({train_offset}+)")
    train_dir, _ = build_folder(f"bench_data/fashion_mnist_{args.split}", 10_000, 2_000, tuning=args.split)
    model, config = load_model(args.checkpoint)
    transform = eval_transform(config)
    data = SSLDataset(train_dir)
    train = view_features(model, (torch.stack([transform(data.load(j)[0]) for j in range(s, min(s + 1000, len(data)))])
                                  for s in range(0, len(data), 1000)))
    train_labels = np.asarray(data.get_targets())
    images, labels = load_split("train")
    images, test_labels = images[args.offset : args.offset + 10_000], labels[args.offset : args.offset + 10_000].astype(np.int64)
    test = view_features(model, (torch.stack([transform(Image.fromarray(a, "L").convert("RGB")) for a in images[s : s + 1000]])
                                 for s in range(0, len(images), 1000)))
    result: dict = {"checkpoint": args.checkpoint, "split": args.split, "offset": args.offset}
    for names in SETS:
        tr, te = np.mean([train[n] for n in names], 0), np.mean([test[n] for n in names], 0)
        figures = {f"features_k{k}": round(knn_accuracy(tr, train_labels, te, test_labels, k=k), 4) for k in (200, 20)}
        whitened = whitened_knn(tr, train_labels, te, test_labels)  # the whitening refitted to the averaged features
        figures.update({f"whitened_k{k}": round(whitened[f"knn_top1_k{k}_whitened"], 4) for k in (200, 20)})
        result["+".join(names)] = figures
    return report(result, args.json)


if __name__ == "__main__":
    main()
