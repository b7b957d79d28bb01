"""Benchmark: easyssl's three-line API on Fashion-MNIST, optionally against LightlySSL in the same run.

Builds a folder of Fashion-MNIST PNGs (10,000 train, 2,000 test, class sub-folders) from
Debian's ``dataset-fashion-mnist`` package, trains on the train folder (labels unused),
embeds both folders, and prints training images/s, embedding images/s and the weighted
kNN top-1 accuracy of the test images against the train images.

    apt-get install dataset-fashion-mnist
    python examples/benchmarks/fashion_mnist.py                     # easyssl, equal-work settings
    python examples/benchmarks/fashion_mnist.py --peer              # + lightly, same settings, ratios
    python examples/benchmarks/fashion_mnist.py --epochs 3 --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine, print_table, run_ours, run_peer  # noqa: E402
from fashion_mnist_data import build_folder  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="bench_data/fashion_mnist", help="where to write the PNG folders")
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--backbone", default="resnet-18")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--precision", default="auto", help="easyssl's precision: auto (bf16 where the hardware has it), 32, bf16")
    parser.add_argument("--peer", action="store_true", help="also run LightlySSL (pip install lightly) with the same settings")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    train_dir, test_dir = build_folder(args.data, args.n_train, args.n_test)
    print(f"machine: {machine()}")
    print(f"data: {args.n_train} train / {args.n_test} test Fashion-MNIST PNGs in {args.data}")
    print(f"settings: {args.backbone} (width {args.width}), input {args.input_size} px, batch {args.batch_size}, {args.epochs} epoch(s), SimCLR")
    rows = {}
    rows["easyssl"] = run_ours(train_dir, test_dir, epochs=args.epochs, batch_size=args.batch_size, input_size=args.input_size,
                               backbone=args.backbone, width=args.width, precision=args.precision,
                               # equal work: the peer's views (at the input size, crops from 8%), not easyssl's small-image rules,
                               # and one forward pass per embedded image (no test-time views)
                               extra={"collate": {"train_crop_size": args.input_size, "min_scale": 0.08},
                                      "model": {"embedding_views": [[1.0, False]]}})
    print("easyssl:", json.dumps({k: v for k, v in rows["easyssl"].items() if k != "config"}, default=str), flush=True)
    if args.peer:
        rows["lightly"] = run_peer(train_dir, test_dir, epochs=args.epochs, batch_size=args.batch_size, input_size=args.input_size,
                                   backbone=args.backbone)
    print_table(rows, ["train_seconds", "train_images_per_second", "embed_images_per_second", "knn_top1_k200", "knn_top1_k20",
                       "knn_top1_k200_unwhitened", "knn_top1_k20_unwhitened", "knn_top1_k200_whitened", "knn_top1_k20_whitened"])
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine(), "args": vars(args), "results": rows}, handle, indent=2, default=str)
    return rows


if __name__ == "__main__":
    main()
