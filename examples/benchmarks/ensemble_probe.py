"""Readout probe: ensembles of saved models, their features concatenated (no training).

For every image of ``FOLDER/train`` and ``FOLDER/test``, each checkpoint's features before whitening (averaged over
its test-time views, ``model.embedding_views``: ``embed_images(..., whiten=False)``) are computed; for
every combination of one, two and three models their features are concatenated, a whitening is fitted to the
training features (:func:`easyssl.fit_whitening`), and weighted kNN top-1 (k=200, k=20) of the test images is printed,
one JSON line per combination (``--json`` appends them to a file).

Nineteenth session (issue 12): two 10-minute models of the defaults, concatenated, score 0.6 to 0.8 points above either
alone; but at equal training time (two models of half the budget each, or a ResNet-10 of 212 s beside a 10-epoch
ResNet-18) the pair ties with one model of the whole budget, so an ensemble is not a default (docs/tuning_notes.md, "Nineteenth session").

    python examples/benchmarks/ensemble_probe.py bench_data/fashion_mnist_tuning_test10000_40000 A.ckpt B.ckpt C.ckpt
"""
from __future__ import annotations

import argparse
import itertools
import json
import os

import numpy as np

from easyssl import embed_images, fit_whitening, knn_accuracy


def features(checkpoint: str, folder: str) -> tuple[np.ndarray, np.ndarray]:
    """The checkpoint's features before whitening (over its test-time views) of every image of ``folder``, and the labels."""
    embeddings, labels, _ = embed_images(folder, checkpoint, whiten=False, progress_bar=False)
    return embeddings, np.asarray(labels)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="a folder with train/ and test/ class sub-folders")
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--largest", type=int, default=3, help="the largest ensemble to score")
    parser.add_argument("--json", help="append one JSON line per combination to this file")
    args = parser.parse_args(argv)
    train, test = {}, {}
    for checkpoint in args.checkpoints:
        train[checkpoint], train_labels = features(checkpoint, os.path.join(args.folder, "train"))
        test[checkpoint], test_labels = features(checkpoint, os.path.join(args.folder, "test"))
    results = []
    for size in range(1, args.largest + 1):
        for combination in itertools.combinations(args.checkpoints, size):
            tr = np.concatenate([train[c] for c in combination], 1)
            te = np.concatenate([test[c] for c in combination], 1)
            mean, whitening = fit_whitening(tr)
            row = {"models": list(combination), "features": tr.shape[1]}
            for k in (200, 20):
                row[f"k{k}"] = round(knn_accuracy((tr - mean) @ whitening, train_labels, (te - mean) @ whitening, test_labels, k=k), 4)
            print(json.dumps(row), flush=True)
            results.append(row)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps({**row, "folder": args.folder}) + "\n")
    return results


if __name__ == "__main__":
    main()
