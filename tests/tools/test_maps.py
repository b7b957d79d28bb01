"""Maps people can read (issue 16 item 5): UMAP / t-SNE / PCA choice, outlier-robust framing,
thumbnails on a grid, scaled text, class names from folder names."""

import importlib
import numpy as np
import pytest
from PIL import Image, ImageDraw

from easyssl import plot_embeddings
from easyssl.tools import manifold
from easyssl.tools.manifold import project_2d, resolve_map_method
from easyssl.tools.projection import folder_class_names, frame_bounds, grid_snap, load_font, pixel_positions
from easyssl.tools.visualize import map_caption


def blobs(n_per=30, dim=32, seed=0):
    """Four well separated Gaussian blobs in ``dim`` dimensions (away from the origin, as cosine maps need)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, dim)) * 3
    labels = np.repeat(np.arange(4), n_per)
    return (centres[labels] + 0.3 * rng.normal(size=(len(labels), dim))).astype(np.float32), labels


def separated(xy, labels):
    """Every point's nearest other point (in 2-D) has its label."""
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2) + 1e9 * np.eye(len(xy))
    return (labels[d.argmin(axis=1)] == labels).mean()


# --------------------------------------------------------------------------- method choice
@pytest.mark.parametrize("installed, expected", [({"umap", "sklearn"}, "umap"), ({"sklearn"}, "tsne"), (set(), "pca")])
def test_auto_picks_umap_then_tsne_then_pca(monkeypatch, installed, expected):
    monkeypatch.setattr(manifold, "_installed", lambda module: module in installed)
    assert resolve_map_method("auto") == expected
    assert resolve_map_method("pca") == "pca"
    for method, package in (("umap", "umap-learn"), ("tsne", "scikit-learn")):
        if method == expected or (method == "tsne" and "sklearn" in installed):
            assert resolve_map_method(method) == method
        else:
            with pytest.raises(ImportError, match=f"pip install {package}"):
                resolve_map_method(method)
    with pytest.raises(ValueError, match="method must be one of"):
        resolve_map_method("mds")
    assert map_caption(expected, "auto").startswith({"umap": "UMAP (auto", "tsne": "t-SNE (auto", "pca": "PCA (auto"}[expected])


def test_pca_fallback_when_nothing_is_installed(monkeypatch, tmp_path):
    monkeypatch.setattr(manifold, "_installed", lambda module: False)
    emb, labels = blobs()
    xy, used = project_2d(emb)
    assert used == "pca" and xy.shape == (len(emb), 2)
    assert plot_embeddings(emb, labels, tmp_path / "p.png", size=(300, 300)).endswith("p.png")
    xy, used = project_2d(emb[:5], "pca")  # a handful of points: PCA whatever was asked
    assert used == "pca"


def test_tsne_keeps_neighbours_together():
    importlib.import_module("sklearn")
    emb, labels = blobs()
    xy, used = project_2d(emb, "tsne")
    assert used == "tsne" and separated(xy, labels) == 1.0
    xy_small, used = project_2d(emb[:6], "tsne")  # too few points for t-SNE: PCA
    assert used == "pca"


def test_umap_keeps_neighbours_together_and_is_deterministic():
    importlib.import_module("umap")  # in the dev extra
    emb, labels = blobs()
    xy, used = project_2d(emb, "umap")
    assert used == "umap" and separated(xy, labels) == 1.0
    np.testing.assert_allclose(project_2d(emb, "umap")[0], xy)


# --------------------------------------------------------------------------- framing
def test_framing_ignores_outliers(tmp_path):
    emb, labels = blobs(n_per=50, dim=2, seed=1)
    emb[0] = [1e4, 1e4]  # two far outliers
    emb[1] = [-1e4, 5e3]
    xy, _ = project_2d(emb, "pca")
    lo, hi = frame_bounds(xy)
    inside = ~(((xy < lo) | (xy > hi)).any(axis=1))
    assert not inside[0] and not inside[1] and inside[2:].all()
    size = (400, 400)
    pixels = pixel_positions(emb, labels, size=size, method="pca")
    spread = pixels[2:].max(axis=0) - pixels[2:].min(axis=0)
    assert spread.max() > 200  # the 198 ordinary points fill the map, not a corner of it
    path = plot_embeddings(emb, labels, tmp_path / "o.png", size=size, method="pca")
    img = Image.open(path).convert("RGB")
    for i in (0, 1):  # the outliers are drawn on the border, outlined in black
        x, y = pixels[i]
        patch = np.asarray(img)[max(0, y - 6): y + 7, max(0, x - 6): x + 7]
        assert (patch.sum(axis=2) == 0).any()
    assert "2 outliers on the border" in map_caption("pca", "pca", 2)


