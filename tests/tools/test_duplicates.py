"""find_duplicates (the ratio test, crops as views) and find_duplicate_images, end to end."""

import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from easyssl import find_duplicate_images, find_duplicates, make_demo_dataset, train_embedding_model
from easyssl.inference import Embedder
from easyssl.inference.views import CROP_VIEWS, DUPLICATE_VIEWS, crop_views, embed_with_views
from easyssl.data import open_dataset
from easyssl.tools.duplicates import DUPLICATE_MIN_STEPS, warn_if_too_short


def test_find_duplicates_planted():
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(300, 32)).astype(np.float32)
    emb[120] = emb[7] + 1e-3 * rng.normal(size=32)  # a pair
    emb[50] = emb[200] * 3.0  # scaled copy: cosine 1
    emb[260] = emb[200] + 1e-3 * rng.normal(size=32)  # -> triple 50, 200, 260
    groups = find_duplicates(emb)
    assert groups == [[7, 120], [50, 200, 260]]
    assert find_duplicates(emb, k=3, chunk_size=33) == groups
    assert find_duplicates(torch.from_numpy(emb), device="cpu") == groups
    assert find_duplicates(emb, mutual=True) == groups  # each one's nearest is another copy


def test_ratio_test_tells_a_copy_from_look_alikes():
    """A tight cluster of look-alikes (all about equally close) is not a duplicate group; a copy inside it,
    far closer to its original than anything else is, is. A threshold alone cannot separate the two."""
    rng = np.random.default_rng(0)
    centre = rng.normal(size=64)
    cluster = centre + 0.25 * rng.normal(size=(20, 64))  # cosine ~0.94 to each other
    others = rng.normal(size=(200, 64))
    copy = cluster[3] + 0.06 * rng.normal(size=64)  # cosine ~0.99: not an exact copy
    emb = np.vstack([cluster, others, copy[None]]).astype(np.float32)
    copy_row = len(emb) - 1
    assert find_duplicates(emb) == [[3, copy_row]]
    # The rule before (a threshold, mutual neighbours): the look-alikes pair up too, or the copy is lost.
    loose = find_duplicates(emb, 0.85, ratio=None, mutual=True)
    assert [3, copy_row] in loose and len(loose) > 1
    assert find_duplicates(emb, -1.0, ratio=None, k=3) != []  # no ratio test: a low threshold links everything near
    assert find_duplicates(emb, ratio=1e6) == []  # a ratio nothing meets
    many = np.repeat(emb[:1], 30, axis=0)  # 30 exact copies: more than k, still one group
    assert find_duplicates(np.vstack([many, emb[20:]])) == [list(range(30))]


def test_complete_linkage_does_not_chain_look_alikes():
    """A - B and B - C linked, A - C not: one link must not make A and C duplicates (single linkage did)."""
    angles = np.radians([0.0, 9.0, 19.0, 90.0, 180.0, 270.0])
    emb = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    options = {"threshold": float(np.cos(np.radians(10))), "ratio": None, "center": False}
    assert find_duplicates(emb, linkage="single", **options) == [[0, 1, 2]]
    assert find_duplicates(emb, **options) == [[0, 1]]  # the closer pair; C stays alone
    with pytest.raises(ValueError, match="linkage must be 'single' or 'complete'"):
        find_duplicates(emb, linkage="average")


def test_verify_is_stricter_where_the_ratio_test_is_less_sure():
    """Linked pairs (exact copies aside) are sent to verify; a pair passing the ratio test by less than
    sure_ratio must score agreement, one passing by more only sure_agreement."""
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(200, 32)).astype(np.float32)
    emb[100] = emb[0] + 0.4 * rng.normal(size=32)  # a near copy: passes ratio 4, not 8
    emb[101] = emb[1] + 0.1 * rng.normal(size=32)  # a very near copy (not exact): passes ratio 8
    emb[102] = emb[2]  # an exact copy
    assert find_duplicates(emb) == [[0, 100], [1, 101], [2, 102]]
    asked = []

    def verify(first, second, score):
        asked.extend(zip(first.tolist(), second.tolist()))
        return np.full(len(first), score)

    assert find_duplicates(emb, verify=lambda a, b: verify(a, b, 0.5)) == [[2, 102]]
    assert sorted(asked) == [(0, 100), (1, 101)]  # never the exact copy
    assert find_duplicates(emb, verify=lambda a, b: verify(a, b, 0.93)) == [[1, 101], [2, 102]]
    assert find_duplicates(emb, verify=lambda a, b: verify(a, b, 0.99)) == [[0, 100], [1, 101], [2, 102]]
    assert find_duplicates(emb, verify=lambda a, b: verify(a, b, 0.93), agreement=0.9) == [[0, 100], [1, 101], [2, 102]]
    assert find_duplicates(emb, verify=lambda a, b: verify(a, b, 0.93), sure_ratio=1e9) == [[2, 102]]
    with pytest.raises(ValueError, match="verify must return one score per pair"):
        find_duplicates(emb, verify=lambda a, b: np.ones(len(a) + 1))


