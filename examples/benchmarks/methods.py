"""Benchmark: every SSL method for the same fixed training-time budget on the Fashion-MNIST folder.

Each method trains through the three-line API with its own defaults (views, heads, loss,
optimiser) and only a time budget, then the test images are classified by weighted kNN
against the train images. Prints one row per method: training images/s, epochs done,
kNN top-1 (k=200 and k=20).

    python examples/benchmarks/methods.py --budget 120
    python examples/benchmarks/methods.py --budget 60 --methods simclr byol dino
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine, run_ours  # noqa: E402
from fashion_mnist_data import build_folder  # noqa: E402

from easyssl import available_methods  # noqa: E402


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="bench_data/fashion_mnist")
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=2_000)
    parser.add_argument("--budget", default="120", help="training time per method: seconds or DD:HH:MM:SS")
    parser.add_argument("--methods", nargs="+", default=None, help="default: every registered method")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    train_dir, test_dir = build_folder(args.data, args.n_train, args.n_test)
    methods = args.methods or available_methods()
    print(f"machine: {machine()}")
    print(f"data: {args.n_train} train / {args.n_test} test Fashion-MNIST images; budget {args.budget} s of training per method")
    print(f"{'method':12s} {'backbone':16s} {'img/s':>8s} {'epochs':>7s} {'kNN k=200':>10s} {'kNN k=20':>9s}")
    rows = []
    for method in methods:
        result = run_ours(train_dir, test_dir, max_time=args.budget, method=method)
        model = result["config"]["model"]
        rows.append({"method": method, **{k: v for k, v in result.items() if k != "config"}, "backbone": f"{model['backbone']} x{model['width']}"})
        print(f"{method:12s} {rows[-1]['backbone']:16s} {result['train_images_per_second']:8.0f} {result['epochs']:7d} "
              f"{result['knn_top1_k200']:10.3f} {result['knn_top1_k20']:9.3f}", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine(), "args": vars(args), "rows": rows}, handle, indent=2, default=str)
    return rows


if __name__ == "__main__":
    main()
