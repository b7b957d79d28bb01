"""``easyssl train``, ``embed``, ``run``, ``methods`` and ``demo``: learning embeddings and making them."""

from __future__ import annotations

import argparse
import ast
import os
import shlex
import tempfile
from typing import Any

import numpy as np

from easyssl.api import embed_images, stream_embeddings, train_embedding_model
from easyssl.cli.common import CLIError, check_dir, check_positive
from easyssl.data import make_demo_dataset
from easyssl.inference import save_embeddings
from easyssl.methods import available_methods, get_method
from easyssl.runtime.checkpoint import load_checkpoint
from easyssl.train.metrics import CURVE_FILE, METRICS_FILE


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word such as resnet-50


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Turn the training flags and ``--set section.key=value`` pairs into train_embedding_model's config."""
    config: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        if value is not None:
            config.setdefault(section, {})[key] = value

    put("trainer", "max_epochs", args.epochs)
    put("trainer", "max_time", args.max_time)
    put("trainer", "max_steps", args.max_steps)
    put("trainer", "device", args.device)
    put("trainer", "precision", args.precision)
    if args.compile:
        put("trainer", "compile", True)
    if args.quiet:
        put("trainer", "progress_bar", False)
    put("loader", "batch_size", args.batch_size)
    put("loader", "num_workers", args.num_workers)
    put("collate", "input_size", args.input_size)
    put("model", "backbone", args.backbone)
    put("model", "width", args.width)
    put("model", "weights", args.weights)
    put("optimizer", "lr", args.lr)
    put("evaluation", "knn_dir", args.eval_dir)
    for item in args.set or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise CLIError(f"--set {item!r}: use SECTION.KEY=VALUE, e.g. --set model.width=0.5 or --set optimizer.name=adamw")
        path, value = item.split("=", 1)
        section, key = path.split(".", 1)
        config.setdefault(section, {})[key] = _parse_value(value)
    if args.checkpoint_dir:
        config["checkpoint_dir"] = args.checkpoint_dir
    if args.resume:
        config["resume"] = True
    if args.seed is not None:
        config["seed"] = args.seed
    return config


def _add_training_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", default="simclr", help="SSL method (see `easyssl methods`; default: simclr)")
    parser.add_argument("--epochs", type=int, help="number of epochs (default: 100, or unlimited with --max-time)")
    parser.add_argument("--max-time", help="training-time budget: seconds or DD:HH:MM:SS, e.g. 00:00:10:00")
    parser.add_argument("--max-steps", type=int, help="number of optimisation steps")
    parser.add_argument("--batch-size", type=int, help="images per step (default: chosen for the hardware)")
    parser.add_argument("--input-size", type=int, help="training image size in pixels (default: from the images)")
    parser.add_argument("--backbone", help="resnet-18 (default), resnet-50, ..., timm/convnext_tiny (pip install timm), torchvision/resnet50")
    parser.add_argument("--weights", help="start the backbone from a weights file (state dict, easyssl checkpoint) or, for "
                        "torchvision/... backbones, a cached torchvision weight name such as IMAGENET1K_V1 (never downloaded)")
    parser.add_argument("--width", type=float, help="backbone width multiplier")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: method's, scaled to the batch size)")
    parser.add_argument("--num-workers", type=int, help="data-loading processes")
    parser.add_argument("--device", help="auto (default: CUDA, else an Apple GPU, else the CPU), cpu, cuda, cuda:1, mps")
    parser.add_argument("--precision", help="auto (default: bf16 on CUDA GPUs and bf16-capable CPUs, else 32), 32, bf16, 16")
    parser.add_argument("--compile", action="store_true", help="compile the model with torch.compile")
    parser.add_argument("--checkpoint-dir", help="folder for checkpoints (default: easyssl_runs/<date_time>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --checkpoint-dir from its last checkpoint")
    parser.add_argument("--seed", type=int, help="random seed (default: 1)")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="any config value, e.g. --set collate.min_scale=0.2 (repeatable)")
    parser.add_argument("--eval-dir", metavar="DIR",
                        help="labelled folder (class sub-folders) for kNN top-1 after every epoch; its labels never reach training")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


