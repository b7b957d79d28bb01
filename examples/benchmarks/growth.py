"""Benchmark: training and embedding speed and peak memory as the folder grows (1k, 10k, 60k images).

Each size runs in a fresh process (so peak memory is that run's own): one epoch of
training with the default pipeline at equal settings (ResNet-18 width 0.5, input 32,
batch 128), then embedding the whole folder. Time should grow linearly with the number of
images (constant images/s) and memory should stay bounded (the decoded-image cache is
capped, see easyssl.data.cache).

With ``--peer`` (``pip install lightly``) LightlySSL's three-line API runs the same epoch
at the same settings, in its own fresh process, on each size (up to ``--peer-max-size``
if given: its 60k run takes about 8 minutes on 2 CPU cores).

    python examples/benchmarks/growth.py                 # 1000 10000 60000
    python examples/benchmarks/growth.py --sizes 1000 10000
    python examples/benchmarks/growth.py --peer          # also LightlySSL
    python examples/benchmarks/growth.py --peer --peer-max-size 10000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import machine  # noqa: E402
from fashion_mnist_data import CLASSES, load_split  # noqa: E402

CHILD = r"""
import json, resource, sys, tempfile, time
from easyssl import embed_images, train_embedding_model
folder, width, batch = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
start = time.perf_counter()
ckpt = train_embedding_model(folder, model={"backbone": "resnet-18", "width": width}, collate={"input_size": 32, "train_crop_size": 32, "min_scale": 0.08},  # the peer's views: equal work
                             loader={"batch_size": batch}, trainer={"max_epochs": 1, "progress_bar": False},
                             checkpoint_dir=tempfile.mkdtemp())
train = time.perf_counter() - start
start = time.perf_counter()
emb, labels, names = embed_images(folder, ckpt, progress_bar=False)
embed = time.perf_counter() - start
print(json.dumps({"train_seconds": train, "embed_seconds": embed, "n": len(names),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PEER_CHILD = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[4])
from common import peer_train_and_embed
folder, width, batch = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
run = peer_train_and_embed(folder, [folder], epochs=1, batch_size=batch, input_size=32, width=width)
print(json.dumps({"train_seconds": run["train_seconds"], "embed_seconds": run["embed_seconds"], "n": len(run["embeddings"][0][2]),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def build(out: str, n: int) -> str:
    from PIL import Image

    folder = os.path.join(out, f"n{n}")
    marker = os.path.join(folder, ".complete")
    if os.path.exists(marker):
        return folder
    images, labels = load_split("train")
    for name in CLASSES:
        os.makedirs(os.path.join(folder, name), exist_ok=True)
    for i in range(n):
        Image.fromarray(images[i], mode="L").save(os.path.join(folder, CLASSES[labels[i]], f"{i:05d}.png"))
    open(marker, "w").close()
    return folder


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="bench_data/growth")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 60000])
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--peer", action="store_true", help="also run LightlySSL (pip install lightly) on each size")
    parser.add_argument("--peer-max-size", type=int, default=None, help="largest size the peer runs on (default: all)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"one epoch, ResNet-18 width {args.width}, input 32 px, batch {args.batch_size}; peak RSS of the main process")
    rows = []
    print(f"{'library':>8s} {'images':>8s} {'train s':>9s} {'train img/s':>12s} {'embed s':>8s} {'embed img/s':>12s} {'peak RSS MB':>12s}")
    for n in args.sizes:
        folder = build(args.data, n)
        runs = [("easyssl", CHILD)] + ([("lightly", PEER_CHILD)] if args.peer and n <= (args.peer_max_size or n) else [])
        for library, code in runs:
            out = subprocess.run([sys.executable, "-c", code, folder, str(args.width), str(args.batch_size), HERE],
                                 capture_output=True, text=True)
            if out.returncode:
                raise RuntimeError(f"{library} on {n} images failed:\n{out.stderr[-3000:]}")
            row = json.loads(out.stdout.strip().splitlines()[-1])
            trained = (n // args.batch_size) * args.batch_size
            row.update(library=library, train_images_per_second=trained / row["train_seconds"],
                       embed_images_per_second=n / row["embed_seconds"])
            rows.append(row)
            print(f"{library:>8s} {n:8d} {row['train_seconds']:9.1f} {row['train_images_per_second']:12.1f} "
                  f"{row['embed_seconds']:8.1f} {row['embed_images_per_second']:12.1f} {row['peak_rss_mb']:12.0f}", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine(), "rows": rows}, handle, indent=2)
    return rows


if __name__ == "__main__":
    main()
