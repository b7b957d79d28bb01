"""Issue 13 item 1: checkpoints and exported backbones load without unpickling code (weights_only=True)."""

import importlib
import io
import os
import pickle

import numpy as np
import pytest
import torch

from easyssl import embed_images, train_embedding_model
from easyssl.cli import main
from easyssl.runtime.checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from easyssl.runtime.rng import get_rng_state, set_rng_state
from easyssl.tools.export import BACKBONE_FORMAT, export_backbone, load_backbone
from tests.conftest import fast_config


class Plant:
    """Unpickling this object creates the file ``path`` (it asks pickle to call ``open(path, "w")``)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from easyssl import make_demo_dataset

    root = tmp_path_factory.mktemp("safe")
    folder = make_demo_dataset(root / "demo", images_per_class=4, image_size=32)
    checkpoint = train_embedding_model(folder, checkpoint_dir=str(root / "run"), **fast_config())
    return folder, checkpoint


def _planted(path, marker, format=CHECKPOINT_FORMAT, template=None):
    state = dict(template or {})
    state.update({"format": format, "payload": Plant(marker)})
    torch.save(state, path)
    return str(path)


def test_checkpoint_holds_only_tensors_and_plain_values(trained):
    _, checkpoint = trained
    state = torch.load(checkpoint, weights_only=True)  # raises on any other object
    assert state["format"] == CHECKPOINT_FORMAT
    assert isinstance(state["rng"]["numpy"][1], torch.Tensor)


def test_planted_pickle_is_refused_everywhere_and_never_runs(trained, tmp_path, capsys):
    folder, checkpoint = trained
    marker = tmp_path / "pwned.txt"
    template = torch.load(checkpoint, weights_only=True)
    planted = _planted(tmp_path / "downloaded.ckpt", marker, template=template)

    with pytest.raises(CheckpointError, match=r"refusing to load.*\(io\.open\)"):
        embed_images(folder, planted, progress_bar=False)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(planted)
    with pytest.raises(CheckpointError, match="refusing to load"):
        export_backbone(planted, tmp_path / "backbone.pth")

    code = main(["embed", folder, "--checkpoint", planted, "--output", str(tmp_path / "e.csv"), "--num-workers", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "refusing to load" in err and len(err.strip().splitlines()) == 1

    run = tmp_path / "run"
    run.mkdir()
    _planted(run / "last.ckpt", marker, template=template)
    with pytest.raises(CheckpointError, match="refusing to load"):
        train_embedding_model(folder, checkpoint_dir=str(run), resume=True, **fast_config())

    backbone = _planted(tmp_path / "backbone.pt", marker, format=BACKBONE_FORMAT)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_backbone(backbone)
    assert not marker.exists(), "unpickling the planted object ran code"


def test_plain_pickle_file_is_refused(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "raw.ckpt"
    with open(path, "wb") as handle:
        pickle.dump({"format": CHECKPOINT_FORMAT, "payload": Plant(marker)}, handle)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()


def test_older_checkpoint_with_numpy_rng_state_still_loads(trained, tmp_path):
    """Checkpoints written before this change held NumPy's random state as a NumPy array."""
    _, checkpoint = trained
    state = torch.load(checkpoint, weights_only=True)
    np.random.seed(5)
    state["rng"]["numpy"] = np.random.get_state()  # the old form: ('MT19937', ndarray, ...)
    old = tmp_path / "old.ckpt"
    torch.save(state, old)
    with pytest.raises(Exception):
        torch.load(old, weights_only=True)  # plain weights_only refuses numpy arrays
    loaded = load_checkpoint(old)
    expected = np.random.rand(3)
    set_rng_state({"numpy": loaded["rng"]["numpy"]})
    assert np.array_equal(np.random.rand(3), expected)
    embeddings, _, _ = embed_images(trained[0], str(old), progress_bar=False, num_workers=0)
    assert embeddings.shape[0] == 20


def test_rng_state_round_trips_through_weights_only():
    state = get_rng_state()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    restored = torch.load(buffer, weights_only=True)
    expected = (np.random.rand(2), torch.rand(2))
    set_rng_state(restored)
    assert np.array_equal(np.random.rand(2), expected[0]) and torch.equal(torch.rand(2), expected[1])


def test_save_checkpoint_refuses_objects_that_would_need_unpickling(tmp_path):
    with pytest.raises(TypeError, match=r"state\['extra'\]"):
        save_checkpoint(tmp_path / "x.ckpt", {"extra": object()})
    assert not (tmp_path / "x.ckpt").exists()
    import datetime

    path = save_checkpoint(tmp_path / "y.ckpt", {"config": {"max_time": datetime.timedelta(minutes=2), "a": np.float32(1.5)}})
    assert load_checkpoint(path)["config"] == {"max_time": 120.0, "a": 1.5}


def test_safetensors_export_round_trip(trained, tmp_path):
    importlib.import_module("safetensors")
    _, checkpoint = trained
    path = export_backbone(checkpoint, tmp_path / "backbone.safetensors", format="safetensors")
    from safetensors.torch import load_file

    assert load_file(path)  # a plain safetensors file that hubs read
    net = load_backbone(path)
    reference = load_backbone(export_backbone(checkpoint, tmp_path / "backbone.pt", format="easyssl"))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net(x), reference(x))
    assert main(["export", "--checkpoint", checkpoint, "--output", str(tmp_path / "cli.safetensors"), "--format", "safetensors"]) == 0
    assert os.path.getsize(tmp_path / "cli.safetensors") > 0
