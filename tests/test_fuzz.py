"""Fuzzing with hypothesis: the dataset with malformed image files, and the CLI with malformed arguments."""

import contextlib
import io
import os
import shutil
import tempfile
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader

from easyssl.data import IMAGE_EXTENSIONS, MultiViewCollate, SSLDataset
from easyssl.data.collate import is_empty_batch
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
def _commands():
    """{sub-command: [(option, takes_value, type)]} of the built-in sub-commands, read from the parser."""
    from easyssl.cli import build_parser

    parser = build_parser()
    commands = {}
    for action in parser._actions:
        for name, sub in (getattr(action, "choices", None) or {}).items():
            if name in ("train", "embed", "run", "methods", "demo"):
                commands[name] = [
                    (a.option_strings[-1], a.nargs != 0, a.type) for a in sub._actions if a.option_strings and a.dest != "help"
                ]
    return commands


_COMMANDS = _commands()
_OPTIONS = sorted({option for options in _COMMANDS.values() for option, _, _ in options} | {"-h", "--version"})


@pytest.fixture(scope="module")
def cli_sandbox(tmp_path_factory):
    """A working folder with an empty folder, a file, a folder of junk 'images', and stubs for the heavy work."""
    root = tmp_path_factory.mktemp("cli")
    (root / "empty").mkdir()
    (root / "file.png").write_bytes(b"not an image")
    (root / "junk").mkdir()
    for i in range(3):
        (root / "junk" / f"{i}.jpg").write_bytes(os.urandom(30))
    (root / "fake.ckpt").write_bytes(os.urandom(50))
    return root


def _stub_heavy_work(monkeypatch, root):
    """Replace training and embedding by their argument checks, so each example takes milliseconds."""
    import easyssl.api
    import easyssl.data.demo
    from easyssl.api import merge_config
    from easyssl.embedding import parse_max_time

    def train(input_dir=None, *, method="simclr", dataset=None, **config):
        merged = merge_config(method, config)
        parse_max_time(merged["trainer"]["max_time"])
        SSLDataset(input_dir)
        return str(root / "fake.ckpt")

    def embed(input_dir=None, checkpoint=None, **kwargs):
        SSLDataset(input_dir)
        easyssl.api.load_model(checkpoint)  # fake.ckpt: a CheckpointError
        raise AssertionError("unreachable")

    monkeypatch.setattr(easyssl.api, "train_embedding_model", train)
    monkeypatch.setattr(easyssl.api, "embed_images", embed)
    monkeypatch.setattr(easyssl.data.demo, "make_demo_dataset", lambda output_dir, **kwargs: str(root / "junk"))


_WORDS = ["train", "embed", "run", "methods", "demo", "empty", "file.png", "junk", "missing/dir", "fake.ckpt", "x.csv", "x.npz", "x.txt"]
_VALUES = st.one_of(
    st.sampled_from(_WORDS),
    st.sampled_from(["0", "-1", "1e9", "nan", "00:00:00:01", "1:2:3:4:5", "model.width=abc", "loader.batch_size=[1]", "trainer.x=1",
                     "a=b", "model=1", "optimizer.lr=-1", "collate.input_size=0", "", "--", "-"]),
    st.integers(-5, 10**6).map(str),
    st.text(max_size=12),
)


@st.composite
def command_lines(draw):
    """An argument list that mostly gets past argparse: a sub-command, maybe a positional, its own options with
    values of the right type most of the time, and some noise."""
    command = draw(st.sampled_from(sorted(_COMMANDS) + ["nope", "--bogus"]))
    positional = st.sampled_from(_WORDS[5:]) if draw(st.integers(0, 9)) < 8 else _VALUES
    argv = [command] + draw(st.lists(positional, min_size=command in ("train", "embed", "demo"), max_size=1))
    if command == "embed" and draw(st.integers(0, 9)) < 8:
        argv += ["--checkpoint", draw(st.sampled_from(_WORDS[5:]))]
    options = _COMMANDS.get(command, [])
    for _ in range(draw(st.integers(0, 5))):
        if options and draw(st.integers(0, 9)) < 9:
            option, takes_value, kind = draw(st.sampled_from(options))
            argv.append(option)
            if takes_value:
                typed = st.integers(-3, 40).map(str) if kind is int else st.floats(-1, 4).map(str) if kind is float else _VALUES
                argv.append(draw(typed if draw(st.integers(0, 9)) < 9 else _VALUES))
        else:
            argv.append(draw(st.sampled_from(_OPTIONS) | _VALUES))
    return argv


@given(argv=command_lines())
@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], derandomize=True)
def test_cli_never_raises_on_malformed_arguments(cli_sandbox, monkeypatch, argv):
    from easyssl.cli import main

    command = argv[0]
    _stub_heavy_work(monkeypatch, cli_sandbox)
    monkeypatch.chdir(cli_sandbox)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse: usage errors (2), --help / --version (0)
            assert exit_.code in (0, 2), exit_.code
            event(f"argparse exit {exit_.code}")
            return
    event(f"{command} returned {code}")
    assert isinstance(code, int) and code in (0, 1, 2, 130)
    assert "Traceback" not in err.getvalue()
    if code != 0:
        assert err.getvalue().strip(), "a failure must say why"


def test_cli_embed_on_junk_files_reports_instead_of_crashing(cli_sandbox, capsys):
    from easyssl.cli import main

    code = main(["embed", str(cli_sandbox / "junk"), "--checkpoint", str(cli_sandbox / "fake.ckpt")])
    err = capsys.readouterr().err
    assert code == 1 and "not an easyssl checkpoint" in err and "Traceback" not in err


def test_cli_unexpected_errors_are_one_line(monkeypatch, capsys):
    import easyssl.cli

    def boom(args):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(easyssl.cli, "cmd_methods", boom)
    assert easyssl.cli.main(["methods"]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: kaboom" in err and "EASYSSL_DEBUG" in err and "Traceback" not in err
    monkeypatch.setenv("EASYSSL_DEBUG", "1")
    with pytest.raises(RuntimeError):
        easyssl.cli.main(["methods"])
