"""Fuzzing with hypothesis: the dataset with malformed image files, and the CLI with malformed arguments.

Every CLI case is drawn together with the exit code it must give (0 ok, 2 usage or bad input)."""

import contextlib
import io
import os
import shutil
import tempfile
import types
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader

from easyssl.data import IMAGE_EXTENSIONS, MultiViewCollate, SSLDataset, is_empty_batch, open_dataset
from easyssl.transforms import EvalTransform

FUZZ = settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _valid_image_bytes(fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


_VALID = {ext: _valid_image_bytes(fmt, i) for i, (ext, fmt) in enumerate([(".png", "PNG"), (".jpg", "JPEG"), (".bmp", "BMP"), (".webp", "WEBP"), (".tiff", "TIFF"), (".ppm", "PPM")])}


@st.composite
def image_files(draw):
    """A file named like an image holding random bytes, a valid image, or a valid image with bytes flipped, cut or added."""
    ext = draw(st.sampled_from(sorted(_VALID) + [e for e in IMAGE_EXTENSIONS if e not in _VALID]))
    kind = draw(st.sampled_from(["random", "valid", "mutated", "truncated", "empty", "header_only"]))
    base = _VALID.get(ext, _VALID[".png"])
    if kind == "random":
        data = draw(st.binary(min_size=0, max_size=300))
    elif kind == "valid":
        data = base
    elif kind == "empty":
        data = b""
    elif kind == "header_only":
        data = base[: draw(st.integers(1, 40))]
    elif kind == "truncated":
        data = base[: draw(st.integers(1, max(1, len(base) - 1)))]
    else:
        data = bytearray(base)
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] = draw(st.integers(0, 255))
        data = bytes(data) + draw(st.binary(max_size=20))
    name = draw(st.text(alphabet="abcxyzé漢 _-.0123456789", min_size=1, max_size=12)).strip(". ") or "f"
    return name + draw(st.sampled_from([ext, ext.upper()])), data


@contextlib.contextmanager
def _small_bomb_limit():
    # Mutated headers can claim gigapixel images: keep the bomb guard low while fuzzing so a
    # corrupt header costs an error, not gigabytes.
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 4_000_000
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


