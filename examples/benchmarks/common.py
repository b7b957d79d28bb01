"""Shared pieces of the benchmark scripts: timing easyssl and the peer (LightlySSL) on the same folders."""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import resource
import tempfile
import time
from typing import Any

import numpy as np
import torch

from easyssl import embed_images, fit_whitening, knn_accuracy, train_embedding_model


def machine() -> str:
    """One line describing this machine: CPU model, cores, GPU."""
    cpu = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {cores} cores, {gpu}, torch {torch.__version__}"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def count_images(folder: str) -> int:
    """Files in ``folder`` and its subfolders, not counting hidden ones (such as the data builder's marker)."""
    return sum(1 for _, _, files in os.walk(folder) for name in files if not name.startswith("."))


def run_ours(train_dir: str, test_dir: str, *, epochs: int | None = None, max_time: Any = None, batch_size: Any = "auto",
             input_size: Any = "auto", backbone: Any = "auto", width: Any = "auto", method: str = "simclr",
             precision: str = "auto", workers: Any = "auto", ks: tuple[int, ...] = (200, 20), extra: dict | None = None,
             progress_bar: bool = False, raw_features: bool = True) -> dict[str, Any]:
    """Train with easyssl's three-line API, embed both folders, and measure speed and kNN accuracy
    (of the whitened embeddings, and with ``raw_features`` also of the backbone's features before whitening)."""
    n_train = count_images(train_dir)
    config: dict[str, Any] = {
        "model": {"backbone": backbone, "width": width},
        "collate": {"input_size": input_size},
        "loader": {"batch_size": batch_size, "num_workers": workers},
        "trainer": {"max_epochs": epochs if epochs is not None else "auto", "max_time": max_time, "precision": precision, "progress_bar": progress_bar},
        "checkpoint_dir": tempfile.mkdtemp(prefix="easyssl-bench-"),
    }
    for section, values in (extra or {}).items():
        config.setdefault(section, {}).update(values) if isinstance(values, dict) else config.__setitem__(section, values)
    start = time.perf_counter()
    checkpoint = train_embedding_model(train_dir, method=method, **config)
    train_seconds = time.perf_counter() - start
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    images_trained = sum(h["images"] for h in state["history"])
    start = time.perf_counter()
    train_emb, train_labels, _ = embed_images(train_dir, checkpoint, progress_bar=progress_bar)
    test_emb, test_labels, _ = embed_images(test_dir, checkpoint, progress_bar=progress_bar)
    embed_seconds = time.perf_counter() - start
    result = {
        "train_seconds": train_seconds,
        "train_images_per_second": images_trained / train_seconds,
        "embed_images_per_second": (len(train_labels) + len(test_labels)) / embed_seconds,
        "epochs": len(state["history"]),
        "config": {k: state["config"][k] for k in ("model", "collate", "loader", "optimizer", "trainer")},
        "images_trained": images_trained,
        "n_train": n_train,
        "checkpoint": str(checkpoint),
    }
    for k in ks:
        result[f"knn_top1_k{k}"] = knn_accuracy(train_emb, train_labels, test_emb, test_labels, k=k)
    if raw_features:  # the same model's features before whitening, to show what the whitening adds
        train_raw, _, _ = embed_images(train_dir, checkpoint, progress_bar=progress_bar, whiten=False)
        test_raw, _, _ = embed_images(test_dir, checkpoint, progress_bar=progress_bar, whiten=False)
        for k in ks:
            result[f"knn_top1_k{k}_unwhitened"] = knn_accuracy(train_raw, train_labels, test_raw, test_labels, k=k)
    return result


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["collate.min_scale=0.25", ...]`` (the ``--set`` options of the benchmarks) as config sections;
    values are read as JSON where they parse, else kept as strings."""
    sections: dict[str, dict[str, Any]] = {}
    for item in items:
        path, value = item.split("=", 1)
        section, key = path.split(".", 1)
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
        sections.setdefault(section, {})[key] = value
    return sections


def peer_train_and_embed(train_dir: str, embed_dirs: list[str], *, epochs: int, batch_size: int, input_size: int,
                         backbone: str = "resnet-18", width: float = 1.0, workers: int = -1, max_time: float | None = None) -> dict[str, Any]:
    """Train with LightlySSL's three-line API (``lightly.core``) from scratch, then embed each of ``embed_dirs``.

    ``max_time`` (seconds) is passed to its Lightning trainer, which then stops at the budget or after
    ``epochs``, whichever comes first. Returns ``train_seconds``, ``embed_seconds`` (all folders),
    ``steps`` (optimiser steps, from its checkpoint) and ``embeddings``: one ``(embeddings, labels, filenames)`` per folder.
    """
    from lightly.core import embed_images as peer_embed
    from lightly.core import train_embedding_model as peer_train

    common = dict(model={"name": backbone, "width": width}, collate={"input_size": input_size},
                  loader={"batch_size": batch_size, "num_workers": workers})
    gpus = 1 if torch.cuda.is_available() else 0
    trainer: dict[str, Any] = {"max_epochs": epochs, "gpus": gpus, "enable_model_summary": False}
    if max_time is not None:
        seconds = int(round(max_time))
        trainer["max_time"] = f"00:{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    train_dir, embed_dirs = os.path.abspath(train_dir), [os.path.abspath(d) for d in embed_dirs]  # we chdir below
    cwd = os.getcwd()
    os.chdir(tempfile.mkdtemp(prefix="lightly-bench-"))  # lightly writes its checkpoints and logs into the working directory
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            start = time.perf_counter()
            checkpoint = peer_train(input_dir=train_dir, pre_trained=False, seed=1, trainer=trainer, **common)
            train_seconds = time.perf_counter() - start
            start = time.perf_counter()
            embeddings = [peer_embed(checkpoint, input_dir=folder, trainer={"gpus": gpus}, **common) for folder in embed_dirs]
            embed_seconds = time.perf_counter() - start
        steps = int(torch.load(checkpoint, map_location="cpu", weights_only=True).get("global_step", 0))  # the peer's Lightning file
    finally:
        os.chdir(cwd)
    return {"train_seconds": train_seconds, "embed_seconds": embed_seconds, "steps": steps, "embeddings": embeddings}


def run_peer(train_dir: str, test_dir: str, *, epochs: int, batch_size: int, input_size: int, backbone: str = "resnet-18",
             workers: int = -1, ks: tuple[int, ...] = (200, 20), max_time: float | None = None) -> dict[str, Any]:
    """The same as :func:`run_ours` with LightlySSL's three-line API, trained from scratch (for ``epochs``, or until ``max_time`` seconds)."""
    run = peer_train_and_embed(train_dir, [train_dir, test_dir], epochs=epochs, batch_size=batch_size,
                               input_size=input_size, backbone=backbone, workers=workers, max_time=max_time)
    (train_emb, train_labels, _), (test_emb, test_labels, _) = run["embeddings"]
    images_trained = run["steps"] * batch_size
    result = {
        "train_seconds": run["train_seconds"],
        "train_images_per_second": images_trained / run["train_seconds"],
        "embed_images_per_second": (len(train_labels) + len(test_labels)) / run["embed_seconds"],
        "epochs": images_trained / count_images(train_dir),
        "steps": run["steps"],
    }
    for k in ks:
        result[f"knn_top1_k{k}"] = knn_accuracy(train_emb, train_labels, test_emb, test_labels, k=k)
    result.update(whitened_knn(train_emb, train_labels, test_emb, test_labels, ks))
    return result


