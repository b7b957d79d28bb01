"""examples/benchmarks/budget_curve.py draws the README's budget curve from its JSON figures."""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import numpy as np
from PIL import Image

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples", "benchmarks")


def _load():
    sys.path.insert(0, BENCHMARKS)
    try:
        spec = importlib.util.spec_from_file_location("budget_curve", os.path.join(BENCHMARKS, "budget_curve.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(BENCHMARKS)
    return module


FIGURES = {
    "machine": "test machine",
    "raw_pixels": {"knn_top1_k200": 0.72, "knn_top1_k200_whitened": 0.85},
    "budgets": [
        {"minutes": m, "easyssl": {"knn_top1_k200": 0.80 + 0.01 * i, "knn_top1_k200_unwhitened": 0.75 + 0.01 * i},
         "lightly": {"knn_top1_k200": 0.50 + 0.02 * i, "knn_top1_k200_whitened": 0.6}}
        for i, m in enumerate((1, 2, 5, 10))
    ],
}


def test_the_curve_is_drawn_from_the_json_of_a_run(tmp_path):
    curve = _load()
    figures_path = tmp_path / "curve.json"
    figures_path.write_text(json.dumps(FIGURES))
    png = tmp_path / "curve.png"
    curve.main(["--plot-only", str(figures_path), "--png", str(png)])
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    # matplotlib's tab:blue (31, 119, 180) and tab:orange (255, 127, 14): both libraries' lines are drawn
    for colour in ((31, 119, 180), (255, 127, 14)):
        assert (np.abs(pixels - colour).sum(axis=2) < 30).sum() > 200, colour


def test_a_budget_without_the_peer_draws_only_easyssl(tmp_path):
    curve = _load()
    figures = json.loads(json.dumps(FIGURES))
    for row in figures["budgets"]:
        del row["lightly"]
    png = curve.plot_curve(figures, str(tmp_path / "ours.png"))
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    assert (np.abs(pixels - (31, 119, 180)).sum(axis=2) < 30).sum() > 200
    assert (np.abs(pixels - (255, 127, 14)).sum(axis=2) < 30).sum() == 0