def test_views_find_a_copy_only_a_crop_matches():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(100, 32)).astype(np.float32)
    views = rng.normal(size=(3, 100, 32)).astype(np.float32)  # three other views of every item
    emb[99] = views[1, 10] + 1e-3 * rng.normal(size=32)  # item 99 is a copy of one view of item 10
    assert find_duplicates(emb) == []
    assert find_duplicates(emb, views=views) == [[10, 99]]
    assert find_duplicates(torch.from_numpy(emb), views=torch.from_numpy(views)) == [[10, 99]]


def test_bad_arguments_are_named():
    emb = np.random.default_rng(3).normal(size=(20, 8)).astype(np.float32)
    assert find_duplicates(emb[:1]) == []
    with pytest.raises(ValueError, match="threshold must be a cosine similarity between -1 and 1"):
        find_duplicates(emb, 1.5)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        find_duplicates(emb, k=0)
    with pytest.raises(ValueError, match="ratio must be a number >= 0"):
        find_duplicates(emb, ratio=-1)
    with pytest.raises(ValueError, match=r"views must have shape \(V, 20, 8\)"):
        find_duplicates(emb, views=emb)


def test_crop_views_cut_and_resize_each_image():
    images = torch.arange(2 * 3 * 20 * 20, dtype=torch.float32).view(2, 3, 20, 20)
    assert torch.equal(crop_views(images, [(1.0, 0.0, 0.0)]), images)  # the whole image is itself
    out = crop_views(images, [(0.5, 0.0, 0.0), (0.5, 1.0, 1.0)])
    assert out.shape == (4, 3, 20, 20)
    # The first view is the top-left quarter enlarged, the second the bottom-right one, image by image.
    assert out[0].mean() < images[0].mean() < out[2].mean()
    assert torch.allclose(out[1], out[0] + 1200)  # image 1 is image 0 plus 1200 everywhere
    assert len(CROP_VIEWS) == 18 and len(set(CROP_VIEWS)) == 18 and DUPLICATE_VIEWS[:18] == CROP_VIEWS
    # A low-resolution view keeps a flat image and loses a checkerboard's detail (a copy saved small and enlarged).
    flat, board = torch.ones(1, 1, 20, 20), (torch.arange(20)[:, None] + torch.arange(20)[None, :]).remainder(2).float()[None, None]
    assert torch.allclose(crop_views(flat, [DUPLICATE_VIEWS[-1]]), flat)
    assert crop_views(board, [(1.0, 0.5, 0.5, 0.6)]).std() < 0.5 * board.std()
    with pytest.raises(ValueError, match="a view is"):
        crop_views(images, [(1.5, 0.0, 0.0)])
    with pytest.raises(ValueError, match="a view is"):
        crop_views(images, [(1.0, 0.0, 0.0, 0.0)])


def _pixels(images: torch.Tensor) -> np.ndarray:
    """Centred 24 x 24 pixels as embeddings: a stand-in model with no training (shifts change them, as they change a network's)."""
    small = torch.nn.functional.adaptive_avg_pool2d(images, 24).flatten(1)
    return (small - small.mean(dim=1, keepdim=True)).numpy()


