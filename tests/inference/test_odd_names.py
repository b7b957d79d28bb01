"""Issue 13 item 5: odd file names survive every output exactly; symlink loops and unreadable files do not stop a run."""

import builtins
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from easyssl import embed_images, train_embedding_model
from easyssl.cli import main
from easyssl.cli.common import read_names, unquote_name
from easyssl.data import SSLDataset
from easyssl.inference import EmbeddingStreamWriter, load_embeddings, save_embeddings
from tests.conftest import fast_config, write_image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Names a folder on Linux can hold: commas, quotes, spaces, tabs, newlines, non-ASCII, bytes that are not UTF-8.
ODD = [
    "comma,name.png", 'double"quote.png', "single'quote.png", " leading and trailing space .png", "tab\tname.png",
    "new\nline.png", "carriage\rreturn.png", "héllo wörld 日本.png", os.fsdecode(b"bad\xff\xfebytes.png"),
    "#hash.png", '"quoted".png', "semi;colon=equals.png",
]


@pytest.mark.parametrize("extension", [".csv", ".npz"])
def test_odd_names_round_trip_through_embeddings_files(tmp_path, extension):
    embeddings = np.random.default_rng(0).standard_normal((len(ODD), 4)).astype(np.float32)
    path = save_embeddings(tmp_path / f"e{extension}", embeddings, list(range(len(ODD))), ODD)
    loaded, labels, names = load_embeddings(path)
    assert names == ODD and labels == list(range(len(ODD))) and np.array_equal(loaded, embeddings)
    with EmbeddingStreamWriter(tmp_path / f"s{extension}") as writer:
        writer.write(embeddings[:5], list(range(5)), ODD[:5])
        writer.write(embeddings[5:], list(range(5, len(ODD))), ODD[5:])
    assert load_embeddings(tmp_path / f"s{extension}")[2] == ODD


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd")
    folder = root / "images"
    for i, name in enumerate(ODD + [f"plain{i}.png" for i in range(6)]):
        write_image(os.path.join(str(folder), name), seed=i)
    checkpoint = train_embedding_model(str(folder), checkpoint_dir=str(root / "run"), **fast_config())
    return str(folder), checkpoint


def test_odd_names_survive_embedding_and_the_cli_tools(odd_folder, tmp_path, capsys):
    folder, checkpoint = odd_folder
    _, _, names = embed_images(folder, checkpoint, progress_bar=False, num_workers=0)
    assert sorted(ODD) == sorted(n for n in names if not n.startswith("plain"))
    for extension in (".csv", ".npz"):
        output = str(tmp_path / f"e{extension}")
        assert main(["embed", folder, "--checkpoint", checkpoint, "--output", output, "--num-workers", "0"]) == 0
        assert load_embeddings(output)[2] == names
    source = str(tmp_path / "e.csv")
    chosen = str(tmp_path / "chosen.txt")
    assert main(["select", "--embeddings", source, "-n", str(len(names)), "--output", chosen]) == 0
    with open(chosen, encoding="utf-8", errors="surrogateescape", newline="\n") as handle:
        lines = handle.read().split("\n")[:-1]
    assert len(lines) == len(names) and sorted(unquote_name(line) for line in lines) == sorted(names)
    assert sorted(read_names(chosen, names, "--labeled")) == list(range(len(names)))
    np.save(tmp_path / "p.npy", np.full((len(names), 2), 0.5))
    # Everything already labelled but the plain files: only those can be chosen.
    labeled = str(tmp_path / "labeled.txt")
    with open(chosen, "rb") as src, open(labeled, "wb") as dst:
        dst.write(b"".join(line + b"\n" for line in src.read().split(b"\n") if line and b"plain" not in line))
    picked = str(tmp_path / "next.txt")
    assert main(["label-next", "--embeddings", source, "--predictions", str(tmp_path / "p.npy"), "-n", "6",
                 "--labeled", labeled, "--output", picked]) == 0
    assert sorted(open(picked).read().split()) == [f"plain{i}.png" for i in range(6)]
    capsys.readouterr()


def test_similar_prints_undecodable_names_as_their_bytes(odd_folder, tmp_path):
    folder, checkpoint = odd_folder
    source = str(tmp_path / "e.npz")
    assert main(["embed", folder, "--checkpoint", checkpoint, "--output", source, "--num-workers", "0"]) == 0
    query = os.fsencode(os.path.join(folder, os.fsdecode(b"bad\xff\xfebytes.png")))
    env = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": ""}
    result = subprocess.run([sys.executable, "-m", "easyssl", "similar", "--embeddings", source, "--query", query, "-k", "3"],
                            cwd=ROOT, capture_output=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"query: bad\xff\xfebytes.png")


def test_symlink_loop_ends_the_scan_with_a_warning(tmp_path):
    folder = tmp_path / "images"
    write_image(str(folder / "a" / "x.png"))
    write_image(str(folder / "b" / "y.png"))
    os.symlink("..", folder / "a" / "up")          # a/up -> images: a loop
    os.symlink(str(folder / "b"), folder / "a" / "to_b")  # a plain link to another folder: followed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = SSLDataset(str(folder))
    assert dataset.filenames == ["a/to_b/y.png", "a/x.png", "b/y.png"]
    assert any("a/up" in str(w.message) and "link back" in str(w.message) for w in caught)


def _deny(monkeypatch, denied):
    """Make opening ``denied`` fail as a file without read permission does (tests run as root, where chmod 000 does not)."""
    real_open = builtins.open

    def fake_open(file, *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and os.fspath(file) == denied:
            raise PermissionError(13, "Permission denied", denied)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)


def test_unreadable_file_is_skipped_and_named_like_a_corrupt_one(tmp_path, monkeypatch):
    folder = tmp_path / "images"
    for i in range(4):
        write_image(str(folder / f"img{i}.png"), seed=i)
    (folder / "corrupt.png").write_bytes(b"not an image")
    _deny(monkeypatch, str(folder / "img2.png"))
    dataset = SSLDataset(str(folder))
    with pytest.warns(UserWarning, match="img2.png.*Permission denied"):
        items = [dataset[i] for i in range(len(dataset))]
    assert [name for sample, _, name in items if sample is None] == ["corrupt.png", "img2.png"]
    assert dataset.skipped_files() == ["corrupt.png", "img2.png"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_chmod_000_file_is_skipped(tmp_path):
    folder = tmp_path / "images"
    for i in range(3):
        write_image(str(folder / f"img{i}.png"), seed=i)
    os.chmod(folder / "img1.png", 0)
    dataset = SSLDataset(str(folder))
    with pytest.warns(UserWarning, match="img1.png"):
        assert dataset[1][0] is None
    assert dataset.skipped_files() == ["img1.png"]
