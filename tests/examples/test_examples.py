"""Every script in examples/ runs on tiny data (with --fast) and prints what it promises."""

import importlib.util
import os
import subprocess
import sys

import pytest

EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")

#: script -> (extra arguments, a line the output must contain)
EXAMPLES = {
    "quickstart.py": ([], "nearest-neighbour accuracy:"),
    "plain_pytorch_loop.py": ([], "embeddings: (30, 128)"),
    "similarity_search.py": (["--queries", "2", "-k", "3"], "query: "),
    "find_duplicates.py": (["--threshold", "0.9999"], "circle/circle_0003.png  circle/circle_0003_copy.png"),
    "diverse_subset.py": (["-n", "5"], "chose 5 of 30 images"),
    "active_learning.py": (["--start", "5", "--per-round", "5", "--rounds", "2"], "round 2: 10 labelled, accuracy on the other 20 images"),
    "finetune_classifier.py": ([], "test accuracy:"),
    "detection_backbone.py": ([], "detector output:"),
    "train_with_lightning.py": ([], "trained with Lightning for 2 steps"),  # pytorch-lightning is in the dev extra
}
NO_OUTPUT_DIR = {"plain_pytorch_loop.py"}
OWN_DATA = {"find_duplicates.py"}  # writes the demo set with planted duplicates itself


def _load(script):
    spec = importlib.util.spec_from_file_location(f"example_{script[:-3]}", os.path.join(EXAMPLES_DIR, script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from easyssl import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("examples") / "tiny", images_per_class=6, image_size=32)


def test_every_example_is_tested():
    scripts = {f for f in os.listdir(EXAMPLES_DIR) if f.endswith(".py") and not f.startswith("_")}
    assert scripts == set(EXAMPLES)


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_example_runs(script, tiny, tmp_path, capsys):
    extra, expected = EXAMPLES[script]
    argv = ["--fast", *extra]
    if script not in OWN_DATA:
        argv += ["--input-dir", tiny]
    if script not in NO_OUTPUT_DIR:
        argv += ["--output-dir", str(tmp_path / "out")]
    _load(script).main(argv)
    out = capsys.readouterr().out
    assert expected in out, out
    if script == "similarity_search.py":
        assert os.path.getsize(tmp_path / "out" / "neighbors.png") > 0
    if script == "train_with_lightning.py":
        assert "not installed" not in out and os.path.getsize(tmp_path / "out" / "backbone.pth") > 0


def test_examples_run_as_scripts(tmp_path):
    # Run from another folder, as a user would: imports resolve and --help works.
    for script in ("quickstart.py", "train_with_lightning.py"):
        result = subprocess.run([sys.executable, os.path.join(EXAMPLES_DIR, script), "--help"],
                                capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "--input-dir" in result.stdout and "--fast" in result.stdout
