"""``easyssl export``: the pretrained backbone for torchvision (or any backbone, in easyssl's format)."""

from __future__ import annotations

import argparse
import os

from easyssl.cli.common import CLIError
from easyssl.runtime.checkpoint import LAST_CHECKPOINT
from easyssl.tools.export import backbone_from_checkpoint, export_backbone


# --------------------------------------------------------------------------- export
def add_export(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``easyssl export`` to its sub-parser."""
    p.epilog = """examples:
  easyssl export --checkpoint runs/a/last.ckpt --output backbone.pth
  easyssl export --checkpoint runs/a/last.ckpt --output backbone.pt --format easyssl

--format torchvision (default) writes a state_dict that torchvision.models.resnet18()
(resnet34/50/101/152 likewise) loads with load_state_dict; only width-1 ResNets have a
torchvision twin (train with --width 1). --format easyssl works for every backbone;
rebuild it with easyssl.load_backbone(path). --format safetensors writes the same as a
.safetensors file (tensors and a JSON header only, nothing that can run code when loaded).
"""
    p.add_argument("--checkpoint", required=True, help="the .ckpt file written by `easyssl train`")
    p.add_argument("--output", required=True, help="file to write, e.g. backbone.pth")
    p.add_argument("--format", choices=["torchvision", "easyssl", "safetensors"], default="torchvision",
                   help="torchvision (default): a state_dict for torchvision.models.resnetXX(); easyssl: any backbone; "
                        "safetensors: any backbone, as a .safetensors file (needs easyssl[safetensors])")


def cmd_export(args: argparse.Namespace) -> int:
    """Run ``easyssl export`` with the parsed arguments; returns the exit code."""
    if not os.path.isfile(os.path.join(args.checkpoint, LAST_CHECKPOINT) if os.path.isdir(args.checkpoint) else args.checkpoint):
        raise CLIError(f"checkpoint {args.checkpoint!r} does not exist: pass the .ckpt file written by `easyssl train`")
    path = export_backbone(args.checkpoint, args.output, format=args.format)
    print(f"wrote {path}")
    if args.format in ("easyssl", "safetensors"):
        print(f"load it with: easyssl.load_backbone({path!r})")
        return 0
    _, build = backbone_from_checkpoint(args.checkpoint)
    ctor = str(build["name"]).replace("-", "")
    print(f"load it with: model = torchvision.models.{ctor}(); model.load_state_dict(torch.load({path!r}))")
    if build.get("small_input"):
        print("this model has the small-image stem: first set model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False) "
              "and model.maxpool = torch.nn.Identity() (or use easyssl.torchvision_model(checkpoint))")
    if build.get("pooled_stages", 1) > 1:
        print(f"easyssl's embeddings of this model pool its last {build['pooled_stages']} stages; torchvision's model pools the last "
              "stage only (the weights are the same)")
    print("its fc layer is untrained: replace it, e.g. model.fc = torch.nn.Linear(model.fc.in_features, num_classes)")
    return 0
