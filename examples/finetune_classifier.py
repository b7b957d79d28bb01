"""Transfer to classification: export the pretrained backbone to torchvision and fine-tune a classifier.

    python examples/finetune_classifier.py
    python examples/finetune_classifier.py --input-dir my/labelled/images/ --full

Self-supervised training (no labels) on the whole folder, then a classifier trained with
the labels of half the images (the class sub-folders) and tested on the other half. By
default only the new last layer is trained (a "linear probe"); --full fine-tunes all layers.
The same export from the command line:

    easyssl export --checkpoint run/last.ckpt --output backbone.pth
"""

import argparse
import os
import tempfile

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

from easyssl import export_backbone, load_model, make_demo_dataset, train_embedding_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-dir", help="folder with class sub-folders (default: the built-in demo set)")
    parser.add_argument("--output-dir", default="easyssl_examples/finetune_classifier")
    parser.add_argument("--epochs", type=int, default=10, help="self-supervised epochs (default: 10)")
    parser.add_argument("--finetune-epochs", type=int, default=10, help="classifier epochs (default: 10)")
    parser.add_argument("--full", action="store_true", help="fine-tune every layer, not only the classifier")
    parser.add_argument("--fast", action="store_true", help="two training steps and one classifier epoch (for tests)")
    args = parser.parse_args(argv)
    input_dir = args.input_dir or make_demo_dataset(os.path.join(tempfile.gettempdir(), "easyssl_demo"), images_per_class=40, image_size=32)
    torch.manual_seed(0)

    # 1. Self-supervised training. torchvision only has width-1 ResNets, so ask for width 1
    #    (on a CPU easyssl would otherwise pick a half-width model for small images).
    settings = {"model": {"backbone": "resnet-18", "width": 1.0}, "trainer": {"max_epochs": args.epochs}}
    if args.fast:
        settings["loader"] = {"batch_size": 16, "num_workers": 0}
        settings["trainer"] = {"max_steps": 2, "progress_bar": False}
    checkpoint = train_embedding_model(input_dir=input_dir, checkpoint_dir=os.path.join(args.output_dir, "run"), **settings)

    # 2. Export the backbone's weights as a torchvision state_dict.
    weights = export_backbone(checkpoint, os.path.join(args.output_dir, "backbone.pth"))
    _, config = load_model(checkpoint)  # the training settings: image size and stem
    input_size = config["collate"]["input_size"]

    # 3. A plain torchvision ResNet-18 with those weights. Models trained on small images
    #    (<= 64 px) use a 3x3 first convolution and no max-pool: swap the stem first.
    #    (easyssl.torchvision_model(checkpoint, num_classes=...) does steps 2-4 in one call.)
    model = torchvision.models.resnet18()
    if config["model"]["small_input"]:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    model.load_state_dict(torch.load(weights))

    # 4. The labelled data: torchvision's ImageFolder reads the class sub-folders.
    normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])  # as in training
    train_tf = transforms.Compose([transforms.Resize(input_size), transforms.CenterCrop(input_size),
                                   transforms.RandomHorizontalFlip(), transforms.ToTensor(), normalize])
    test_tf = transforms.Compose([transforms.Resize(input_size), transforms.CenterCrop(input_size), transforms.ToTensor(), normalize])
    train_all = torchvision.datasets.ImageFolder(input_dir, transform=train_tf)
    test_all = torchvision.datasets.ImageFolder(input_dir, transform=test_tf)
    order = torch.randperm(len(train_all)).tolist()
    train_set, test_set = Subset(train_all, order[::2]), Subset(test_all, order[1::2])
    num_classes = len(train_all.classes)

    # 5. A new classifier on top (the exported fc layer is untrained), and what to train.
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    if not args.full:
        for p in model.parameters():
            p.requires_grad = False
        for p in model.fc.parameters():
            p.requires_grad = True
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4 if args.full else 1e-3)
    loss_fn = nn.CrossEntropyLoss()

    # 6. Train. A linear probe keeps the backbone in eval mode (its batch-norm statistics fixed).
    loader = DataLoader(train_set, batch_size=16 if args.fast else 32, shuffle=True)
    for epoch in range(1 if args.fast else args.finetune_epochs):
        model.train(args.full)
        for images, targets in loader:
            loss = loss_fn(model(images), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}")

    # 7. Test on the images the classifier has not seen.
    model.eval()
    correct = 0
    with torch.no_grad():
        for images, targets in DataLoader(test_set, batch_size=64):
            correct += int((model(images).argmax(dim=1) == targets).sum())
    print(f"test accuracy: {correct / len(test_set):.3f} ({len(test_set)} images, {num_classes} classes, chance {1 / num_classes:.3f})")
    torch.save(model.state_dict(), os.path.join(args.output_dir, "classifier.pth"))


if __name__ == "__main__":
    main()
