"""examples/benchmarks/gpu.py builds its photo set from files on the machine (its stages run on a GPU; --smoke on a CPU)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
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
    # a stage past its limit (here the child's import of torch alone takes longer): reported with its time too
    result = gpu.run_stage("embed_easyssl", {"work": str(tmp_path), "photos": str(tmp_path / "missing")}, timeout=0.3)
    assert result["error"] == "timed out after 0 s" and result["stage_seconds"] >= 0.3


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


def test_the_fashion_mnist_stages_run_on_the_folder_named(tmp_path, monkeypatch):
    """``--fashion-mnist`` points the stages at another split (10,000 test images: sharper GPU screens)."""
    gpu = _load()
    folder = tmp_path / "split"
    for part in ("train", "test"):
        (folder / part / "0_tshirt").mkdir(parents=True)
    seen = []
    monkeypatch.setattr(gpu, "run_stage", lambda stage, args, timeout, env: seen.append((stage, args)) or {"stage_seconds": 0.0})
    results = gpu.main(["--only", "fashion_mnist,fashion_mnist_width3", "--fashion-mnist", str(folder), "--work", str(tmp_path / "work")])
    assert [(stage, args["fm_train"], args["fm_test"]) for stage, args in seen] == [("fashion_mnist", str(folder / "train"), str(folder / "test"))] * 2
    assert seen[1][1]["extra"] == {"model": {"width": 3.0, "pooled_stages": 2}}
    assert results["fashion_mnist"] == str(folder / "train") and list(results["stages"]) == ["fashion_mnist", "fashion_mnist_width3"]


def test_a_fashion_mnist_folder_that_is_not_there_is_named(tmp_path, capsys):
    gpu = _load()
    with pytest.raises(SystemExit) as stopped:
        gpu.main(["--only", "fashion_mnist", "--fashion-mnist", str(tmp_path / "nowhere"), "--work", str(tmp_path / "work")])
    assert stopped.value.code == 2
    assert "nowhere" in capsys.readouterr().err
