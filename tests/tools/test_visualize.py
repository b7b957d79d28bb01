import numpy as np
import pytest
import torch
from PIL import Image

from easyssl.data import load_image, to_rgb
from easyssl.tools.projection import pixel_positions
from easyssl.tools.visualize import (
    PALETTE,
    QUERY_FRAME_COLOR,
    UNLABELED_COLOR,
    pca_2d,
    plot_embeddings,
    plot_nearest_neighbors,
)


# --------------------------------------------------------------------------- #
# pca_2d
# --------------------------------------------------------------------------- #
def test_pca_matches_numpy_svd_up_to_sign():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 10)) * np.linspace(5, 0.5, 10)
    out = pca_2d(x.astype(np.float32))
    assert out.shape == (300, 2)
    xc = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    ref = xc @ vt[:2].T
    for j in range(2):
        sign = np.sign(vt[j][np.argmax(np.abs(vt[j]))])  # largest loading positive
        np.testing.assert_allclose(out[:, j], sign * ref[:, j], atol=1e-3)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-4)
    assert out[:, 0].var() > out[:, 1].var()


def test_pca_deterministic_sign_and_degenerate_inputs():
    t = np.linspace(-1, 1, 50)
    x = np.stack([0.01 * np.sin(7 * t), -3 * t, np.zeros_like(t)], axis=1)
    out = pca_2d(x)
    # main axis is -y; its largest loading is made positive, so PC1 = +y = -3t
    np.testing.assert_allclose(out[:, 0], -3 * t, atol=1e-2)
    np.testing.assert_allclose(pca_2d(-x)[:, 0], 3 * t, atol=1e-2)
    perm = np.random.default_rng(1).permutation(50)
    np.testing.assert_allclose(pca_2d(torch.tensor(x[perm])), out[perm], atol=1e-6)
    np.testing.assert_array_equal(pca_2d(np.ones((4, 3))), np.zeros((4, 2)))  # no variance
    one_d = pca_2d(np.array([[1.0], [2.0], [4.0]]))
    assert one_d.shape == (3, 2) and np.all(one_d[:, 1] == 0)
    with pytest.raises(ValueError, match="embeddings must be a 2-D array"):
        pca_2d(np.ones(5))


# --------------------------------------------------------------------------- #
# plot_embeddings
# --------------------------------------------------------------------------- #
def clustered_2d(n_per=15, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0], [10, 0], [0, 6], [10, 6]], dtype=np.float64)
    labels = np.repeat(np.arange(4), n_per)
    emb = centres[labels] + 0.2 * rng.normal(size=(len(labels), 2))
    return emb.astype(np.float32), labels


def test_plot_embeddings_colours_at_projected_points(tmp_path):
    emb, labels = clustered_2d()
    kwargs = dict(size=(420, 300), point_radius=3, title="clusters", class_names=["a", "b", "c", "d"], method="pca")
    path = plot_embeddings(emb, labels, tmp_path / "sub" / "emb.png", **kwargs)
    assert path == str(tmp_path / "sub" / "emb.png")
    img = Image.open(path).convert("RGB")
    assert img.size == (420, 300)
    pixels = pixel_positions(emb, labels, **kwargs)
    for (x, y), label in zip(pixels.tolist(), labels.tolist()):
        assert 0 <= x < 420 and 0 <= y < 300
        assert img.getpixel((x, y)) == PALETTE[label]
    # the four clusters land in four distinct places
    centres = np.array([pixels[labels == c].mean(axis=0) for c in range(4)])
    assert np.min(np.linalg.norm(centres[:, None] - centres[None], axis=2) + 1e9 * np.eye(4)) > 40
    assert img.getpixel((0, 0)) == (255, 255, 255)
    arr = np.asarray(img)
    for colour in PALETTE[:4]:  # legend swatches exist right of the points
        ys, xs = np.nonzero(np.all(arr == colour, axis=2))
        assert xs.max() > pixels[:, 0].max() + 10
    assert (arr[:20].sum(axis=2) < 200).any()  # dark title text at the top


