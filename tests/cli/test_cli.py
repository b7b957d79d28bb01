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
    assert embeddings.shape == (40, 96) and len(set(labels)) == 5
    # whitened by default; --raw-features gives the model's own features, as embed_images(whiten=False)
    raw_output = str(tmp_path / "raw.csv")
    assert main(["embed", demo_folder, "--checkpoint", checkpoint, "--output", raw_output, "--quiet", "--raw-features"]) == 0
    raw, raw_labels, raw_names = load_embeddings(raw_output)
    assert raw.shape == embeddings.shape and not np.allclose(raw, embeddings, atol=1e-2) and raw_names == filenames
    expected, _, _ = embed_images(demo_folder, checkpoint, progress_bar=False, whiten=False)
    np.testing.assert_allclose(raw, expected, rtol=1e-3, atol=1e-4)


def test_run_on_a_folder_with_set_overrides(demo_folder, tmp_path, capsys):
    output = str(tmp_path / "emb.npz")
    code = main(["run", demo_folder, "--max-steps", "2", "--output", output, "--checkpoint-dir", str(tmp_path / "r"),
                 "--set", "optimizer.name=adamw", "--set", "optimizer.lr=0.001", *FAST_FLAGS])
    assert code == 0 and os.path.isfile(output)
    out = capsys.readouterr().out
    assert "embedded 40 images" in out and "label agreement" in out


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    for argv, message in [
        (["train", str(tmp_path / "nope")], "does not exist"),
        (["train", str(tmp_path), "--set", "oops"], "use SECTION.KEY=VALUE"),
        (["train", str(tmp_path), "--epochs", "1", "--set", "model.colour=red"], "unknown config key(s) 'colour'"),
        (["train", str(tmp_path), "--epochs", "1"], "contains no image files"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("easyssl train: error:") and message in err and len(err.splitlines()) == 1


def test_the_command_table_lists_every_command_explicitly():
    import argparse

    import easyssl.cli
    from easyssl.cli import COMMANDS, build_parser

    names = [command.name for command in COMMANDS]
    assert names == ["train", "embed", "run", "methods", "demo", "similar", "duplicates", "select", "label-next", "plot", "export"]
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == names  # the parser holds exactly the table, in its order
    assert all(sub.choices[c.name].get_default("run") is c.run for c in COMMANDS)
    assert not hasattr(easyssl.cli, "EXTRA_COMMANDS")


def test_importing_a_command_module_registers_nothing():
    # No command is added by importing a module as a side effect: re-importing every command module
    # in a fresh interpreter, in any order, leaves the table and the parser as they are.
    import subprocess
    import sys

    code = (
        "import importlib, easyssl.cli as cli\n"
        "before = [c.name for c in cli.COMMANDS]\n"
        "for name in ('export', 'plot', 'selection', 'search', 'train', 'common'):\n"
        "    importlib.reload(importlib.import_module('easyssl.cli.' + name))\n"
        "assert [c.name for c in cli.COMMANDS] == before, before\n"
        "sub = [a for a in cli.build_parser()._actions if hasattr(a, 'choices') and a.choices][0]\n"
        "assert list(sub.choices) == before, list(sub.choices)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


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