# --------------------------------------------------------------------------- train
def add_train(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``easyssl train`` to its sub-parser."""
    p.epilog = ("examples:\n  easyssl train my/images/ --epochs 10\n  easyssl train my/images/ --method byol --max-time 00:00:10:00\n"
                "  easyssl train my/images/ --eval-dir my/labelled_val/   # kNN top-1 after every epoch\n")
    p.add_argument("input_dir", help="folder of images (class sub-folders are only used for evaluation)")
    _add_training_flags(p)


def _check_training_flags(args: argparse.Namespace) -> None:
    check_positive(args.epochs, "--epochs")  # 0 epochs would save an untrained model and exit 0
    check_positive(args.max_steps, "--max-steps")
    if args.eval_dir:
        check_dir(args.eval_dir)


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``easyssl train`` with the parsed arguments; returns the exit code."""
    _check_training_flags(args)
    checkpoint = train_embedding_model(check_dir(args.input_dir), method=args.method, **overrides(args))
    print(run_summary(checkpoint))
    print(f"next: easyssl embed {_quote(args.input_dir)} --checkpoint {_quote(os.path.dirname(os.path.abspath(checkpoint)))} "
          "--output embeddings.csv")
    return 0


# --------------------------------------------------------------------------- embed
def add_embed(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``easyssl embed`` to its sub-parser."""
    p.epilog = "example:\n  easyssl embed my/images/ --checkpoint easyssl_runs/x/last.ckpt --output embeddings.csv\n"
    p.add_argument("input_dir", help="folder of images")
    p.add_argument("--checkpoint", required=True, help="the run folder or .ckpt file written by `easyssl train`")
    p.add_argument("--output", default="embeddings.csv", help="embeddings file: .csv (default embeddings.csv) or .npz")
    p.add_argument("--batch-size", type=int, help="images per forward pass")
    p.add_argument("--num-workers", type=int, help="data-loading processes")
    p.add_argument("--device", help="auto (default), cpu, cuda")
    p.add_argument("--raw-features", action="store_true",
                   help="save the model's own features instead of the whitened embeddings (see README, Using embeddings)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_embed(args: argparse.Namespace) -> int:
    # Streamed batch by batch into the file: memory stays bounded whatever the folder's size.
    """Run ``easyssl embed`` with the parsed arguments; returns the exit code."""
    result = stream_embeddings(
        check_dir(args.input_dir), args.checkpoint, args.output, batch_size=args.batch_size, num_workers=args.num_workers,
        device=args.device or "auto", progress_bar=not args.quiet, whiten=not args.raw_features,
    )
    print(f"embedded {result.count} images into {result.dim}-dimensional vectors: {result.path}")
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable file(s): {', '.join(result.skipped[:20])}")
    return 0


# --------------------------------------------------------------------------- run
def add_run(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``easyssl run`` to its sub-parser."""
    p.epilog = "examples:\n  easyssl run\n  easyssl run my/images/ --epochs 10 --output embeddings.csv\n"
    p.add_argument("input_dir", nargs="?", help="folder of images (default: a small built-in demo set)")
    p.add_argument("--output", default="embeddings.csv", help="embeddings file: .csv (default) or .npz")
    _add_training_flags(p)


def cmd_run(args: argparse.Namespace) -> int:
    """Run ``easyssl run`` with the parsed arguments; returns the exit code."""
    input_dir = args.input_dir
    if input_dir is None:
        input_dir = make_demo_dataset(os.path.join(tempfile.gettempdir(), "easyssl_demo"), images_per_class=40, image_size=32)
        print(f"no folder given: training on the built-in demo set of 200 shape images in {input_dir}")
        if args.epochs is None and args.max_time is None and args.max_steps is None:
            args.epochs = 25  # 50 steps of 128 images: a few seconds on a laptop CPU, past the barely-trained warning (50 steps)
    check_dir(input_dir)
    _check_training_flags(args)
    checkpoint = train_embedding_model(input_dir, method=args.method, **overrides(args))
    embeddings, labels, filenames = embed_images(input_dir, checkpoint, progress_bar=not args.quiet)
    output = os.path.abspath(save_embeddings(args.output, embeddings, labels, filenames, training_steps=load_checkpoint(checkpoint).get("step")))
    print(run_summary(checkpoint))
    print(f"embedded {embeddings.shape[0]} images into {embeddings.shape[1]}-dimensional vectors: {output}")
    agreement = label_agreement(embeddings, labels)
    if agreement is not None:
        accuracy, chance, classes = agreement
        print(f"nearest-neighbour label agreement: {accuracy:.3f} (chance level {chance:.3f}, {classes} classes; leave-one-out, "
              "labels from the sub-folders, never used in training)")
    data, out = _quote(os.path.abspath(input_dir)), _quote(output)
    print("next steps:")
    print(f"  easyssl plot --embeddings {out} --output {_quote(os.path.splitext(output)[0] + '.png')}")
    print(f"  easyssl similar --embeddings {out} --query {_quote(filenames[0])} --image-dir {data} --plot neighbours.png")
    print(f"  easyssl duplicates --input-dir {data} --checkpoint {_quote(str(checkpoint))}")
    print(f"  easyssl run {data} --epochs 50          # train longer for better embeddings")
    return 0


def _quote(path: str) -> str:
    return shlex.quote(path)


def run_summary(checkpoint: str) -> str:
    """The lines that say where a run's outputs are: the checkpoint, and metrics.csv and the loss curve next to it, by absolute path."""
    folder = os.path.dirname(os.path.abspath(checkpoint))
    lines = [f"checkpoint: {os.path.abspath(checkpoint)}"]
    for name, what in ((METRICS_FILE, "metrics (one row per epoch)"), (CURVE_FILE, "loss curve")):
        if os.path.exists(os.path.join(folder, name)):
            lines.append(f"{what}: {os.path.join(folder, name)}")
    return "\n".join(lines)


def label_agreement(embeddings: np.ndarray, labels: list[int]) -> tuple[float, float, int] | None:
    """Leave-one-out nearest-neighbour label agreement, its chance level and the number of classes (None without
    two classes). Chance is the agreement of a random neighbour: the sum of the squared class shares (1/C when balanced)."""
    if len(set(labels)) < 2 or min(labels) < 0 or len(labels) > 20_000:
        return None
    emb = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    sim = emb @ emb.T
    np.fill_diagonal(sim, -np.inf)
    truth = np.asarray(labels)
    accuracy = float(np.mean(truth[sim.argmax(axis=1)] == truth))
    shares = np.bincount(truth) / len(truth)
    return accuracy, float(np.sum(shares**2)), int(np.count_nonzero(shares))


# --------------------------------------------------------------------------- methods, demo
def add_methods(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``easyssl methods`` to its sub-parser."""
    pass


def cmd_methods(args: argparse.Namespace) -> int:
    """Run ``easyssl methods`` with the parsed arguments; returns the exit code."""
    for name in available_methods():
        print(f"{name:12s} {get_method(name).description}")
    return 0


def add_demo(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``easyssl demo`` to its sub-parser."""
    p.add_argument("output_dir", help="folder to write")
    p.add_argument("--images-per-class", type=int, default=40)
    p.add_argument("--image-size", type=int, default=32)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run ``easyssl demo`` with the parsed arguments; returns the exit code."""
    path = make_demo_dataset(args.output_dir, images_per_class=args.images_per_class, image_size=args.image_size)
    print(f"wrote the demo image set to {path}")
    return 0
