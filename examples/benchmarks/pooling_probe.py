"""Readout probe: other poolings of a saved small-image model's last two stages (no training).

For every image of ``FOLDER/train`` and ``FOLDER/test``, the model's stage-3 and stage-4 feature maps are pooled
by average (the model's own features), max, GeM (p = 2, 3) and average and max concatenated, and the last three
stages by average, each averaged over the model's test-time views (``model.embedding_views``); prints weighted kNN
top-1 (k=200, k=20) of each, whitened (``_white``: refitted on the training features) and with every feature
centred and scaled (``_std``: what a BatchNorm gives). Fifteenth session (issue 12): on the thirteenth session's
10-minute fresh-split model no pooling moved the whitened figures by more than 0.3 points, so the defaults average.

    python examples/benchmarks/pooling_probe.py CHECKPOINT bench_data/fashion_mnist_fresh_test10000_40000
"""
import json
import sys

import numpy as np
import torch

from easyssl import SSLDataset, fit_whitening, knn_accuracy, load_model
from easyssl.config import eval_transform
from easyssl.nn.embedding_views import embedding_view
if len(sys.argv) != 3:
    raise SystemExit(__doc__)
ckpt, folder = sys.argv[1], sys.argv[2]
model, saved = load_model(ckpt)
model.eval()
net = getattr(model.backbone, "model", model.backbone)
views = model.embedding_views
transform = eval_transform(saved)
def gem(x, p): return x.clamp(min=1e-6).pow(p).mean((2, 3)).pow(1 / p)
POOLS = {
    "avg": lambda m: m.mean((2, 3)),
    "max": lambda m: m.amax((2, 3)),
    "gem3": lambda m: gem(m, 3.0),
    "gem2": lambda m: gem(m, 2.0),
    "avgmax": lambda m: torch.cat([m.mean((2, 3)), m.amax((2, 3))], 1),
}
def feats(sub):
    data = SSLDataset(f"{folder}/{sub}")
    out = {k: [] for k in POOLS}
    out["l2l3l4"] = []
    with torch.no_grad():
        for s in range(0, len(data), 500):
            x = torch.stack([transform(data.load(j)[0]) for j in range(s, min(s + 500, len(data)))])
            acc = {k: 0 for k in out}
            for scale, mirrored in views:
                v = embedding_view(x, scale, mirrored)
                h2 = net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(v))))))
                h3 = net.layer3(h2); h4 = net.layer4(h3)
                for k, f in POOLS.items():
                    acc[k] = acc[k] + torch.cat([f(h3), f(h4)], 1)
                acc["l2l3l4"] = acc["l2l3l4"] + torch.cat([h2.mean((2, 3)), h3.mean((2, 3)), h4.mean((2, 3))], 1)
            for k in out: out[k].append(acc[k] / len(views))
    return {k: torch.cat(v).numpy().astype(np.float64) for k, v in out.items()}, np.array(data.get_targets())
tr, ytr = feats("train"); te, yte = feats("test")
res = {"ckpt": ckpt}
for k in tr:
    a, b = tr[k], te[k]
    mean, W = fit_whitening(a)
    c, s = a.mean(0), a.std(0) + 1e-6
    for kk in (200, 20):
        res[f"{k}_white_k{kk}"] = round(knn_accuracy((a - mean) @ W, ytr, (b - mean) @ W, yte, k=kk), 4)
        res[f"{k}_std_k{kk}"] = round(knn_accuracy((a - c) / s, ytr, (b - c) / s, yte, k=kk), 4)
print(json.dumps(res))
