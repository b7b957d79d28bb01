"""Pictures show themselves in a notebook and are still their path (issue 14.4)."""

from __future__ import annotations

import os
import pickle

import numpy as np

from easyssl import plot_embeddings, plot_nearest_neighbors
from easyssl.tools.picture import Picture
from tests.conftest import write_image


def test_plot_embeddings_returns_a_picture_that_is_its_path(tmp_path):
    path = str(tmp_path / "emb.png")
    emb = np.random.default_rng(0).normal(size=(30, 8)).astype("float32")
    picture = plot_embeddings(emb, np.arange(30) % 3, path, method="pca")
    assert isinstance(picture, Picture) and isinstance(picture, str)
    assert picture == path and os.fspath(picture) == path and picture.path == path and picture.endswith(".png")
    assert open(picture, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert picture._repr_png_() == open(path, "rb").read()  # what Jupyter shows
    assert picture.image().size == (800, 800)
    assert repr(picture) == f"Picture({path!r})" and pickle.loads(pickle.dumps(picture)) == picture


def test_plot_nearest_neighbors_returns_a_picture(tmp_path):
    images = [write_image(str(tmp_path / f"{i}.png"), seed=i) for i in range(3)]
    picture = plot_nearest_neighbors(images[:1], [images[1:]], str(tmp_path / "nn.png"))
    assert isinstance(picture, Picture) and picture._repr_png_().startswith(b"\x89PNG")


def test_a_missing_file_shows_as_text():
    assert Picture("/nonexistent/x.png")._repr_png_() is None
