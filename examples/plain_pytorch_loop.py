"""The pieces by hand: dataset, view transform, collate, backbone, head, loss and optimiser
in a plain PyTorch training loop (SimCLR), then embeddings and a kNN quality check.

    python examples/plain_pytorch_loop.py
    python examples/plain_pytorch_loop.py --input-dir my/images/ --epochs 20 --input-size 64

Every piece is an ordinary PyTorch object: swap any of them for your own.
"""

import argparse
import os
import tempfile

import numpy as np
import torch
from torch.utils.data import DataLoader

from easyssl import EvalTransform, MultiViewCollate, SimCLRTransform, SSLDataset, backbone, make_demo_dataset, nearest_neighbors
from easyssl.loss import NTXentLoss
from easyssl.models import SimCLR


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-dir", help="folder of images (default: the built-in demo set of shapes)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--input-size", type=int, default=32, help="training image size in pixels (default: 32)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--fast", action="store_true", help="a tiny model and two steps (for tests)")
    args = parser.parse_args(argv)
    input_dir = args.input_dir or make_demo_dataset(os.path.join(tempfile.gettempdir(), "easyssl_demo"), images_per_class=40, image_size=32)
    torch.manual_seed(0)

    # 1. Dataset: every image of the folder; the transform makes two random views of each.
    dataset = SSLDataset(input_dir, transform=SimCLRTransform(input_size=args.input_size))

    # 2. Loader: MultiViewCollate batches items into ([view0_batch, view1_batch], targets, filenames).
    batch_size = min(16 if args.fast else args.batch_size, len(dataset))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=MultiViewCollate())

    # 3. Model: a ResNet-18 backbone (small-image stem for inputs <= 64 px) and SimCLR's projection head.
    net = backbone("resnet-18", width=0.25 if args.fast else 0.5, input_size=args.input_size)
    model = SimCLR(net, out_dim=128)

    # 4. Loss and optimiser.
    criterion = NTXentLoss(temperature=0.2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.06 * batch_size / 256, momentum=0.9, weight_decay=5e-4)

    # 5. The loop. Labels (targets) are never used.
    steps, max_steps = 0, 2 if args.fast else None
    model.train()
    for epoch in range(args.epochs):
        losses = []
        for (view0, view1), _targets, _filenames in loader:
            loss = criterion(model(view0), model(view1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            steps += 1
            if max_steps and steps >= max_steps:
                break
        print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f}")
        if max_steps and steps >= max_steps:
            break

    # 6. Embeddings: the backbone's features of each image, with a deterministic transform.
    eval_set = SSLDataset(input_dir, transform=EvalTransform(input_size=args.input_size))
    eval_loader = DataLoader(eval_set, batch_size=256, shuffle=False, collate_fn=MultiViewCollate())
    model.eval()
    chunks, labels = [], []
    with torch.no_grad():
        for images, targets, _filenames in eval_loader:
            chunks.append(model.embed(images))  # = model.backbone(images)
            labels.append(targets)
    embeddings, labels = torch.cat(chunks).numpy(), torch.cat(labels).numpy()
    print(f"embeddings: {embeddings.shape}")

    # 7. Quality check with the folder's classes: each image's nearest neighbour's class.
    if len(set(labels.tolist())) > 1:
        neighbour, _ = nearest_neighbors(embeddings, None, k=1, exclude_self=True)
        print(f"nearest-neighbour accuracy: {np.mean(labels[neighbour[:, 0]] == labels):.3f}")
    # To use this backbone elsewhere: torch.save(model.backbone.state_dict(), "backbone.pth"),
    # or easyssl.export_backbone(model, "backbone.pth") for torchvision (width-1 ResNets).


if __name__ == "__main__":
    main()
