"""Transfer to detection: the pretrained ResNet as the backbone of torchvision's Faster R-CNN.

    python examples/detection_backbone.py
    python examples/detection_backbone.py --input-dir my/photos/ --epochs 100

Builds Faster R-CNN with a feature pyramid (FPN) on the self-supervised ResNet-18, runs
one training step on a random image with one box (to show the call) and one prediction.
Nothing is downloaded (no torchvision weights). For real detection work, train easyssl on
photos larger than 64 px so the model gets the standard stem, as torchvision's detectors expect.
"""

import argparse
import os
import tempfile

import torch
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops.misc import FrozenBatchNorm2d

from easyssl import make_demo_dataset, torchvision_model, train_embedding_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-dir", help="folder of images (default: the built-in demo set of shapes)")
    parser.add_argument("--output-dir", default="easyssl_examples/detection_backbone")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=256, help="detector input size in pixels (default: 256)")
    parser.add_argument("--fast", action="store_true", help="two training steps and a small image (for tests)")
    args = parser.parse_args(argv)
    input_dir = args.input_dir or make_demo_dataset(os.path.join(tempfile.gettempdir(), "easyssl_demo"), images_per_class=40, image_size=32)
    torch.manual_seed(0)

    # 1. Self-supervised training of a width-1 ResNet-18 (torchvision's own shape).
    settings = {"model": {"backbone": "resnet-18", "width": 1.0}, "trainer": {"max_epochs": args.epochs}}
    if args.fast:
        settings["loader"] = {"batch_size": 16, "num_workers": 0}
        settings["trainer"] = {"max_steps": 2, "progress_bar": False}
    checkpoint = train_embedding_model(input_dir=input_dir, checkpoint_dir=os.path.join(args.output_dir, "run"), **settings)

    # 2. The torchvision ResNet-18 with the pretrained weights. Detectors train with small
    #    batches, so freeze batch-norm as torchvision's detection backbones do.
    #    (By hand: torchvision.models.resnet18(norm_layer=FrozenBatchNorm2d).load_state_dict(
    #     torch.load(path)) with a file from easyssl.export_backbone.)
    resnet = torchvision_model(checkpoint, norm_layer=FrozenBatchNorm2d)

    # 3. Take the outputs of the four stages and add a feature pyramid (FPN).
    backbone = BackboneWithFPN(
        resnet,
        return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        in_channels_list=[64, 128, 256, 512],  # ResNet-18/34; ResNet-50 and deeper: [256, 512, 1024, 2048]
        out_channels=256,
    )
    # Optionally freeze the first layers, like torchvision's trainable_layers=3:
    for name, parameter in backbone.body.named_parameters():
        if not name.startswith(("layer2", "layer3", "layer4")):
            parameter.requires_grad_(False)

    # 4. Faster R-CNN on that backbone: 2 classes = background + one object class.
    size = 128 if args.fast else args.image_size
    model = FasterRCNN(backbone, num_classes=2, min_size=size, max_size=size)

    # 5. One training step on a random image with one box (x1, y1, x2, y2).
    image = torch.rand(3, size, size)
    target = {"boxes": torch.tensor([[size * 0.2, size * 0.3, size * 0.6, size * 0.8]]), "labels": torch.tensor([1])}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    model.train()
    losses = model([image], [target])  # a dict of the detector's losses
    loss = sum(losses.values())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print("training losses: " + ", ".join(f"{k} {v.item():.3f}" for k, v in losses.items()))

    # 6. Prediction: boxes, labels and scores for each image.
    model.eval()
    with torch.no_grad():
        prediction = model([image])[0]
    print(f"detector output: {len(prediction['boxes'])} boxes for a {size}x{size} image (untrained detector)")


if __name__ == "__main__":
    main()
