"""Diverse subset: pick a few images that cover the whole collection (a "coreset").

    python examples/diverse_subset.py
    python examples/diverse_subset.py --input-dir my/images/ -n 100

Useful to choose what to label first, or to shrink a huge, redundant collection. Each
pick is the image farthest from those already picked (k-center greedy). Writes the chosen
filenames to chosen.txt. The same from the command line:

    easyssl select --embeddings embeddings.csv -n 100 --output chosen.txt
"""

import argparse
import collections
import os
import tempfile

import numpy as np

from easyssl import embed_images, make_demo_dataset, select_diverse, train_embedding_model


def coverage_radius(embeddings, chosen):
    """The largest cosine distance from any image to its closest chosen image (lower = better coverage)."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    return float((1 - unit @ unit[chosen].T).min(axis=1).max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-dir", help="folder of images (default: the built-in demo set of shapes)")
    parser.add_argument("--output-dir", default="easyssl_examples/diverse_subset")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("-n", type=int, default=10, help="number of images to pick (default: 10)")
    parser.add_argument("--fast", action="store_true", help="a tiny model and two training steps (for tests)")
    args = parser.parse_args(argv)
    input_dir = args.input_dir or make_demo_dataset(os.path.join(tempfile.gettempdir(), "easyssl_demo"), images_per_class=40, image_size=32)

    settings = {"trainer": {"max_epochs": args.epochs}}
    if args.fast:
        settings = {"model": {"width": 0.25}, "loader": {"batch_size": 16, "num_workers": 0}, "trainer": {"max_steps": 2, "progress_bar": False}}
    checkpoint = train_embedding_model(input_dir=input_dir, checkpoint_dir=os.path.join(args.output_dir, "run"), **settings)
    embeddings, labels, filenames = embed_images(input_dir=input_dir, checkpoint=checkpoint, progress_bar=False, num_workers=0)

    # The selection: n row indices, in the order they were picked.
    chosen = select_diverse(embeddings, args.n)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "chosen.txt"), "w") as f:
        f.writelines(filenames[i] + "\n" for i in chosen)
    print(f"chose {len(chosen)} of {len(filenames)} images: {os.path.join(args.output_dir, 'chosen.txt')}")

    # Compare with a random subset of the same size.
    random_pick = np.random.default_rng(0).choice(len(filenames), size=len(chosen), replace=False)
    print(f"farthest image from the subset (cosine distance): diverse {coverage_radius(embeddings, chosen):.3f}, "
          f"random {coverage_radius(embeddings, random_pick):.3f}")
    if len(set(labels)) > 1:  # with class folders: which classes did each subset get?
        print("classes in the diverse subset:", dict(collections.Counter(filenames[i].split("/")[0] for i in chosen)))
        print("classes in the random subset: ", dict(collections.Counter(filenames[i].split("/")[0] for i in random_pick)))


if __name__ == "__main__":
    main()
