"""Active learning: label a few images, train a classifier, let it ask for the next labels.

    python examples/active_learning.py
    python examples/active_learning.py --input-dir my/labelled/images/ --rounds 5 --per-round 20

The folder's class sub-folders play the annotator: an image's label is "revealed" only
once it is picked. Each round trains a linear classifier on the labelled embeddings,
predicts class probabilities for every image, and picks the next images to label with
select_for_labeling (uncertain images, spread over the collection). The same pick from the
command line, given the classifier's probabilities saved as probs.npy:

    easyssl label-next --embeddings embeddings.csv --predictions probs.npy -n 20 --output to_label.txt
"""

import argparse
import os
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

from easyssl import embed_images, make_demo_dataset, select_diverse, select_for_labeling, train_embedding_model


def train_linear_classifier(features, labels, num_classes, steps=300):
    """Logistic regression on the embeddings (a "linear probe")."""
    classifier = torch.nn.Linear(features.shape[1], num_classes)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=0.01, weight_decay=1e-4)
    for _ in range(steps):
        loss = F.cross_entropy(classifier(features), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return classifier


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-dir", help="folder with class sub-folders (default: the built-in demo set)")
    parser.add_argument("--output-dir", default="easyssl_examples/active_learning")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--start", type=int, default=10, help="images labelled before the first round (default: 10)")
    parser.add_argument("--per-round", type=int, default=10, help="images labelled per round (default: 10)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--diversity", type=float, default=0.5, help="0: most uncertain only, 1: coverage only")
    parser.add_argument("--fast", action="store_true", help="a tiny model and two training steps (for tests)")
    args = parser.parse_args(argv)
    input_dir = args.input_dir or make_demo_dataset(os.path.join(tempfile.gettempdir(), "easyssl_demo"), images_per_class=40, image_size=32)

    settings = {"trainer": {"max_epochs": args.epochs}}
    if args.fast:
        settings = {"model": {"width": 0.25}, "loader": {"batch_size": 16, "num_workers": 0}, "trainer": {"max_steps": 2, "progress_bar": False}}
    checkpoint = train_embedding_model(input_dir=input_dir, checkpoint_dir=os.path.join(args.output_dir, "run"), **settings)
    embeddings, labels, _ = embed_images(input_dir=input_dir, checkpoint=checkpoint, progress_bar=False, num_workers=0)
    if len(set(labels)) < 2:
        raise SystemExit("this example needs a folder with class sub-folders, to play the annotator")

    features = torch.from_numpy(embeddings)
    features = (features - features.mean(dim=0)) / (features.std(dim=0) + 1e-6)  # standardise
    truth = torch.tensor(labels)
    num_classes = int(truth.max()) + 1
    torch.manual_seed(0)

    # Round 0: no classifier yet, so label a diverse set of images.
    labelled = select_diverse(embeddings, args.start).tolist()
    for round_number in range(1, args.rounds + 1):
        classifier = train_linear_classifier(features[labelled], truth[labelled], num_classes, steps=50 if args.fast else 300)
        with torch.no_grad():
            probabilities = torch.softmax(classifier(features), dim=1).numpy()
        rest = np.setdiff1d(np.arange(len(labels)), labelled)
        accuracy = float((probabilities[rest].argmax(axis=1) == truth[rest].numpy()).mean())
        print(f"round {round_number}: {len(labelled)} labelled, accuracy on the other {len(rest)} images: {accuracy:.3f}")
        if round_number == args.rounds or len(rest) == 0:
            break
        # Ask for the next labels: uncertain images, spread out, never already labelled.
        new = select_for_labeling(embeddings, probabilities, min(args.per_round, len(rest)),
                                  diversity=args.diversity, labeled_indices=labelled)
        labelled += new.tolist()  # the annotator labels them (here: the folder names)
    np.save(os.path.join(args.output_dir, "probs.npy"), probabilities)


if __name__ == "__main__":
    main()