@FUZZ
@given(files=st.lists(image_files(), min_size=1, max_size=8, unique_by=lambda f: f[0].lower()))
def test_dataset_never_crashes_on_malformed_files(files):
    folder = tempfile.mkdtemp()
    try:
        for name, data in files:
            with open(os.path.join(folder, name), "wb") as handle:
                handle.write(data)
        with _small_bomb_limit(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dataset = SSLDataset(folder, transform=EvalTransform(16))
            assert len(dataset) == len(files)
            none = []
            for i in range(len(dataset)):
                sample, target, filename = dataset[i]
                assert filename == dataset.filenames[i] and target == 0
                if sample is None:
                    none.append(filename)
                    event("unreadable file")
                else:
                    assert sample.shape == (3, 16, 16) and torch.isfinite(sample).all()
            assert dataset.skipped_files() == none
            messages = " ".join(str(w.message) for w in caught)
            assert all(name in messages for name in none)
            # Through a loader with its collate: only readable files come out, nothing raises.
            names = []
            for batch in DataLoader(dataset, batch_size=3, collate_fn=MultiViewCollate()):
                if not is_empty_batch(batch):
                    images, targets, batch_names = batch
                    assert images.shape[0] == len(batch_names) == targets.shape[0]
                    names += batch_names
            assert sorted(names + none) == sorted(dataset.filenames)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def cli_sandbox(tmp_path_factory):
    """A working folder with an empty folder, a file, a folder of junk 'images', a checkpoint and a non-checkpoint."""
    from easyssl.runtime.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("cli")
    (root / "empty").mkdir()
    (root / "file.png").write_bytes(b"not an image")
    (root / "junk").mkdir()
    for i in range(3):
        (root / "junk" / f"{i}.jpg").write_bytes(os.urandom(30))
    (root / "fake.ckpt").write_bytes(os.urandom(50))
    save_checkpoint(root / "good.ckpt", {"config": {}})
    return root


def _stub_heavy_work(monkeypatch, root):
    """Replace training and embedding by their argument checks, so each example takes milliseconds."""
    import easyssl.cli.train as commands
    from easyssl.config import merge_config
    from easyssl.runtime.budget import parse_max_time
    from easyssl.runtime.checkpoint import load_checkpoint

    def train(input_dir=None, *, method="simclr", dataset=None, **config):
        merged = merge_config(method, config)
        parse_max_time(merged["trainer"]["max_time"])
        open_dataset(input_dir)
        return str(root / "good.ckpt")

    def embed(input_dir=None, checkpoint=None, **kwargs):
        names = open_dataset(input_dir).filenames
        load_checkpoint(checkpoint)
        return np.eye(len(names), 4, dtype=np.float32), [0] * len(names), names

    def stream(input_dir=None, checkpoint=None, output="embeddings.npz", **kwargs):
        names = open_dataset(input_dir).filenames
        load_checkpoint(checkpoint)
        return types.SimpleNamespace(count=len(names), dim=4, path=str(output), skipped=[])

    monkeypatch.setattr(commands, "train_embedding_model", train)
    monkeypatch.setattr(commands, "embed_images", embed)
    monkeypatch.setattr(commands, "stream_embeddings", stream)
    monkeypatch.setattr(commands, "make_demo_dataset", lambda output_dir, **kwargs: str(root / "junk"))


_SANDBOX = {"empty", "file.png", "junk", "fake.ckpt", "good.ckpt"}
#: Folder arguments that cannot be used, and what the one error line says.
_BAD_FOLDERS = {"missing/dir": "does not exist", "file.png": "is a file, not a folder", "empty": "contains no image files", "": "is not a folder name"}
#: Training flags with values that pass every check.
_GOOD_TRAINING = {
    "--epochs": st.integers(1, 40).map(str), "--max-steps": st.integers(1, 10**6).map(str), "--batch-size": st.integers(1, 512).map(str),
    "--input-size": st.integers(8, 256).map(str), "--width": st.sampled_from(["0.125", "0.5", "1", "2.0"]),
    "--lr": st.floats(1e-5, 1.0).map(str), "--num-workers": st.integers(0, 8).map(str), "--device": st.sampled_from(["cpu", "auto"]),
    "--precision": st.sampled_from(["32", "bf16", "auto"]), "--seed": st.integers(0, 2**31).map(str),
    "--max-time": st.sampled_from(["00:00:00:01", "90", "1:30", "00:01:00"]), "--checkpoint-dir": st.sampled_from(["runs/a", "r"]),
    "--backbone": st.sampled_from(["resnet-18", "resnet-50", "vit-tiny"]), "--method": st.sampled_from(["simclr", "byol", "moco", "dino"]),
    "--set": st.sampled_from(["optimizer.lr=0.01", "model.width=0.5", "loader.batch_size=8", "trainer.max_epochs=2", "optimizer.weight_decay=0"]),
    "--quiet": None, "--compile": None, "--resume": None,
}
#: Training flags with a value rejected after parsing, and what the one error line says.
_BAD_TRAINING = [
    ("--set", "oops", "use SECTION.KEY=VALUE"), ("--set", "model=1", "use SECTION.KEY=VALUE"), ("--set", "trainer.warp=1", "unknown config key"),
    ("--set", "warp.drive=1", "unknown config key 'warp'"), ("--max-time", "1:2:3:4:5", "is not a time budget"), ("--max-time", "soon", "is not a time budget"),
    ("--max-time", "0", "max_time must be positive"), ("--method", "teleport", "unknown method 'teleport'"),
]
_GOOD_EMBED = {"--batch-size": st.integers(1, 512).map(str), "--num-workers": st.integers(0, 8).map(str), "--device": st.just("cpu"),
               "--output": st.sampled_from(["x.csv", "x.npz"]), "--raw-features": None, "--quiet": None}
_INT_FLAGS = {"train": ["--epochs", "--max-steps", "--batch-size"], "run": ["--epochs", "--seed"], "embed": ["--batch-size"],
              "demo": ["--images-per-class", "--image-size"]}


def _not_an_int(text):
    try:
        int(text)
    except ValueError:
        return True
    return False


def _flags(draw, table):
    argv = []
    for flag in draw(st.lists(st.sampled_from(sorted(table)), max_size=5)):
        argv += [flag] if table[flag] is None else [flag, draw(table[flag])]
    return argv


@st.composite
def cli_cases(draw):
    """``(argv, expected exit code, a piece of the one-line error or None)``: a valid command line, or one with one fault."""
    command = draw(st.sampled_from(["train", "run", "embed", "methods", "demo", "nope"]))
    if command == "nope":
        return [draw(st.sampled_from(["nope", "--bogus", "trian"]))], 2, None
    if command == "methods":
        extra = draw(st.lists(st.sampled_from(["junk", "--epochs", "-x"]), max_size=2))
        return ["methods", *extra], 2 if extra else 0, None
    if command == "demo":
        argv = ["demo", draw(st.sampled_from(["out", "demo/dir"]))]
        argv += _flags(draw, {"--images-per-class": st.integers(1, 50).map(str), "--image-size": st.integers(8, 64).map(str)})
    elif command == "embed":
        argv = ["embed", "junk", "--checkpoint", "good.ckpt", *_flags(draw, _GOOD_EMBED)]
    else:
        argv = [command, "junk", *_flags(draw, _GOOD_TRAINING)]
    fault = draw(st.sampled_from(["none", "folder", "random_folder", "value", "checkpoint", "not_an_int", "unknown_option", "no_value"]))
    if fault in ("folder", "random_folder") and command != "demo":
        bad = draw(st.sampled_from(sorted(_BAD_FOLDERS))) if fault == "folder" else draw(
            st.text(alphabet="abcé漢 _-./0123456789", min_size=1, max_size=12).filter(lambda t: t.strip("./ ") and t.split("/")[0] not in _SANDBOX and not t.startswith("-")))
        argv[1] = bad
        return argv, 2, _BAD_FOLDERS.get(bad, "does not exist")
    if fault == "value" and command in ("train", "run"):
        flag, value, message = draw(st.sampled_from(_BAD_TRAINING))
        return argv + [flag, value], 2, message
    if fault == "checkpoint" and command == "embed":
        checkpoint, message = draw(st.sampled_from([("fake.ckpt", "not an easyssl checkpoint"), ("missing.ckpt", "does not exist")]))
        return argv + ["--checkpoint", checkpoint], 2, message
    if fault == "not_an_int" and command in _INT_FLAGS:
        value = draw(st.text(max_size=8).filter(_not_an_int))
        return argv + [draw(st.sampled_from(_INT_FLAGS[command])), value], 2, None  # argparse: invalid int value
    if fault == "unknown_option":
        return argv + [draw(st.sampled_from(["--bogus", "--epoch-count", "-z"]))], 2, None
    if fault == "no_value" and command in _INT_FLAGS:
        return argv + [draw(st.sampled_from(_INT_FLAGS[command]))], 2, None  # a flag without its value, at the end
    return argv, 0, None


@given(case=cli_cases())
@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], derandomize=True)
def test_cli_gives_the_exit_code_each_command_line_deserves(cli_sandbox, monkeypatch, case):
    from easyssl.cli import main

    argv, expected, message = case
    _stub_heavy_work(monkeypatch, cli_sandbox)
    monkeypatch.chdir(cli_sandbox)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
            event(f"argparse exit {code}")
            assert message is None, f"{argv}: argparse stopped it ({err.getvalue().strip()!r}) before the command could say {message!r}"
    event(f"{argv[0]} exit {code}")
    assert code == expected, f"{argv}: exit code {code}, expected {expected}; stderr: {err.getvalue()!r}"
    assert "Traceback" not in err.getvalue()
    if expected == 0:
        assert err.getvalue() == "" and out.getvalue().strip()
    elif message is not None:
        lines = err.getvalue().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"easyssl {argv[0]}: error:") and message in lines[0], lines


