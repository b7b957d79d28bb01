"""Near-duplicates: find groups of images that are (almost) the same picture.

    python examples/find_duplicates.py
    python examples/find_duplicates.py --input-dir my/images/ --threshold 0.995

Without --input-dir, the demo set is written with two planted duplicates: an exact copy
and a re-saved JPEG of the same image (the demo's striped images of the same colour and
spacing are near-duplicates too: they differ by a small shift). Two images are
near-duplicates when the cosine similarity of their embeddings is at least --threshold.
The same from the command line:

    easyssl duplicates --embeddings embeddings.csv --threshold 0.999 --output groups.txt
"""

import argparse
import os
import shutil

import numpy as np
from PIL import Image

from easyssl import embed_images, find_duplicates, make_demo_dataset, nearest_neighbors, train_embedding_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-dir", help="folder of images (default: the demo set with two planted duplicates)")
    parser.add_argument("--output-dir", default="easyssl_examples/find_duplicates")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threshold", type=float, default=0.999, help="minimum cosine similarity (default: 0.999)")
    parser.add_argument("--fast", action="store_true", help="a tiny model and two training steps (for tests)")
    args = parser.parse_args(argv)

    input_dir = args.input_dir
    if input_dir is None:
        input_dir = make_demo_dataset(os.path.join(args.output_dir, "images"), images_per_class=8 if args.fast else 40, image_size=32)
        original = os.path.join(input_dir, "circle", "circle_0003.png")
        shutil.copy(original, os.path.join(input_dir, "circle", "circle_0003_copy.png"))  # exact copy
        Image.open(original).save(os.path.join(input_dir, "circle", "circle_0003_resaved.jpg"), quality=90)  # re-encoded
        print(f"planted two duplicates of circle/circle_0003.png in {input_dir}")

    settings = {"trainer": {"max_epochs": args.epochs}}
    if args.fast:
        settings = {"model": {"width": 0.25}, "loader": {"batch_size": 16, "num_workers": 0}, "trainer": {"max_steps": 2, "progress_bar": False}}
    checkpoint = train_embedding_model(input_dir=input_dir, checkpoint_dir=os.path.join(args.output_dir, "run"), **settings)
    embeddings, _, filenames = embed_images(input_dir=input_dir, checkpoint=checkpoint, progress_bar=False, num_workers=0)

    # How similar are images to their nearest neighbour, typically? Duplicates score
    # above that (near 1.0); choose the threshold between the two. find_duplicates compares
    # embeddings after subtracting their mean, so measure the same way.
    centred = embeddings - embeddings.mean(axis=0, keepdims=True)
    _, nearest = nearest_neighbors(centred, None, k=1, exclude_self=True)
    print(f"nearest-neighbour similarity: median {np.median(nearest):.4f}, max {nearest.max():.4f}")

    # Each group is a list of row indices; every group has at least two images.
    groups = find_duplicates(embeddings, threshold=args.threshold)
    print(f"{len(groups)} group(s) of near-duplicates at cosine similarity >= {args.threshold}")
    for group in groups[:10]:
        print("  " + "  ".join(filenames[i] for i in group))

    # Keep the first image of each group; these are the files you could delete.
    redundant = [filenames[i] for group in groups for i in group[1:]]
    print(f"{len(redundant)} redundant image(s) out of {len(filenames)}")


if __name__ == "__main__":
    main()
