"""Quickstart: turn a folder of images into embeddings in three lines.

    python examples/quickstart.py                         # the built-in demo set
    python examples/quickstart.py --input-dir my/images/ --epochs 50

Training uses no labels. If the folder has class sub-folders, their names are returned
as labels, and we use them only to check the embeddings' quality at the end.
"""

import argparse
import os
import tempfile

import numpy as np

from easyssl import embed_images, make_demo_dataset, nearest_neighbors, save_embeddings, train_embedding_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-dir", help="folder of images (default: the built-in demo set of shapes)")
    parser.add_argument("--output-dir", default="easyssl_examples/quickstart", help="where to write the checkpoint and embeddings")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default: 10)")
    parser.add_argument("--fast", action="store_true", help="a tiny model and two training steps (for tests)")
    args = parser.parse_args(argv)

    # No folder given? Draw the demo set: 5 classes of simple shapes, 40 images each.
    input_dir = args.input_dir or make_demo_dataset(os.path.join(tempfile.gettempdir(), "easyssl_demo"), images_per_class=40, image_size=32)

    # Everything has a default chosen from the images and the hardware; --fast shrinks it.
    settings = {"trainer": {"max_epochs": args.epochs}}
    if args.fast:
        settings = {"model": {"width": 0.25}, "loader": {"batch_size": 16, "num_workers": 0},
                    "trainer": {"max_steps": 2, "progress_bar": False}}

    # The three lines: train, embed, save.
    checkpoint = train_embedding_model(input_dir=input_dir, checkpoint_dir=os.path.join(args.output_dir, "run"), **settings)
    embeddings, labels, filenames = embed_images(input_dir=input_dir, checkpoint=checkpoint, progress_bar=not args.fast,
                                                 num_workers=0 if args.fast else None)
    save_embeddings(os.path.join(args.output_dir, "embeddings.csv"), embeddings, labels, filenames)

    print(f"checkpoint: {checkpoint}")
    print(f"embedded {len(filenames)} images into {embeddings.shape[1]}-dimensional vectors")

    # A quick quality check when the folder has classes: does each image's nearest
    # neighbour (itself excluded) have the same class? Chance is 1 / number of classes.
    labels = np.asarray(labels)
    if len(set(labels.tolist())) > 1:
        neighbour, _ = nearest_neighbors(embeddings, None, k=1, exclude_self=True)
        accuracy = float(np.mean(labels[neighbour[:, 0]] == labels))
        print(f"nearest-neighbour accuracy: {accuracy:.3f} (chance {1 / len(set(labels.tolist())):.3f})")


if __name__ == "__main__":
    main()