# --------------------------------------------------------------------------- thumbnails
def test_grid_snap_places_thumbnails_without_overlap():
    rng = np.random.default_rng(0)
    pixels = rng.integers(10, 390, size=(500, 2))
    idx, corners = grid_snap(pixels, (10, 10, 390, 390), 40)
    assert len(set(map(tuple, corners.tolist()))) == len(idx)  # one thumbnail per square
    assert (corners % 1 == 0).all() and len(idx) <= 9 * 9
    # each thumbnail's square holds its point
    assert ((pixels[idx] >= corners - 1) & (pixels[idx] <= corners + 40)).all()


def test_thumbnail_map_draws_each_image_at_its_place(tmp_path):
    emb, labels = blobs(n_per=10, dim=2, seed=2)
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    folder = tmp_path / "images"
    filenames = []
    for i, label in enumerate(labels):
        (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
        name = f"class{label}/{i:03d}.png"
        Image.new("RGB", (20, 20), colours[label]).save(folder / name)
        filenames.append(name)
    size, thumb = (400, 400), 40
    path = plot_embeddings(emb, labels, tmp_path / "t.png", size=size, method="pca", thumbnails=True,
                           input_dir=folder, filenames=filenames, thumb_size=thumb)
    img = np.asarray(Image.open(path).convert("RGB"))
    from easyssl.tools.projection import map_points

    placed = map_points(emb, labels, size=size, method="pca", class_names=folder_class_names(labels, filenames))
    idx, corners = grid_snap(placed["pixels"], placed["layout"]["box"], thumb)
    assert len(idx) >= 4
    for i, (x0, y0) in zip(idx.tolist(), corners.tolist()):
        assert tuple(img[y0 + thumb // 2, x0 + thumb // 2]) == colours[labels[i]]  # the image's own colour
    with pytest.raises(ValueError, match="thumbnails=True needs the images"):
        plot_embeddings(emb, labels, tmp_path / "x.png", method="pca", thumbnails=True)


# --------------------------------------------------------------------------- text and class names
def test_text_scales_with_the_picture():
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    small, large = (draw.textbbox((0, 0), "Ag", font=load_font(s))[3] for s in (11, 24))
    assert large > small >= 9  # a scalable font, not the 11-px bitmap whatever the size


def test_class_names_come_from_folder_names(tmp_path):
    emb, labels = blobs(n_per=5, dim=8)
    names = ["cat", "dog", "car", "bus"]
    filenames = [f"{names[c]}/{i}.png" for i, c in enumerate(labels)]
    assert folder_class_names(labels, filenames) == dict(enumerate(names))
    assert folder_class_names(labels, [f"{i}.png" for i in range(len(labels))]) is None
    kw = dict(size=(400, 300), method="pca")
    by_files = plot_embeddings(emb, labels, tmp_path / "a.png", filenames=filenames, **kw)
    given = plot_embeddings(emb, labels, tmp_path / "b.png", class_names=names, **kw)
    bare = plot_embeddings(emb, labels, tmp_path / "c.png", **kw)
    a, b, c = (np.asarray(Image.open(p)) for p in (by_files, given, bare))
    assert (a == b).all() and not (a == c).all()  # the legend says cat/dog/car/bus, not 0/1/2/3
    for name in names:
        (tmp_path / "folder" / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "folder" / name / "x.png")
    by_dir = plot_embeddings(emb, labels, tmp_path / "d.png", input_dir=tmp_path / "folder", **kw)
    assert (np.asarray(Image.open(by_dir)) == np.asarray(Image.open(plot_embeddings(
        emb, labels, tmp_path / "e.png", class_names=sorted(names), **kw)))).all()


def test_auto_keeps_large_sets_fast(monkeypatch):
    monkeypatch.setattr(manifold, "_installed", lambda module: True)
    assert resolve_map_method("auto", 50_000) == "umap"
    assert resolve_map_method("auto", 500_000) == "pca"  # UMAP of half a million points takes long: name it to get it
    monkeypatch.setattr(manifold, "_installed", lambda module: module == "sklearn")
    assert resolve_map_method("auto", 5_000) == "tsne" and resolve_map_method("auto", 50_000) == "pca"
    assert "more than UMAP / t-SNE take by default" in map_caption("pca", "auto", 0, 50_000)
    assert "too few points" in map_caption("pca", "auto", 0, 5)
