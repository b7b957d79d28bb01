"""Precision and recall of find_duplicates on planted near-duplicates (issue 16 item 6), on a small real set:
93 colour tiles (40 px) of scikit-learn's two sample photos, a degraded copy of a dozen of them, raw 12 x 12 RGB
pixels as embeddings (no training: fast). The measuring code is the benchmark's own
(examples/benchmarks/near_duplicates.py)."""

import importlib
import os
import sys

import numpy as np
import pytest
from PIL import Image

from easyssl import find_duplicates

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "benchmarks"))
import near_duplicates as bench  # noqa: E402


def pixels(folder):
    files = sorted(os.listdir(folder))
    vectors = [np.asarray(Image.open(os.path.join(folder, f)).convert("RGB").resize((12, 12), Image.Resampling.BOX),
                          dtype=np.float32).ravel() for f in files]
    return np.stack(vectors), files


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    importlib.import_module("sklearn")  # its sample photos (scikit-learn is in the dev extra)
    root = tmp_path_factory.mktemp("planted")
    tiles, _ = bench.sample_photos(tile=40, packages=("sklearn",))
    os.makedirs(root / "distinct")
    for i, tile in enumerate(tiles):
        tile.save(root / "distinct" / f"{i:03d}.png")
    info = bench.build_sets(str(root / "distinct"), str(root / "sets"), 100, 12, seed=0, photos=False)
    return (*pixels(root / "sets" / "planted"), *pixels(root / "sets" / "clean"), info["pairs"])


def test_degradations_make_near_copies():
    rng = np.random.default_rng(0)
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, size=(28, 28), dtype=np.uint8))
    for kind in bench.DEGRADATIONS:
        copy = bench.degrade(image, kind, rng)
        assert copy.mode == image.mode and copy.size[0] >= 23  # a crop keeps 85-95 % of each side
        assert not np.array_equal(np.asarray(copy.resize(image.size)), np.asarray(image))
    with pytest.raises(ValueError):
        bench.degrade(image, "rotate", rng)


def test_pair_scores_count_group_pairs():
    files = ["a", "b", "c", "d"]
    truth = {frozenset(("a", "b"))}
    assert bench.pair_scores([[0, 1, 2]], files, truth) == (3, 1)  # a group of 3 is 3 pairs, one of them planted
    assert bench.pair_scores([], files, truth) == (0, 0)


def test_planted_duplicates_precision_and_recall(planted):
    emb, files, clean, clean_files, pairs = planted
    assert len(pairs) == 12 and len(files) == len(clean_files) + 12
    threshold_only = {"views": False, "ratio": None, "threshold": 0.9, "linkage": "single"}  # the rule before
    mutual, loose, ratio, complete = bench.evaluate(emb, files, clean, clean_files, pairs,
                                                    [{**threshold_only, "mutual": True}, threshold_only, {"views": False},
                                                     {**threshold_only, "linkage": "complete"}])
    assert mutual["mutual"] is True and ratio["views"] is False  # each row names its setting
    # Every copy is found; all-neighbour links also chain look-alike tiles (sky, petals) into groups. The ratio
    # test, from the whole images' pixels alone, misses one cropped copy.
    assert mutual["recall"] == loose["recall"] == 1.0 and ratio["recall"] == 11 / 12
    assert ratio["recall_jpeg"] == ratio["recall_resize"] == ratio["recall_brightness"] == 1.0
    assert mutual["precision"] >= 0.8 > 0.6 > loose["precision"]
    assert ratio["precision"] >= 0.75  # the ratio test stops the chains without needing mutual neighbours
    assert mutual["clean_set_images_in_groups"] < loose["clean_set_images_in_groups"]
    # Complete linkage (the default) breaks the chains too: a group only where every two members are linked.
    assert complete["found_pairs"] < loose["found_pairs"] and complete["precision"] > loose["precision"]
    assert complete["recall"] == loose["recall"]
    strict, = bench.evaluate(emb, files, clean, clean_files, pairs, [{**threshold_only, "mutual": True, "threshold": 0.98}])
    assert strict["precision"] == 1.0 and strict["clean_set_groups"] == 0 and strict["recall_jpeg"] == 1.0
    assert all(len(g) == 2 for g in find_duplicates(emb, 0.9, ratio=None, mutual=True))  # mutual nearest neighbours: pairs
