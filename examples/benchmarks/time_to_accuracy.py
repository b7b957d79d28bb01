"""Benchmark: how good are the embeddings after a fixed training-time budget?

Trains easyssl with nothing but a time budget (``trainer={"max_time": ...}``, every other
setting left to easyssl's defaults) on 10,000 Fashion-MNIST training images, then reports
the weighted kNN top-1 accuracy (k=200, the ``knn_accuracy`` default, and k=20) of 2,000
test images. For reference it prints raw pixels' kNN accuracy on the same split and,
with ``--peer``, LightlySSL's three-line API (ResNet-18, input 32, batch 128, 1 epoch).
easyssl's embeddings are whitened (fitted on the training images at the end of training);
the table also shows its features before whitening (``_unwhitened``) and raw pixels and the
peer's embeddings after the same whitening (``_whitened``), so every row is compared fairly.

    python examples/benchmarks/time_to_accuracy.py --budget 00:00:10:00
    python examples/benchmarks/time_to_accuracy.py --budget 00:00:10:00 --peer
    python examples/benchmarks/time_to_accuracy.py --tuning    # the disjoint split used to choose defaults
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine, parse_overrides, print_table, run_ours, run_peer, whitened_knn  # noqa: E402
from fashion_mnist_data import build_folder  # noqa: E402

from easyssl import SSLDataset, knn_accuracy  # noqa: E402


def raw_pixels(folder: str) -> tuple[np.ndarray, list[int]]:
    """Every image of ``folder`` flattened to a vector of its grayscale pixels."""
    dataset = SSLDataset(folder)
    vectors = np.stack([np.asarray(dataset.load(i)[0].convert("L"), dtype=np.float32).ravel() for i in range(len(dataset))])
    return vectors, dataset.get_targets()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="bench_data/fashion_mnist")
    parser.add_argument("--budget", default="00:00:10:00", help="training-time budget, DD:HH:MM:SS or seconds")
    parser.add_argument("--method", default="simclr")
    parser.add_argument("--tuning", action="store_true", help="use the tuning split (from the training set only)")
    parser.add_argument("--peer", action="store_true", help="also run LightlySSL for 1 epoch (ResNet-18, input 32, batch 128)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a default (for tuning)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    data = args.data + ("_tuning" if args.tuning else "")
    train_dir, test_dir = build_folder(data, 10_000, 2_000, tuning=args.tuning)
    print(f"machine: {machine()}")
    print(f"data: Fashion-MNIST, 10,000 train / 2,000 test images ({'tuning split' if args.tuning else 'benchmark split'})")
    extra = parse_overrides(args.set)
    rows = {}
    train_px, train_labels = raw_pixels(train_dir)
    test_px, test_labels = raw_pixels(test_dir)
    rows["raw pixels"] = {f"knn_top1_k{k}": knn_accuracy(train_px, train_labels, test_px, test_labels, k=k) for k in (200, 20)}
    rows["raw pixels"].update(whitened_knn(train_px, train_labels, test_px, test_labels))
    rows["easyssl"] = run_ours(train_dir, test_dir, max_time=args.budget, method=args.method, extra=extra)
    print("easyssl:", json.dumps({k: v for k, v in rows["easyssl"].items() if k != "config"}, default=str), flush=True)
    if args.peer:
        rows["lightly"] = run_peer(train_dir, test_dir, epochs=1, batch_size=128, input_size=32)
    keys = ["train_seconds", "epochs", "train_images_per_second", "knn_top1_k200", "knn_top1_k20",
            "knn_top1_k200_unwhitened", "knn_top1_k20_unwhitened", "knn_top1_k200_whitened", "knn_top1_k20_whitened"]
    print_table(rows, keys)
    print("easyssl's resolved settings:", json.dumps(rows["easyssl"]["config"], default=str))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine(), "args": vars(args), "results": rows}, handle, indent=2, default=str)
    return rows


if __name__ == "__main__":
    main()
