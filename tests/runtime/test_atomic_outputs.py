"""Issue 13 item 3: every output file is written atomically; a full disk mid-write keeps the previous file."""

import errno
import io
import os

import numpy as np
import pytest

import easyssl.runtime.files as files
from easyssl.cli import main
from easyssl.inference import EmbeddingStreamWriter, load_embeddings, save_embeddings
from easyssl.nn import backbone
from easyssl.runtime.checkpoint import save_checkpoint
from easyssl.tools.export import export_backbone
from easyssl.tools.visualize import plot_embeddings


class FullDisk:
    """A file handle that accepts ``budget`` bytes, then fails as a full disk does (ENOSPC)."""

    def __init__(self, handle, budget):
        self._handle = handle
        self._budget = budget

    def write(self, data):
        self._budget -= len(data)
        if self._budget < 0:
            self._handle.write(data[: max(0, len(data) + self._budget)])  # half of it reaches the file
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._handle.write(data)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def fileno(self):  # writers that bypass write() through the descriptor (PIL) must go through write() too
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()


@pytest.fixture()
def full_disk(monkeypatch):
    """From now on every atomic write fails with ENOSPC after 16 bytes."""
    real = files.os.fdopen

    def fdopen(fd, *args, **kwargs):
        return FullDisk(real(fd, *args, **kwargs), 16)

    def start():
        monkeypatch.setattr(files.os, "fdopen", fdopen)

    return start


def _writers(tmp_path):
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((50, 8)).astype(np.float32)
    names = [f"img{i}.png" for i in range(50)]
    net = backbone("resnet-18", width=0.125, input_size=32)
    wide = backbone("resnet-18", width=1.0, input_size=32)

    def stream(path):
        with EmbeddingStreamWriter(path) as writer:
            writer.write(emb, list(range(50)), names)

    return {
        "embeddings.csv": lambda p: save_embeddings(p, emb, None, names),
        "embeddings.npz": lambda p: save_embeddings(p, emb, None, names),
        "streamed.csv": stream,
        "streamed.npz": stream,
        "backbone.pth": lambda p: export_backbone(wide, p, format="torchvision"),
        "backbone.pt": lambda p: export_backbone(net, p, format="easyssl"),
        "picture.png": lambda p: plot_embeddings(emb, list(range(50)), p),
        "last.ckpt": lambda p: save_checkpoint(p, {"model": net.state_dict(), "epoch": 3}),
        "backbone.safetensors": lambda p: export_backbone(net, p, format="safetensors"),
    }


@pytest.mark.parametrize("name", ["embeddings.csv", "embeddings.npz", "streamed.csv", "streamed.npz", "backbone.pth",
                                  "backbone.pt", "picture.png", "last.ckpt", "backbone.safetensors"])
def test_full_disk_keeps_the_previous_file(tmp_path, full_disk, name):
    write = _writers(tmp_path)[name]
    path = str(tmp_path / name)
    write(path)
    before = open(path, "rb").read()
    full_disk()
    with pytest.raises(OSError) as caught:
        write(path)
    assert caught.value.errno == errno.ENOSPC
    message = str(caught.value)
    assert path in message and "no space left" in message and "previous file is left as it was" in message
    assert "\n" not in message
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == [name], "a temporary file was left behind"


def test_previous_file_still_loads_after_a_failed_write(tmp_path, full_disk):
    path = str(tmp_path / "e.npz")
    save_embeddings(path, np.ones((3, 2)), [0, 1, 2], ["a", "b", "c"])
    full_disk()
    with pytest.raises(OSError):
        save_embeddings(path, np.zeros((30, 2)), None, [str(i) for i in range(30)])
    assert load_embeddings(path)[2] == ["a", "b", "c"]
    ckpt = str(tmp_path / "c.ckpt")
    with pytest.raises(OSError):
        save_checkpoint(ckpt, {"epoch": 1})
    assert not os.path.exists(ckpt)


@pytest.mark.parametrize("command", ["select", "duplicates", "label-next"])
def test_cli_output_on_a_full_disk_exits_2_with_one_line_naming_the_path(tmp_path, full_disk, capsys, command):
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((40, 6)).astype(np.float32)
    emb[1] = emb[0]  # one duplicate pair
    names = [f"dir/img{i}.png" for i in range(40)]
    source = str(tmp_path / "e.csv")
    save_embeddings(source, emb, None, names)
    np.save(tmp_path / "p.npy", rng.dirichlet(np.ones(3), 40))
    output = str(tmp_path / "out.txt")
    with open(output, "w") as handle:
        handle.write("the previous result\n")
    argv = {"select": ["select", "--embeddings", source, "-n", "30", "--output", output],
            "duplicates": ["duplicates", "--embeddings", source, "--threshold", "0.99", "--output", output],
            "label-next": ["label-next", "--embeddings", source, "--predictions", str(tmp_path / "p.npy"), "-n", "30", "--output", output]}[command]
    full_disk()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and output in err and "no space left" in err
    assert open(output).read() == "the previous result\n"


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("old")
    with pytest.raises(ValueError):
        with files.atomic_write(path, "w") as handle:
            handle.write("new, half")
            raise ValueError("the writer failed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["x.txt"]
    with files.atomic_write(path, "w") as handle:
        handle.write("new")
    assert path.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask, "the output has a plain file's permissions, not 0600"


def test_full_disk_while_streaming_names_the_output_and_keeps_the_previous_file(tmp_path, monkeypatch):
    import builtins

    import easyssl.inference.streaming as streaming

    path = str(tmp_path / "streamed.npz")
    save_embeddings(path, np.ones((2, 3)), None, ["a", "b"])
    real_open = builtins.open
    monkeypatch.setattr(streaming, "open", lambda *a, **k: FullDisk(real_open(*a, **k), 100), raising=False)
    writer = EmbeddingStreamWriter(path)
    with pytest.raises(OSError) as caught:
        for _ in range(10):
            writer.write(np.zeros((4, 3), np.float32), [0] * 4, ["x"] * 4)
    writer.abort()
    assert path in str(caught.value) and "no space left" in str(caught.value)
    assert load_embeddings(path)[2] == ["a", "b"] and sorted(os.listdir(tmp_path)) == ["streamed.npz"]
