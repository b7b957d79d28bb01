"""Near-duplicates: find groups of images that are (almost) the same picture.

    python examples/find_duplicates.py
    python examples/find_duplicates.py --input-dir my/images/ --ratio 6

Without --input-dir, the demo set is written with two planted duplicates: an exact copy
and a re-saved JPEG of the same image. Two images are near-duplicates when they are
--ratio times closer to each other than to their 12th nearest neighbour (and at least
--threshold similar); each image is also compared as 18 crops and at 60 % resolution, so
cropped and resized copies are found; and the files' pixels must agree, once any crop is
undone, so look-alikes (two circles of one colour) are not. The same from the command line:

    easyssl duplicates --input-dir my/images/ --checkpoint runs/a/last.ckpt --output groups.txt
"""

import argparse
import os
import shutil

from PIL import Image

from easyssl import embed_images, find_duplicate_images, find_duplicates, make_demo_dataset, train_embedding_model
from easyssl.tools.duplicates import DUPLICATE_RATIO, DUPLICATE_THRESHOLD


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-dir", help="folder of images (default: the demo set with two planted duplicates)")
    parser.add_argument("--output-dir", default="easyssl_examples/find_duplicates")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threshold", type=float, default=DUPLICATE_THRESHOLD,
                        help=f"minimum cosine similarity (default: {DUPLICATE_THRESHOLD})")
    parser.add_argument("--ratio", type=float, default=DUPLICATE_RATIO, help=f"the ratio test's factor (default: {DUPLICATE_RATIO:g})")
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

    # Each image is embedded whole, as 18 crops and at 60 % resolution; two images are linked when one is far closer to the other
    # (whole or cropped) than to anything else and their pixels agree. Groups are lists of file names, at least two in each.
    groups = find_duplicate_images(input_dir, checkpoint, threshold=args.threshold, ratio=args.ratio,
                                   progress_bar=False, num_workers=0)
    print(f"{len(groups)} group(s) of near-duplicates")
    for group in groups[:10]:
        print("  " + "  ".join(group))

    # Keep the first image of each group; these are the files you could delete.
    redundant = [name for group in groups for name in group[1:]]
    print(f"{len(redundant)} redundant image(s)")

    # From embeddings you already have (no crops: cropped copies are mostly missed), the same rule:
    embeddings, _, filenames = embed_images(input_dir=input_dir, checkpoint=checkpoint, progress_bar=False, num_workers=0)
    print(f"from the embeddings alone: {len(find_duplicates(embeddings, threshold=args.threshold, ratio=args.ratio))} group(s)")


if __name__ == "__main__":
    main()
