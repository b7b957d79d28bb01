"""Tuning screen: train one setting on the tuning split under a budget, then kNN of several feature readouts.

The short runs (2 minutes) that chose the small-image rules of ``easyssl/defaults/``
(issue 12; the figures are in docs/tuning_notes.md and in
``results/tuning_screen_2026-11-26.jsonl``). Each run trains on the tuning split (images cut
from Fashion-MNIST's *training* set only, never the test set), then reports weighted kNN top-1
(k=200 and k=20) of

* ``gap``: the last stage's globally pooled features (the backbone's features as
  ``embed_images(..., whiten=False)`` returned them before ``model.pooled_stages``), and whitened (``_white``: :func:`easyssl.fit_whitening` on all 10,000 training features);
* ``gap_centred`` (minus the training features' mean) and ``gap_std`` (each feature also scaled
  to unit variance: a BatchNorm without rotation), to see how much of the whitening's gain a
  diagonal normalisation gives; ``prerelu`` (the last block's output before its final ReLU,
  pooled: signed features) with the same variants;
* other readouts of the same model, to see where the information is: ``l3l4`` (the last two
  stages, pooled and concatenated), ``pool2`` (the last feature map pooled to 2x2: keeps
  the position), ``embed`` (the model's own features as ``embed_images``
  returns them before whitening: averaged over the model's test-time views, ``model.embedding_views``), ``embedding`` (what ``embed_images`` returns: whitened with the statistics
  the training stored in the model; ``embed_white`` re-fits the whitening on all training features),
  ``head1`` (the projection head's first layer), ``proj`` (its output). With
  ``model.pooled_stages=2`` (the default for small images since the fifth session's screens)
  ``l3l4`` is the model's own embedding and ``gap`` its last stage's part.

    python examples/benchmarks/tuning_screen.py --budget 120 --set collate.min_scale=0.25
    python examples/benchmarks/tuning_screen.py --budget 120 --method nnclr --set model.hidden_dim=512
    python examples/benchmarks/tuning_screen.py --budget 600 --json out.jsonl   # a 10-minute confirmation

Experiment hooks (in ``screen_hooks.py``; settings that lost, kept so the losses can be re-run): ``--stem-stride 2
--width 0.5`` trains a ResNet-18 whose first convolution has stride 2; ``--isotropy W`` adds
``W`` times a penalty on the backbone features' second-moment matrix (its distance to a
multiple of the identity) to SimCLR's loss; ``--direct D`` puts SimCLR's loss on the first ``D``
backbone features, bypassing the projection head (DirectCLR); ``--local COUNT SIZE`` adds
multi-crop to SimCLR (``COUNT`` small crops of its two views, each matched to the other view);
``--dcl dcl|dclw|dcl-joint`` trains SimCLR with the decoupled contrastive loss (see
:func:`screen_hooks.use_decoupled_loss`); ``--ema M...`` also reads out exponential moving averages of the
weights (``ema<M>``); ``--paper-rotation W`` trains E-SimCLR's rotation prediction closer to the paper's
form (a third, turned batch) instead of easyssl's (``--set model.rotation_weight=W``: both views turned
alike); ``--turns-only`` turns the views without predicting the turns; ``--embed-loss W T`` adds ``W`` times
NT-Xent (temperature ``T``) on the backbone's own features, ``--uniformity W T`` their uniformity loss
(the seventh session's attempts at features that need no whitening; its ``--decorrelate W`` and ``--bn-neck``
hooks became ``--set model.decorrelation_weight=W`` and ``--set model.feature_norm=true``, now the defaults for
small images). ``--views N`` trains on ``N`` views per image with the multi-positive NT-Xent (eleventh session);
``--res-schedule 16 20 24`` resizes the training views progressively (twelfth session); ``--bf16-loss`` runs SimCLR's
heads and losses under bf16 autocast, as a CUDA GPU does (fourteenth session); ``--debiased``, ``--zero-init`` and
``--erase`` (sixteenth session); ``--augself W`` adds AugSelf's regression of the two views' crop and colour
differences (``augself_hook.py``, seventeenth session); ``--imix W ALPHA`` adds i-Mix's loss of pairwise mixed views
(``imix_hook.py``, twentieth session); ``--cld W CLUSTERS T`` adds CLD's cross-view group discrimination over
in-batch k-means clusters (``cld_hook.py``, twenty-first session); ``--late-neighbours START QUEUE`` switches to NNCLR's
nearest-neighbour positives from a queue of projections at ``START`` of training, and ``--temperature-schedule LOW HIGH
CYCLES`` moves NT-Xent's temperature along cosine cycles (``neighbour_hook.py``, ``temperature_hook.py``, same session).
Readout-only probes of a saved checkpoint (``--checkpoint``) need no training. ``--test-images 10000 40000`` tests on
10,000 images of the official training set from image 40,000 (disjoint from the tuning split's training images)
instead of the split's 2,000, for figures that move by under half a point from run to run, not a point:

    python examples/benchmarks/tuning_screen.py --test-images 10000 40000 --budget 0 --set trainer.max_time=null --set trainer.max_epochs=20
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import augself_hook  # noqa: E402
import cld_hook  # noqa: E402
import imix_hook  # noqa: E402
import neighbour_hook  # noqa: E402
import temperature_hook  # noqa: E402
import screen_hooks as hooks  # noqa: E402
from common import parse_overrides, report  # noqa: E402
from fashion_mnist_data import TRAINING_SET_SPLITS, build_folder  # noqa: E402

from easyssl import SSLDataset, fit_whitening, knn_accuracy, load_model, train_embedding_model  # noqa: E402
from easyssl.config import eval_transform  # noqa: E402
from easyssl.models import backbone as build_backbone  # noqa: E402


def stride_backbone(width: float, stride: int, input_size: int = 28) -> torch.nn.Module:
    """A small-image ResNet-18 whose first convolution has ``stride``."""
    net = build_backbone("resnet-18", width=width, input_size=input_size)
    net.conv1.stride = (stride, stride)
    return net


def readouts(model: torch.nn.Module, folder: str, transform) -> tuple[dict[str, torch.Tensor], list[int]]:
    """Every readout of the module docstring for the images of ``folder``, and their labels."""
    data = SSLDataset(folder)
    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("gap", "prerelu", "l3l4", "pool2", "embed", "embedding", "head1", "proj")}
    net = getattr(model.backbone, "model", model.backbone)  # a module passed as the backbone is wrapped
    head = getattr(model, "projection_head", None)
    with torch.no_grad():
        for start in range(0, len(data), 500):
            x = torch.stack([transform(data.load(j)[0]) for j in range(start, min(start + 500, len(data)))])
            h = net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x))))))
            h3 = net.layer3(h)
            h4 = net.layer4(h3)
            pooled = h4.mean((2, 3))
            out["gap"].append(pooled)
            last, before = net.layer4[-1], net.layer4[:-1](h3)  # the last block without its final ReLU
            if hasattr(last, "bn2") and not hasattr(last, "bn3"):
                shortcut = last.downsample(before) if last.downsample is not None else before
                out["prerelu"].append((last.bn2(last.conv2(last.relu(last.bn1(last.conv1(before))))) + shortcut).mean((2, 3)))
            out["l3l4"].append(torch.cat([h3.mean((2, 3)), pooled], 1))
            out["pool2"].append(torch.nn.functional.adaptive_avg_pool2d(h4, 2).flatten(1))
            if head is not None:
                z = model.embed(x)  # the features the head trained on (the pooled last stage, or more: model.pooled_stages)
                pooled_for_head = z
                out["embed"].append(model.embed_views(x) if hasattr(model, "embed_views") else z)  # over the test-time views
                if getattr(model, "has_embedding_statistics", False):  # whitened as the model stores it: embed_images
                    out["embedding"].append(model.embedding(x))
                for layer in [m for m in head.modules() if isinstance(m, (torch.nn.Linear, torch.nn.BatchNorm1d))][:2]:
                    z = layer(z)
                out["head1"].append(z)
                out["proj"].append(head(pooled_for_head))
    return {k: torch.cat(v).numpy() for k, v in out.items() if v}, data.get_targets()


def split_folder(split: str, train_images: int = 10_000, test_images: tuple[int, int] | None = None) -> str:
    """The default folder of a split cut from the training set: one per training and test image count, so a folder
    written for one count is never read as another (``build_folder`` adds images to a folder; it removes none)."""
    return (f"bench_data/fashion_mnist_{split}" + (f"_train{train_images}" if train_images != 10_000 else "")
            + (f"_test{test_images[0]}_{test_images[1]}" if test_images else ""))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=(*TRAINING_SET_SPLITS, "benchmark"), default="tuning",
                        help="which split cut from the official training set (fashion_mnist_data.TRAINING_SET_SPLITS), or "
                             "'benchmark' (bench_data/fashion_mnist: the budget curve's images, tested on 2,000 official test "
                             "images; to measure a candidate there, never to tune on)")
    parser.add_argument("--data", help="its folder (default: bench_data/fashion_mnist_<split>)")
    parser.add_argument("--test-images", type=int, nargs=2, default=None, metavar=("COUNT", "OFFSET"),
                        help="test on COUNT images of the official training set from OFFSET (default: the split's 2,000); "
                             "e.g. 10000 40000 with the tuning split, in its own --data folder")
    parser.add_argument("--train-images", type=int, default=10_000, metavar="COUNT",
                        help="train on COUNT images of the split (default 10,000; more, e.g. 20000 with the tuning split, "
                             "to see how a rule that reads no image count behaves on a larger folder)")
    parser.add_argument("--budget", type=float, default=120, help="training budget in seconds")
    parser.add_argument("--method", default="simclr")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a default")
    parser.add_argument("--checkpoint", help="evaluate this checkpoint instead of training")
    parser.add_argument("--stem-stride", type=int, default=0, help="experiment hook: first-convolution stride")
    parser.add_argument("--width", type=float, default=0.25, help="backbone width with --stem-stride")
    parser.add_argument("--isotropy", type=float, default=0.0, help="experiment hook: weight of the isotropy penalty (SimCLR)")
    parser.add_argument("--direct", type=int, default=0, help="experiment hook: DirectCLR, the loss on this many backbone features")
    parser.add_argument("--local", type=int, nargs=2, default=None, metavar=("COUNT", "SIZE"),
                        help="experiment hook: SimCLR with COUNT extra SIZE px crops of its views (multi-crop)")
    parser.add_argument("--dcl", choices=("dcl", "dclw", "dcl-joint"), help="experiment hook: SimCLR with the decoupled contrastive loss")
    parser.add_argument("--paper-rotation", type=float, default=0.0, metavar="WEIGHT",
                        help="experiment hook: E-SimCLR's rotation prediction closer to the paper's form (a third batch)")
    parser.add_argument("--embed-loss", type=float, nargs=2, default=None, metavar=("WEIGHT", "TEMPERATURE"),
                        help="experiment hook: also NT-Xent on the backbone's own features (SimCLR)")
    parser.add_argument("--uniformity", type=float, nargs=2, default=None, metavar=("WEIGHT", "T"),
                        help="experiment hook: also the uniformity loss of the backbone's own features (SimCLR)")
    parser.add_argument("--turns-only", action="store_true", help="experiment hook: turn both views alike, predict nothing")
    parser.add_argument("--ema", type=float, nargs="+", default=[], help="experiment hook: also read out EMAs of the weights (these momenta)")
    parser.add_argument("--views", type=int, default=2, help="experiment hook: this many views per image (multi-positive NT-Xent)")
    parser.add_argument("--res-schedule", type=int, nargs="+", default=None, metavar="SIZE",
                        help="experiment hook: progressive resizing, the training views' side in equal shares of training")
    parser.add_argument("--bf16-loss", action="store_true", help="experiment hook: SimCLR's heads and losses under bf16 autocast (a GPU's precision there)")
    parser.add_argument("--debiased", type=float, nargs=2, default=None, metavar=("TAU_PLUS", "BETA"),
                        help="experiment hook: SimCLR's NT-Xent debiased for false negatives (TAU_PLUS: their assumed share) "
                             "and, BETA above 0, hard negatives weighted up")
    parser.add_argument("--zero-init", action="store_true", help="experiment hook: each residual block's last BatchNorm starts at zero")
    parser.add_argument("--erase", type=float, default=0.0, metavar="P", help="experiment hook: random erasing of SimCLR's views with probability P")
    parser.add_argument("--augself", type=float, default=0.0, metavar="WEIGHT",
                        help="experiment hook: SimCLR also regresses the difference of its two views' crops and colour jitter "
                             "(AugSelf, Lee et al. 2021; augself_hook.py), its squared error times WEIGHT added to the loss")
    parser.add_argument("--imix", type=float, nargs=2, default=None, metavar=("WEIGHT", "ALPHA"),
                        help="experiment hook: SimCLR also contrasts its first views mixed pairwise (i-Mix, Lee et al. 2021; "
                             "imix_hook.py), that loss times WEIGHT added, mixing weights from Beta(ALPHA, ALPHA)")
    parser.add_argument("--cld", type=float, nargs=3, default=None, metavar=("WEIGHT", "CLUSTERS", "TEMPERATURE"),
                        help="add CLD's loss (Wang et al. 2021; cld_hook.py): a linear group head's outputs of each view are "
                             "k-means-clustered in the batch and the other view classified among those centroids, times WEIGHT")
    parser.add_argument("--late-neighbours", type=float, nargs=2, default=None, metavar=("START", "QUEUE"),
                        help="from this fraction of training on, NNCLR's loss: each view's positive the nearest neighbour of the "
                             "other view's projection among the last QUEUE projections (neighbour_hook.py)")
    parser.add_argument("--temperature-schedule", type=float, nargs=3, default=None, metavar=("LOW", "HIGH", "CYCLES"),
                        help="NT-Xent's temperature from HIGH down to LOW and back, CYCLES cosine periods over training "
                             "(Kukleva et al. 2023; temperature_hook.py)")
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (easyssl's default: 1), to measure what a seed alone moves")
    parser.add_argument("--tag", default="")
    parser.add_argument("--json", help="append the figures as one line to this file")
    args = parser.parse_args(argv)
    if args.isotropy:
        hooks.add_isotropy_penalty(args.isotropy)
    if args.direct:
        hooks.use_direct_loss(args.direct)
    if args.local:
        hooks.use_local_views(*args.local)
    if args.paper_rotation:
        hooks.use_paper_rotation(args.paper_rotation)
    if args.turns_only:
        hooks.use_turns_only()
    if args.embed_loss:
        hooks.add_embedding_loss(*args.embed_loss)
    if args.uniformity:
        hooks.add_embedding_loss(*args.uniformity, uniformity=True)
    if args.views != 2:
        hooks.use_more_views(args.views)
    if args.res_schedule:
        hooks.use_resolution_schedule(args.res_schedule)
    if args.ema:
        hooks.keep_weight_average(args.ema)
    if args.dcl:
        hooks.use_decoupled_loss(args.dcl == "dclw", joint=args.dcl == "dcl-joint")
    if args.bf16_loss:
        hooks.use_bf16_loss()
    if args.debiased:
        hooks.use_debiased_loss(*args.debiased)
    if args.zero_init:
        hooks.use_zero_init_residual()
    if args.erase:
        hooks.use_random_erasing(args.erase)
    if args.augself:
        augself_hook.use_augself(args.augself)
    if args.imix:
        imix_hook.use_imix(*args.imix)
    if args.cld:
        cld_hook.use_cld(args.cld[0], int(args.cld[1]), args.cld[2])
    if args.late_neighbours:
        neighbour_hook.use_late_neighbours(args.late_neighbours[0], int(args.late_neighbours[1]))
    if args.temperature_schedule:
        temperature_hook.use_temperature_schedule(*args.temperature_schedule)
    n_test, test_offset = args.test_images or (2_000, None)
    if args.split == "benchmark":
        if args.test_images or args.train_images != 10_000:
            parser.error("--split benchmark tests on the official test set's first 2,000 images; --test-images and --train-images are for the splits cut from the training set")
        train_dir, test_dir = build_folder(args.data or "bench_data/fashion_mnist", 10_000, 2_000)
    else:
        folder = args.data or split_folder(args.split, args.train_images, args.test_images)
        train_dir, test_dir = build_folder(folder, args.train_images, n_test, tuning=args.split, test_offset=test_offset)
    config: dict = {"trainer": {"max_time": args.budget, "progress_bar": False}, "checkpoint_dir": tempfile.mkdtemp(prefix="easyssl-screen-")}
    if args.seed is not None:
        config["seed"] = args.seed
    for section, values in parse_overrides(args.set).items():
        config.setdefault(section, {}).update(values)
    custom = (lambda: stride_backbone(args.width, args.stem_stride)) if args.stem_stride else None
    if custom:
        config.setdefault("model", {})["backbone"] = custom()
    start = time.perf_counter()
    checkpoint = args.checkpoint or train_embedding_model(train_dir, method=args.method, **config)
    train_seconds = time.perf_counter() - start
    model, saved = load_model(checkpoint, backbone=custom() if custom else None)
    images = sum(h["images"] for h in torch.load(checkpoint, map_location="cpu", weights_only=True)["history"])
    transform = eval_transform(saved)
    train, train_labels = readouts(model, train_dir, transform)
    test, test_labels = readouts(model, test_dir, transform)
    for momentum, average in hooks.EMA_MODELS.items():  # the averaged weights' plain features, as "ema<momentum>"
        averaged = average.module.float().eval().to(memory_format=torch.contiguous_format)
        train[f"ema{momentum}"] = readouts(averaged, train_dir, transform)[0]["gap"]
        test[f"ema{momentum}"] = readouts(averaged, test_dir, transform)[0]["gap"]
    result = {"tag": args.tag, "method": args.method, "set": args.set, "split": args.split, "n_train": len(train_labels), "n_test": len(test_labels), "train_s": round(train_seconds, 1),
              "epochs": round(images / len(train_labels), 1), "img_s": round(images / max(train_seconds, 1e-9))}
    for name in train:
        tr, te = train[name], test[name]
        mean, whitening = fit_whitening(tr)
        centre, scale = tr.mean(0), tr.std(0) + 1e-6
        for k in (200, 20):
            result[f"{name}_k{k}"] = round(knn_accuracy(tr, train_labels, te, test_labels, k=k), 4)
            if name in ("gap", "prerelu"):  # centred; and each feature scaled to unit variance (a BatchNorm, no rotation)
                result[f"{name}_centred_k{k}"] = round(knn_accuracy(tr - centre, train_labels, te - centre, test_labels, k=k), 4)
                result[f"{name}_std_k{k}"] = round(knn_accuracy((tr - centre) / scale, train_labels, (te - centre) / scale, test_labels, k=k), 4)
            result[f"{name}_white_k{k}"] = round(knn_accuracy((tr - mean) @ whitening, train_labels, (te - mean) @ whitening, test_labels, k=k), 4)
    return report(result, args.json)


if __name__ == "__main__":
    main()
