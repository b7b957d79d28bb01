"""Similarity search: find the images that look most like a query image, and draw them.

    python examples/similarity_search.py
    python examples/similarity_search.py --input-dir my/images/ --epochs 50 --queries 5 -k 8

Writes neighbors.png: one row per query (framed in red), then its nearest images with
their cosine similarity. The same from the command line:

    easyssl similar --embeddings embeddings.csv --query cats/img1.jpg -k 8 --image-dir my/images/ --plot neighbors.png
"""

import argparse
import os
import tempfile

from easyssl import embed_images, make_demo_dataset, nearest_neighbors, plot_nearest_neighbors, train_embedding_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-dir", help="folder of images (default: the built-in demo set of shapes)")
    parser.add_argument("--output-dir", default="easyssl_examples/similarity_search")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--queries", type=int, default=4, help="number of query images (default: 4)")
    parser.add_argument("-k", type=int, default=6, help="neighbours per query (default: 6)")
    parser.add_argument("--fast", action="store_true", help="a tiny model and two training steps (for tests)")
    args = parser.parse_args(argv)
    input_dir = args.input_dir or make_demo_dataset(os.path.join(tempfile.gettempdir(), "easyssl_demo"), images_per_class=40, image_size=32)

    # Train and embed (see quickstart.py).
    settings = {"trainer": {"max_epochs": args.epochs}}
    if args.fast:
        settings = {"model": {"width": 0.25}, "loader": {"batch_size": 16, "num_workers": 0}, "trainer": {"max_steps": 2, "progress_bar": False}}
    checkpoint = train_embedding_model(input_dir=input_dir, checkpoint_dir=os.path.join(args.output_dir, "run"), **settings)
    embeddings, labels, filenames = embed_images(input_dir=input_dir, checkpoint=checkpoint, progress_bar=False, num_workers=0)

    # Queries: images spread over the collection. Searching the collection with itself,
    # exclude_self=True drops each query's own row from its results.
    step = max(1, len(filenames) // args.queries)
    query_rows = list(range(0, len(filenames), step))[: args.queries]
    indices, similarities = nearest_neighbors(embeddings, None, k=args.k, exclude_self=True)
    for row in query_rows:
        print(f"query: {filenames[row]}")
        for i, s in zip(indices[row], similarities[row]):
            print(f"   {s:.3f}  {filenames[i]}")

    # To search with new images, embed them with the same checkpoint and pass them as queries:
    #   new_embeddings, _, _ = embed_images("new/images/", checkpoint)
    #   indices, similarities = nearest_neighbors(embeddings, new_embeddings, k=10)

    # The picture: images are read from their files.
    path = plot_nearest_neighbors(
        [os.path.join(input_dir, filenames[row]) for row in query_rows],
        [[os.path.join(input_dir, filenames[i]) for i in indices[row]] for row in query_rows],
        os.path.join(args.output_dir, "neighbors.png"),
        similarities=similarities[query_rows],
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