def test_crops_as_views_find_cropped_photo_copies():
    """Real photos (scikit-learn's samples), copies cropped to 85-95 % of each side: with the crops of
    CROP_VIEWS as views the copies are found; from the whole images alone most are not."""
    from sklearn.datasets import load_sample_images  # in the dev extra: a missing one fails, never skips

    tiles = []
    for photo in load_sample_images().images:
        for y in range(0, photo.shape[0] - 48, 48):
            for x in range(0, photo.shape[1] - 48, 48):
                tile = photo[y : y + 48, x : x + 48]
                if tile.std() > 60:  # textured tiles: smooth ones (sky, petals) are look-alikes, not distinct
                    tiles.append(Image.fromarray(tile))
    rng = np.random.default_rng(0)
    planted = rng.choice(len(tiles), size=12, replace=False)
    copies = []
    for i in planted:
        side = rng.uniform(0.85, 0.95)
        w = round(48 * side)
        x, y = rng.integers(0, 48 - w + 1, size=2)
        copies.append(tiles[i].crop((x, y, x + w, y + w)).resize((48, 48), Image.Resampling.BILINEAR))
    images = torch.stack([torch.from_numpy(np.asarray(t, dtype=np.float32) / 255).permute(2, 0, 1) for t in tiles + copies])
    emb = _pixels(images)
    views = _pixels(crop_views(images)).reshape(len(CROP_VIEWS), len(images), -1)
    truth = {frozenset((int(i), len(tiles) + n)) for n, i in enumerate(planted)}

    def found(groups):
        return {frozenset(p) for g in groups for p in [(a, b) for a in g for b in g if a < b]}

    with_views, alone = found(find_duplicates(emb, views=views)), found(find_duplicates(emb))
    assert with_views == truth  # all 12 copies, nothing else
    assert len(alone & truth) <= 8  # measured: 6 of 12


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("dup_images")
    images = make_demo_dataset(root / "images", images_per_class=6, image_size=32)
    shutil.copy(os.path.join(images, "circle", "circle_0003.png"), os.path.join(images, "circle", "circle_copy.png"))
    checkpoint = train_embedding_model(images, checkpoint_dir=str(root / "run"), model={"width": 0.25}, collate={"input_size": 32},
                                       trainer={"max_steps": 2, "progress_bar": False}, loader={"batch_size": 8, "num_workers": 0})
    return images, checkpoint


def test_embed_with_views_whole_view_is_the_embedding(demo_run):
    images, checkpoint = demo_run
    embedder = Embedder.from_checkpoint(checkpoint, device="cpu", num_workers=0)
    data = open_dataset(images, transform=embedder.transform)
    whole, views, _, names = embed_with_views(embedder.model, embedder.loader(data), embedder.device,
                                              ((1.0, 0.0, 0.0), (0.9, 0.5, 0.5)), precision=embedder.precision,
                                              channels_last=embedder.channels_last, progress_bar=False)
    plain, _, plain_names = embedder.embed(embedder.loader(data), progress_bar=False)
    assert names == plain_names and views.shape == (2, *whole.shape)
    np.testing.assert_allclose(whole, plain, atol=1e-4)
    np.testing.assert_allclose(views[0], whole, atol=1e-4)  # the full-size "crop" is the image
    assert not np.allclose(views[1], whole, atol=1e-3)


def test_find_duplicate_images_names_files_and_warns_on_short_training(demo_run):
    images, checkpoint = demo_run
    with pytest.warns(UserWarning, match=f"trained for only 2 steps.*at least {DUPLICATE_MIN_STEPS} steps"):
        groups = find_duplicate_images(images, checkpoint, threshold=0.9999, ratio=None, device="cpu", progress_bar=False)
    assert groups == [["circle/circle_0003.png", "circle/circle_copy.png"]]
    with pytest.warns(UserWarning):
        assert warn_if_too_short(checkpoint)


def test_find_duplicate_images_checks_the_pixels(demo_run):
    """A barely trained model embeds every shape alike: with a loose rule its embeddings link many pairs; the
    pixel check keeps the one real copy."""
    images, checkpoint = demo_run
    # sure_agreement as strict as agreement: no two distinct images of this demo set agree above 0.94, so the
    # result does not depend on how sure the 2-step model's ratio test happens to be.
    options = {"threshold": -1.0, "ratio": None, "device": "cpu", "progress_bar": False, "sure_agreement": 0.97}
    with pytest.warns(UserWarning, match="trained for only 2 steps"):
        loose = find_duplicate_images(images, checkpoint, pixel_check=False, **options)
        checked = find_duplicate_images(images, checkpoint, **options)
    assert sum(len(g) for g in loose) > 10
    assert checked == [["circle/circle_0003.png", "circle/circle_copy.png"]]
