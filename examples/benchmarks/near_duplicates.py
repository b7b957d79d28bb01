"""Benchmark: how well cosine similarity tells degraded copies from look-alikes, raw (centred) vs whitened.

Takes every 6th Fashion-MNIST test image (300), adds a heavily degraded copy of each
(down-scaled 28 -> 24 -> 28 px and saved as JPEG quality 60), embeds all 600 with a
checkpoint, and reports for each threshold the share of copies found (cosine with their
original >= threshold) and the share of images with a non-copy above it (false matches).
The figures behind ``find_duplicates``' default threshold.

    python examples/benchmarks/time_to_accuracy.py     # prints its checkpoint; any easyssl checkpoint works
    python examples/benchmarks/near_duplicates.py /path/to/last.ckpt
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fashion_mnist_data import build_folder  # noqa: E402

from easyssl import embed_images  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--data", default="bench_data/fashion_mnist")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.8, 0.85, 0.9, 0.95])
    args = parser.parse_args(argv)
    _, test_dir = build_folder(args.data, 10_000, 2_000)
    files = sorted(os.path.join(d, f) for d, _, names in os.walk(test_dir) for f in names if f.endswith(".png"))[::6][:300]
    results: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        for i, path in enumerate(files):
            image = Image.open(path).convert("L")
            image.save(os.path.join(folder, f"a{i:04d}.png"))
            buffer = io.BytesIO()
            image.resize((24, 24)).resize(image.size).save(buffer, "JPEG", quality=60)
            buffer.seek(0)
            Image.open(buffer).save(os.path.join(folder, f"b{i:04d}.png"))
        for whiten in (False, True):
            emb, _, _ = embed_images(folder, args.checkpoint, progress_bar=False, whiten=whiten)
            emb = emb - emb.mean(0)  # as find_duplicates(center=True) does
            emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
            n = len(files)
            originals, copies = emb[:n], emb[n:]
            pair = (originals * copies).sum(1)
            others = originals @ originals.T
            np.fill_diagonal(others, -1.0)
            nearest_other = others.max(1)
            name = "whitened" if whiten else "raw, centred"
            row = {"copy_median": float(np.median(pair)), "copy_ranked_first": float((pair > nearest_other).mean())}
            for t in args.thresholds:
                row[f"found@{t}"] = float((pair >= t).mean())
                row[f"false@{t}"] = float((nearest_other >= t).mean())
            results[name] = row
            print(f"{name:14s} copy cosine median {row['copy_median']:.3f}, copy above every look-alike {row['copy_ranked_first']:.3f}")
            for t in args.thresholds:
                print(f"   threshold {t:.2f}: copies found {row[f'found@{t}']:.3f}, images with a non-copy above {row[f'false@{t}']:.3f}")
    return results


if __name__ == "__main__":
    main()