def test_plot_embeddings_without_labels_is_grey(tmp_path):
    emb, _ = clustered_2d(seed=1)
    path = plot_embeddings(torch.from_numpy(emb), path=str(tmp_path / "grey.png"), size=(200, 150), point_radius=0, method="pca")
    img = Image.open(path).convert("RGB")
    assert img.size == (200, 150)
    for x, y in pixel_positions(emb, size=(200, 150), point_radius=0, method="pca").tolist():
        assert img.getpixel((x, y)) == UNLABELED_COLOR
    flat = np.asarray(img).reshape(-1, 1, 3)
    assert not (flat == np.array(PALETTE[:4])[None]).all(axis=2).any()  # no class colours, no legend


def test_plot_embeddings_string_labels_and_many_classes(tmp_path):
    emb, labels = clustered_2d(n_per=3)
    names = np.array(["dog", "cat", "car", "bus"])[labels]
    path = plot_embeddings(emb, names, tmp_path / "s.png", size=(300, 300), method="pca")
    img = Image.open(path).convert("RGB")
    pixels = pixel_positions(emb, names, size=(300, 300), method="pca")
    sorted_names = sorted(set(names.tolist()))  # string classes take palette colours in sorted order
    for (x, y), name in zip(pixels.tolist(), names.tolist()):
        assert img.getpixel((x, y)) == PALETTE[sorted_names.index(name)]
    rng = np.random.default_rng(0)
    many = plot_embeddings(rng.normal(size=(300, 8)), np.arange(300) % 60, tmp_path / "m.png", size=(256, 200), method="pca")
    assert Image.open(many).size == (256, 200)


def test_plot_embeddings_errors(tmp_path):
    emb, labels = clustered_2d()
    with pytest.raises(ValueError, match="labels must be a 1-D sequence with one label per embedding"):
        plot_embeddings(emb, labels[:-1], tmp_path / "x.png")
    with pytest.raises(ValueError, match="size must be at least"):
        plot_embeddings(emb, labels, tmp_path / "x.png", size=(10, 10))
    with pytest.raises(ValueError, match="point_radius must be a non-negative integer"):
        plot_embeddings(emb, labels, tmp_path / "x.png", point_radius=-1)


# --------------------------------------------------------------------------- #
# plot_nearest_neighbors and the images it reads
# --------------------------------------------------------------------------- #
def solid(colour, size=(40, 40), mode="RGB"):
    return Image.new(mode, size, colour)


def cell_centre(row, col, thumb, border, caption_h):
    return (
        border + col * (thumb + border) + thumb // 2,
        border + row * (thumb + border + caption_h) + thumb // 2,
    )


def close(a, b, tol=2):
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b))