def test_cli_embed_on_junk_files_reports_instead_of_crashing(cli_sandbox, capsys):
    from easyssl.cli import main

    code = main(["embed", str(cli_sandbox / "junk"), "--checkpoint", str(cli_sandbox / "fake.ckpt")])
    err = capsys.readouterr().err
    assert code == 2 and "not an easyssl checkpoint" in err and "Traceback" not in err


def test_cli_unexpected_errors_are_one_line_with_exit_code_1(monkeypatch, capsys):
    from easyssl.cli import main

    def boom():
        raise RuntimeError("kaboom")

    monkeypatch.setattr("easyssl.cli.train.available_methods", boom)
    assert main(["methods"]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: kaboom" in err and "EASYSSL_DEBUG" in err and "Traceback" not in err
    monkeypatch.setenv("EASYSSL_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["methods"])


def test_cli_bad_input_is_exit_code_2_and_a_bug_is_1(monkeypatch, capsys):
    from easyssl.cli import is_bad_input, main

    for error in (ValueError("x"), FileNotFoundError("x"), ImportError("needs PyAV", name="av")):
        assert is_bad_input(error)
    for error in (RuntimeError("x"), TypeError("x"), KeyError("x"), ModuleNotFoundError("gone", name="easyssl.search")):
        assert not is_bad_input(error)

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr("easyssl.cli.train.available_methods", interrupted)
    assert main(["methods"]) == 130
    assert "interrupted" in capsys.readouterr().err