def whitened_knn(train: Any, train_labels: Any, test: Any, test_labels: Any, ks: tuple[int, ...] = (200, 20)) -> dict[str, float]:
    """kNN top-1 after easyssl's whitening (:func:`easyssl.fit_whitening` on the train vectors): for vectors
    easyssl did not make (raw pixels, the peer's embeddings), so that every row is compared on equal terms."""
    mean, whitening = fit_whitening(train)
    train_w, test_w = (np.asarray(train) - mean) @ whitening, (np.asarray(test) - mean) @ whitening
    return {f"knn_top1_k{k}_whitened": knn_accuracy(train_w, train_labels, test_w, test_labels, k=k) for k in ks}


def report(result: dict[str, Any], json_path: str | None) -> dict[str, Any]:
    """Print ``result`` as one JSON line, and append that line to ``json_path`` when given (the screens' ``--json``)."""
    line = json.dumps(result)
    print(line)
    if json_path:
        with open(json_path, "a") as handle:
            handle.write(line + "\n")
    return result


def print_table(rows: dict[str, dict[str, Any]], keys: list[str]) -> None:
    """Print figures side by side, with the ratio ours/peer when both are there."""
    names = list(rows)
    print(f"{'figure':28s}" + "".join(f"{n:>14s}" for n in names) + ("      ratio" if len(names) == 2 else ""))
    for key in keys:
        values = [rows[n].get(key) for n in names]
        cells = "".join(f"{v:14.3f}" if isinstance(v, float) else f"{str(v):>14s}" for v in values)
        ratio = ""
        if len(values) == 2 and all(isinstance(v, (int, float)) and v for v in values):
            ratio = f"{values[0] / values[1]:11.2f}"
        print(f"{key:28s}{cells}{ratio}")
