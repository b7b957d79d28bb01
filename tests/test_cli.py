import os

import numpy as np
import pytest

from easyssl import embed_images, load_embeddings
from easyssl.cli import main

FAST_FLAGS = ["--input-size", "32", "--width", "0.125", "--batch-size", "8", "--num-workers", "0", "--quiet"]


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "easyssl run" in out and "easyssl embed" in out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--max-time" in capsys.readouterr().out


def test_train_then_embed(demo_folder, tmp_path, capsys):
    assert main(["train", demo_folder, "--epochs", "1", "--checkpoint-dir", str(tmp_path / "run"), *FAST_FLAGS]) == 0
    checkpoint = str(tmp_path / "run" / "last.ckpt")
    assert f"checkpoint: {checkpoint}" in capsys.readouterr().out
    output = str(tmp_path / "emb.csv")
    assert main(["embed", demo_folder, "--checkpoint", checkpoint, "--output", output, "--quiet"]) == 0
    embeddings, labels, filenames = load_embeddings(output)
    assert embeddings.shape == (40, 64) and len(set(labels)) == 5
    # whitened by default (centred: negative values); --raw-features gives the ReLU features, as embed_images(whiten=False)
    raw_output = str(tmp_path / "raw.csv")
    assert main(["embed", demo_folder, "--checkpoint", checkpoint, "--output", raw_output, "--quiet", "--raw-features"]) == 0
    raw, raw_labels, raw_names = load_embeddings(raw_output)
    assert (embeddings < 0).any() and (raw >= 0).all() and raw_names == filenames
    expected, _, _ = embed_images(demo_folder, checkpoint, progress_bar=False, whiten=False)
    np.testing.assert_allclose(raw, expected, rtol=1e-3, atol=1e-4)


def test_run_on_a_folder_with_set_overrides(demo_folder, tmp_path, capsys):
    output = str(tmp_path / "emb.npz")
    code = main(["run", demo_folder, "--max-steps", "2", "--output", output, "--checkpoint-dir", str(tmp_path / "r"),
                 "--set", "optimizer.name=adamw", "--set", "optimizer.lr=0.001", *FAST_FLAGS])
    assert code == 0 and os.path.isfile(output)
    out = capsys.readouterr().out
    assert "embedded 40 images" in out and "label agreement" in out


def test_errors_are_one_line_and_non_zero(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", str(tmp_path), "--set", "oops"]) != 0
    assert main(["train", str(tmp_path), "--epochs", "1", "--set", "model.colour=red"]) == 1
    err = capsys.readouterr().err
    assert "error:" in err


def test_methods_lists_simclr(capsys):
    assert main(["methods"]) == 0
    assert "simclr" in capsys.readouterr().out


def test_run_without_a_folder_uses_the_built_in_demo(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the demo set is written to the temporary folder
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    output = str(tmp_path / "emb.csv")
    assert main(["run", "--max-steps", "2", "--output", output, "--checkpoint-dir", str(tmp_path / "r"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "built-in demo set of 200 shape images" in out and "embedded 200 images" in out
    embeddings, labels, filenames = load_embeddings(output)
    assert embeddings.shape[0] == 200 and sorted(set(labels)) == [0, 1, 2, 3, 4]
    assert os.path.isdir(tmp_path / "easyssl_demo" / "circle")


@pytest.mark.parametrize("method", ["moco", "mocov3", "byol", "simsiam", "barlowtwins", "dino", "swav", "nnclr", "vicreg", "mae"])
def test_every_method_trains_and_embeds_from_the_cli(method, demo_folder, tmp_path):
    from easyssl import load_checkpoint

    flags = ["--input-size", "32", "--batch-size", "8", "--num-workers", "0", "--quiet"]
    flags += ["--backbone", "vit-tiny"] if method == "mae" else ["--width", "0.125"]
    run_dir = tmp_path / "run"
    assert main(["train", demo_folder, "--method", method, "--max-steps", "2", "--checkpoint-dir", str(run_dir), *flags]) == 0
    assert load_checkpoint(run_dir / "last.ckpt")["method"] == method
    output = str(tmp_path / "emb.npz")
    assert main(["embed", demo_folder, "--checkpoint", str(run_dir / "last.ckpt"), "--output", output, "--quiet"]) == 0
    embeddings, labels, filenames = load_embeddings(output)
    assert embeddings.shape[0] == 40 and embeddings.dtype.name == "float32"
