"""Readout probe: other poolings of a saved small-image model's last two stages (no training).

For every image of ``FOLDER/train`` and ``FOLDER/test``, the model's stage-3 and stage-4 feature maps are pooled
by average (the model's own features), max, GeM (p = 2, 3) and average and max concatenated, and the last three
stages by average, each averaged over the model's test-time views (``model.embedding_views``); prints weighted kNN
top-1 (k=200, k=20) of each, whitened (``_white``: refitted on the training features) and with every feature
centred and scaled (``_std``: what a BatchNorm gives). Fifteenth session (issue 12): on the thirteenth session's
10-minute fresh-split model no pooling moved the whitened figures by more than 0.3 points, so the defaults average.

    python examples/benchmarks/pooling_probe.py CHECKPOINT bench_data/fashion_mnist_fresh_test10000_40000
"""
from __future__ import annotations

import argparse
import json
from typing import Callable

import numpy as np
import torch

from easyssl import SSLDataset, fit_whitening, knn_accuracy, load_model
from easyssl.config import eval_transform
from easyssl.nn.embedding_views import embedding_view


def gem(maps: torch.Tensor, p: float) -> torch.Tensor:
    """Generalised-mean pooling of ``(B, C, h, w)`` maps (Radenovic et al., 2018): p = 1 is the average, large p the max."""
    return maps.clamp(min=1e-6).pow(p).mean((2, 3)).pow(1 / p)


#: Each pooling, applied to the stage-3 and stage-4 maps and concatenated.
POOLS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "avg": lambda maps: maps.mean((2, 3)),
    "max": lambda maps: maps.amax((2, 3)),
    "gem3": lambda maps: gem(maps, 3.0),
    "gem2": lambda maps: gem(maps, 2.0),
    "avgmax": lambda maps: torch.cat([maps.mean((2, 3)), maps.amax((2, 3))], 1),
}


def pooled_features(model: torch.nn.Module, folder: str, transform: Callable) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every pooling of :data:`POOLS` (and ``l2l3l4``: the last three stages averaged) of the images of ``folder``,
    averaged over the model's test-time views, and their labels."""
    net = getattr(model.backbone, "model", model.backbone)  # a module passed as the backbone is wrapped
    data = SSLDataset(folder)
    out: dict[str, list[torch.Tensor]] = {name: [] for name in [*POOLS, "l2l3l4"]}
    with torch.no_grad():
        for start in range(0, len(data), 500):
            x = torch.stack([transform(data.load(j)[0]) for j in range(start, min(start + 500, len(data)))])
            sums: dict[str, torch.Tensor | float] = {name: 0.0 for name in out}
            for scale, mirrored in model.embedding_views:
                h2 = net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(embedding_view(x, scale, mirrored)))))))
                h3 = net.layer3(h2)
                h4 = net.layer4(h3)
                for name, pool in POOLS.items():
                    sums[name] = sums[name] + torch.cat([pool(h3), pool(h4)], 1)
                sums["l2l3l4"] = sums["l2l3l4"] + torch.cat([h2.mean((2, 3)), h3.mean((2, 3)), h4.mean((2, 3))], 1)
            for name in out:
                out[name].append(sums[name] / len(model.embedding_views))
    return {name: torch.cat(parts).numpy().astype(np.float64) for name, parts in out.items()}, np.array(data.get_targets())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a small-image ResNet checkpoint (two pooled stages)")
    parser.add_argument("folder", help="a folder with train/ and test/ class sub-folders")
    args = parser.parse_args(argv)
    model, saved = load_model(args.checkpoint)
    model.eval()
    transform = eval_transform(saved)
    train, train_labels = pooled_features(model, f"{args.folder}/train", transform)
    test, test_labels = pooled_features(model, f"{args.folder}/test", transform)
    result: dict = {"checkpoint": args.checkpoint}
    for name, features in train.items():
        mean, whitening = fit_whitening(features)
        centre, scale = features.mean(0), features.std(0) + 1e-6
        for k in (200, 20):
            result[f"{name}_white_k{k}"] = round(knn_accuracy((features - mean) @ whitening, train_labels, (test[name] - mean) @ whitening, test_labels, k=k), 4)
            result[f"{name}_std_k{k}"] = round(knn_accuracy((features - centre) / scale, train_labels, (test[name] - centre) / scale, test_labels, k=k), 4)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
