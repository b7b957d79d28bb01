"""The tuning screen's choice of images (``examples/benchmarks/tuning_screen.py``): each count of training and test
images has a folder of its own, and the benchmark split keeps its fixed images."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "benchmarks"))

import tuning_screen  # noqa: E402


def test_each_image_count_has_a_folder_of_its_own():
    # the folders the screens of docs/tuning_notes.md read, unchanged by the new option
    assert tuning_screen.split_folder("tuning") == "bench_data/fashion_mnist_tuning"
    assert tuning_screen.split_folder("tuning", 10_000, (10_000, 40_000)) == "bench_data/fashion_mnist_tuning_test10000_40000"
    # 20,000 training images go to another folder, not into the 10,000-image one (build_folder only adds images)
    larger = tuning_screen.split_folder("tuning", 20_000, (10_000, 50_000))
    assert larger == "bench_data/fashion_mnist_tuning_train20000_test10000_50000"


def test_the_benchmark_split_keeps_its_training_images(capsys):
    with pytest.raises(SystemExit):
        tuning_screen.main(["--split", "benchmark", "--train-images", "20000", "--budget", "1"])
    assert "--train-images are for the splits cut from the training set" in capsys.readouterr().err
