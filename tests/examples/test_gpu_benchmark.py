"""examples/benchmarks/gpu.py builds its photo set from files on the machine (its stages run on a GPU; --smoke on a CPU)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
from PIL import Image

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples", "benchmarks", "gpu.py")


def _load():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_photo_set_is_cut_from_the_photos_it_finds(tmp_path):
    gpu = _load()
    photos = tmp_path / "carried"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(photos / "street.jpg")
    Image.fromarray(rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)).save(photos / "tiny.png")  # too small to crop
    assert str(photos / "street.jpg") in gpu.sample_photos([str(photos)])
    assert str(photos / "tiny.png") not in gpu.sample_photos([str(photos)])
    info = gpu.build_photo_set(str(tmp_path / "set"), 6, (260, 520), [str(photos)], workers=1)
    files = [os.path.join(d, f) for d, _, names in os.walk(info["dir"]) for f in names if f.endswith(".jpg")]
    assert len(files) == 6 and not info["synthetic"]
    for path in files:
        with Image.open(path) as image:
            assert image.format == "JPEG" and 260 <= max(image.size) <= 520
    small = gpu.subset_folder(info["dir"], str(tmp_path / "small"), 4, size=32)
    sizes = [Image.open(os.path.join(d, f)).size for d, _, names in os.walk(small) for f in names if f.endswith(".png")]
    assert sizes == [(32, 32)] * 4


def test_a_stage_that_fails_or_times_out_is_reported_not_fatal(tmp_path):
    gpu = _load()
    result = gpu.run_stage("embed_easyssl", {"work": str(tmp_path), "photos": str(tmp_path / "missing")}, timeout=120)
    assert "error" in result and "stage_seconds" in result


def test_every_fashion_mnist_variant_builds_a_training(tmp_path):
    """The GPU session's variants are settings easyssl accepts: a name or key typo would cost a GPU stage."""
    import easyssl

    gpu = _load()
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / f"{i}.png")
    backbones = {}
    for name, extra in gpu.FASHION_MNIST_VARIANTS.items():
        overrides = {section: dict(values) if isinstance(values, dict) else values for section, values in extra.items()}
        overrides.setdefault("trainer", {})["device"] = "cpu"
        run = easyssl.build_training(str(folder), checkpoint_dir=str(tmp_path / name), **overrides)
        for section, values in extra.items():
            for key, value in values.items() if isinstance(values, dict) else [(None, values)]:  # top-level keys: the seed
                assert (run.config[section] if key is None else run.config[section][key]) == value, (name, section, key)
        backbones[name] = (run.config["model"]["backbone"], run.config["model"]["width"], len(run.trainer.model.backbone.layer1))
    assert backbones["resnet10"] == ("resnet-10", 0.25, 1) and backbones["batch128"] == ("resnet-18", 0.25, 2)
