"""Benchmark: kNN accuracy against the training-time budget, easyssl's defaults and the peer's, in one picture.

For each budget (1, 2, 5 and 10 minutes by default; add 30 with ``--budgets 1 2 5 10 30``)
this trains easyssl with nothing but ``trainer={"max_time": budget}`` and LightlySSL's
three-line API under the same wall-clock budget (its Lightning ``max_time``; ResNet-18,
input 32, batch 128, at most 100 epochs, as in ``time_to_accuracy.py``) on 10,000
Fashion-MNIST training images, then measures weighted kNN top-1 (k=200 and k=20) of 2,000
test images: easyssl's embeddings as ``embed_images`` returns them (whitened) and its
features before whitening, the peer's embeddings as returned, and raw pixels, plain and
whitened, as flat reference lines. Writes the figures as JSON and the curve as a PNG
(``--png``; matplotlib, from the ``bench`` extra).

    python examples/benchmarks/budget_curve.py --peer --json curve.json --png docs/budget_curve.png
    python examples/benchmarks/budget_curve.py --tuning --budgets 1 2     # on the tuning split
    python examples/benchmarks/budget_curve.py --plot-only curve.json --png docs/budget_curve.png
    python examples/benchmarks/budget_curve.py --peer-from curve.json --json new.json --png docs/budget_curve.png  # the peer's figures reused

Training time is the wall time of the training call (easyssl's includes its whitening
fit); embedding the images afterwards is not counted, for either library.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine, run_ours, run_peer, whitened_knn  # noqa: E402
from fashion_mnist_data import build_folder  # noqa: E402
from time_to_accuracy import raw_pixels  # noqa: E402

from easyssl import knn_accuracy  # noqa: E402

#: Lines of the picture: (library, figure in that library's results of a budget, label, colour, line style).
LINES = (
    ("easyssl", "knn_top1_k200", "easyssl defaults (embeddings as returned)", "tab:blue", "-"),
    ("easyssl", "knn_top1_k200_unwhitened", "easyssl, features before whitening", "tab:blue", "--"),
    ("lightly", "knn_top1_k200", "LightlySSL three-line API (as returned)", "tab:orange", "-"),
    ("lightly", "knn_top1_k200_whitened", "LightlySSL, whitened", "tab:orange", "--"),
)


def plot_curve(figures: dict[str, Any], path: str) -> str:
    """Draw kNN top-1 (k=200) against the budget in minutes for each library, with raw pixels as flat lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = figures["budgets"]
    minutes = [b["minutes"] for b in budgets]
    fig, ax = plt.subplots(figsize=(9.5, 4.6), dpi=120)
    for library, key, label, colour, style in LINES:
        points = [(b["minutes"], b[library][key]) for b in budgets if library in b and key in b[library]]
        if points:
            ax.plot(*zip(*points), style, marker="o", color=colour, label=label)
    raw = figures["raw_pixels"]
    ax.axhline(raw["knn_top1_k200"], color="gray", linestyle=":", label="raw pixels")
    ax.axhline(raw["knn_top1_k200_whitened"], color="black", linestyle=":", label="raw pixels, whitened")
    ax.set_xscale("log")
    ax.set_xticks(minutes)
    ax.set_xticklabels([f"{m:g}" for m in minutes])
    ax.set_xlabel("training-time budget (minutes, wall clock)")
    ax.set_ylabel("kNN top-1, k=200")
    ax.set_title(f"Fashion-MNIST, 10,000 train / 2,000 test images\n{figures['machine']}", fontsize=8)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside the axes: no point hidden
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="bench_data/fashion_mnist")
    parser.add_argument("--tuning", action="store_true", help="use the tuning split (from the training set only)")
    parser.add_argument("--budgets", type=float, nargs="+", default=[1, 2, 5, 10], help="training budgets in minutes")
    parser.add_argument("--peer", action="store_true", help="also train LightlySSL under each budget")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--png", help="draw the curve into this PNG file")
    parser.add_argument("--peer-from", metavar="JSON",
                        help="take the peer's figures from an earlier run's JSON (same data and machine) instead of training it: "
                             "to redraw easyssl's line after a change of defaults without the peer's 40 minutes")
    parser.add_argument("--plot-only", metavar="JSON", help="only draw the PNG from an earlier run's JSON")
    args = parser.parse_args(argv)
    if args.plot_only:
        with open(args.plot_only) as handle:
            figures = json.load(handle)
        print(plot_curve(figures, args.png or os.path.splitext(args.plot_only)[0] + ".png"))
        return figures

    data = args.data + ("_tuning" if args.tuning else "")
    train_dir, test_dir = build_folder(data, 10_000, 2_000, tuning=args.tuning)
    peer_rows: dict[float, Any] = {}
    if args.peer_from:
        with open(args.peer_from) as handle:
            earlier = json.load(handle)
        peer_rows = {row["minutes"]: row["lightly"] for row in earlier["budgets"] if "lightly" in row}
        if earlier.get("split") != ("tuning" if args.tuning else "benchmark"):
            raise SystemExit(f"--peer-from {args.peer_from}: its split is {earlier.get('split')!r}, not this run's")
    figures: dict[str, Any] = {"machine": machine(), "split": "tuning" if args.tuning else "benchmark", "args": vars(args), "budgets": []}
    print(f"machine: {figures['machine']}", flush=True)
    train_px, train_labels = raw_pixels(train_dir)
    test_px, test_labels = raw_pixels(test_dir)
    raw = {f"knn_top1_k{k}": knn_accuracy(train_px, train_labels, test_px, test_labels, k=k) for k in (200, 20)}
    raw.update(whitened_knn(train_px, train_labels, test_px, test_labels))
    figures["raw_pixels"] = raw
    print("raw pixels:", json.dumps(raw), flush=True)
    for minutes in args.budgets:
        row: dict[str, Any] = {"minutes": minutes}
        row["easyssl"] = run_ours(train_dir, test_dir, max_time=minutes * 60)
        row["easyssl"].pop("config", None)
        print(f"{minutes:g} min easyssl:", json.dumps(row["easyssl"], default=str), flush=True)
        if peer_rows.get(minutes):
            row["lightly"] = {**peer_rows[minutes], "from": args.peer_from}
        elif args.peer:
            row["lightly"] = run_peer(train_dir, test_dir, epochs=100, max_time=minutes * 60, batch_size=128, input_size=32)
            print(f"{minutes:g} min lightly:", json.dumps(row["lightly"], default=str), flush=True)
        figures["budgets"].append(row)
        if args.json:  # after every budget, so a long run that is stopped keeps what it measured
            with open(args.json, "w") as handle:
                json.dump(figures, handle, indent=2, default=str)
    print(f"{'budget':>8s} {'easyssl':>9s} {'unwhitened':>11s} {'lightly':>9s}   (kNN top-1, k=200; raw pixels {raw['knn_top1_k200']:.3f}, "
          f"whitened {raw['knn_top1_k200_whitened']:.3f})")
    for row in figures["budgets"]:
        peer = row.get("lightly", {}).get("knn_top1_k200")
        print(f"{row['minutes']:7g}m {row['easyssl']['knn_top1_k200']:9.3f} {row['easyssl']['knn_top1_k200_unwhitened']:11.3f} "
              f"{peer if peer is None else format(peer, '9.3f')!s:>9s}")
    if args.png:
        print("curve:", plot_curve(figures, args.png))
    return figures


if __name__ == "__main__":
    main()