def test_neighbors_grid_size_and_cells(tmp_path):
    colours = [(255, 0, 0), (0, 128, 255), (20, 200, 20), (200, 200, 0), (90, 0, 90)]
    queries = [solid(colours[0]), solid(colours[1], (64, 32))]
    neighbours = [[solid(c) for c in colours[1:4]], [solid(c, (16, 48)) for c in colours[2:5]]]
    thumb, border = 32, 4
    path = plot_nearest_neighbors(queries, neighbours, tmp_path / "grid.png", thumb_size=thumb, border=border)
    img = Image.open(path).convert("RGB")
    assert img.size == ((1 + 3) * (thumb + border) + border, 2 * (thumb + border) + border)
    assert close(img.getpixel(cell_centre(0, 0, thumb, border, 0)), colours[0])
    assert close(img.getpixel(cell_centre(1, 0, thumb, border, 0)), colours[1])
    for j in range(3):
        assert close(img.getpixel(cell_centre(0, j + 1, thumb, border, 0)), colours[1 + j])
        assert close(img.getpixel(cell_centre(1, j + 1, thumb, border, 0)), colours[2 + j])
    # query cell is framed in the query colour; neighbour gutters are not
    assert img.getpixel((1, border + thumb // 2)) == QUERY_FRAME_COLOR
    assert img.getpixel((border + thumb + border + thumb + 1, border + thumb // 2)) == (255, 255, 255)
    # wide query image is letterboxed: top rows of its cell are padding, not blue
    x, _ = cell_centre(1, 0, thumb, border, 0)
    y_top = border + (thumb + border) + 1
    assert not close(img.getpixel((x, y_top)), colours[1])


def test_neighbors_grid_with_similarities_and_files(tmp_path):
    # files in awkward modes: grayscale, palette, RGBA, 16-bit
    gray = tmp_path / "gray.png"
    solid(128, mode="L").save(gray)
    pal = tmp_path / "pal.png"
    solid((0, 0, 255)).convert("P", palette=Image.Palette.ADAPTIVE).save(pal)
    rgba = tmp_path / "rgba.png"
    solid((255, 0, 0, 255), mode="RGBA").save(rgba)
    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((30, 30), 65535, dtype=np.uint16)).save(deep)
    thumb, border, caption_h = 48, 2, 14
    path = plot_nearest_neighbors(
        [str(gray)],
        [[pal, rgba, deep]],
        tmp_path / "sims.png",
        thumb_size=thumb,
        border=border,
        similarities=np.array([[0.987654, 0.5, -0.25]], dtype=np.float32),
        captions=["query"],
    )
    img = Image.open(path).convert("RGB")
    assert img.size == ((1 + 3) * (thumb + border) + border, 1 * (thumb + border + caption_h) + border)
    expected = [(128, 128, 128), (0, 0, 255), (255, 0, 0), (255, 255, 255)]
    for col, colour in enumerate(expected):
        assert close(img.getpixel(cell_centre(0, col, thumb, border, caption_h)), colour)
        # caption strip under each cell contains dark text
        x0 = border + col * (thumb + border)
        strip = np.asarray(img.crop((x0, border + thumb, x0 + thumb, border + thumb + caption_h)))
        assert (strip.sum(axis=2) < 300).any()


def test_neighbors_grid_errors(tmp_path):
    with pytest.raises(ValueError, match="one list per query"):
        plot_nearest_neighbors([solid((0, 0, 0))], [], tmp_path / "e.png")
    with pytest.raises(ValueError, match="thumb_size must be an integer >= 8"):
        plot_nearest_neighbors([solid((0, 0, 0))], [[]], tmp_path / "e.png", thumb_size=4)
    with pytest.raises(ValueError, match="similarities must have one row per query"):
        plot_nearest_neighbors([solid((0, 0, 0))], [[solid((1, 1, 1))]], tmp_path / "e.png", similarities=[])


def _grid_cell(tmp_path, image, thumb):
    """The query cell of a one-image grid without border or caption: the image as the grid drew it."""
    path = plot_nearest_neighbors([image], [[]], tmp_path / "one.png", thumb_size=thumb, border=0)
    return np.asarray(Image.open(path).convert("RGB"))[:thumb, :thumb]


def test_grid_reads_every_mode_as_rgb(tmp_path):
    def cell(image):
        return tuple(_grid_cell(tmp_path, image, 40)[20, 20].tolist())

    assert cell(solid(200, mode="L")) == (200, 200, 200)
    assert cell(solid(1, mode="1")) == (255, 255, 255)
    assert cell(solid((255, 0, 0, 0), mode="RGBA")) == (255, 255, 255)  # fully transparent -> white
    assert cell(Image.fromarray(np.full((40, 40), 32896, dtype=np.uint16))) == (128,) * 3
    assert cell(solid((10, 20, 30)).convert("P", palette=Image.Palette.ADAPTIVE)) == (10, 20, 30)
    assert cell(solid((0, 0, 0, 0), mode="CMYK")) == (255, 255, 255)
    p = tmp_path / "x.png"
    solid((1, 2, 3)).save(p)
    assert cell(str(p)) == (1, 2, 3)
    with pytest.raises(ValueError, match="images must be file paths or PIL.Image.Image"):
        plot_nearest_neighbors([42], [[]], tmp_path / "e.png")


@pytest.mark.parametrize("mode", ["I", "F"])
def test_grid_decodes_32_bit_and_float_images_as_the_datasets_do(tmp_path, mode):
    # One decoder: the pictures show what training saw (easyssl.data.images), for images given
    # as PIL images or as files. 32-bit values of 100..1000 and floats of 0.2..0.7 both span the grey range.
    ramp = np.linspace(*((100, 1000) if mode == "I" else (0.2, 0.7)), 32 * 32).reshape(32, 32)
    image = Image.fromarray(ramp.astype(np.int32 if mode == "I" else np.float32), mode=mode)
    expected = np.asarray(to_rgb(image))
    assert expected.min() == 0 and expected.max() == 255
    np.testing.assert_array_equal(_grid_cell(tmp_path, image, 32), expected)
    path = tmp_path / f"deep_{mode}.tiff"
    image.save(path)
    np.testing.assert_array_equal(_grid_cell(tmp_path, str(path), 32), np.asarray(load_image(path)))
