"""Make the README's pictures: train on 600 Fashion-MNIST images, then plot with the CLI.

    python docs/make_pictures.py [--mnist-dir /usr/share/datasets/fashion-mnist] [--work-dir /tmp/easyssl_pictures]

Writes docs/images/embeddings_map.png (UMAP when umap-learn is installed: pip install "easyssl[maps]"),
docs/images/embeddings_thumbnails.png and docs/images/nearest_neighbors.png. Takes a few
minutes on a laptop CPU. The Fashion-MNIST files (t10k-*-idx*-ubyte.gz) are read from
--mnist-dir; nothing is downloaded.
"""

import argparse
import gzip
import os

import numpy as np
from PIL import Image

from easyssl.cli import main as easyssl

CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def write_folder(mnist_dir: str, output_dir: str, per_class: int) -> str:
    """The first ``per_class`` test images of each class, as PNGs in one folder per class."""
    with gzip.open(os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(mnist_dir, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    for c, name in enumerate(CLASSES):
        os.makedirs(os.path.join(output_dir, name), exist_ok=True)
        for j, i in enumerate(np.flatnonzero(labels == c)[:per_class]):
            Image.fromarray(images[i]).save(os.path.join(output_dir, name, f"{name}_{j:03d}.png"))
    return output_dir


def run(argv):
    print("$ easyssl " + " ".join(argv), flush=True)
    if easyssl(argv) != 0:
        raise SystemExit(f"easyssl {argv[0]} failed")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--work-dir", default="/tmp/easyssl_pictures")
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--reuse", action="store_true", help="reuse the embeddings of an earlier run in --work-dir")
    args = parser.parse_args(argv)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")
    images = write_folder(args.mnist_dir, os.path.join(args.work_dir, "fashion-mnist"), args.per_class)
    embeddings = os.path.join(args.work_dir, "embeddings.csv")
    if not (args.reuse and os.path.exists(embeddings)):
        run(["run", images, "--epochs", str(args.epochs), "--output", embeddings, "--checkpoint-dir",
             os.path.join(args.work_dir, "run"), "--quiet"])
    run(["plot", "--embeddings", embeddings, "--output", os.path.join(out, "embeddings_map.png"), "--size", "640",
         "--title", f"Fashion-MNIST ({10 * args.per_class} images): SimCLR embeddings"])
    run(["plot", "--embeddings", embeddings, "--output", os.path.join(out, "embeddings_thumbnails.png"), "--size", "640",
         "--title", f"Fashion-MNIST ({10 * args.per_class} images): the same map, as images", "--thumbnails",
         "--image-dir", images])
    queries = [f"{name}/{name}_000.png" for name in ("trouser", "sandal", "bag", "dress", "shirt")]
    run(["similar", "--embeddings", embeddings, *[x for q in queries for x in ("--query", q)], "-k", "8",
         "--image-dir", images, "--thumb-size", "80", "--plot", os.path.join(out, "nearest_neighbors.png")])


if __name__ == "__main__":
    main()
