"""Bad input gets a clear error or a clear skip: folders, unreadable files, odd images, checkpoints, huge folders."""

import os
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from easyssl import CheckpointError, SSLDataset, embed_images, load_embeddings, save_checkpoint, train_embedding_model
from easyssl.api import build_training, last_skipped_files, load_model, stream_embeddings
from easyssl import load_checkpoint
from easyssl.cli import main
from easyssl.data import MultiViewCollate, is_empty_batch, list_image_folder
from easyssl.inference import embeddings_training_steps, save_embeddings
from easyssl.transforms import EvalTransform, SimCLRTransform
from tests.conftest import fast_config, write_image


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A demo folder and a checkpoint trained on it for one fast epoch."""
    from easyssl import make_demo_dataset

    folder = make_demo_dataset(tmp_path_factory.mktemp("demo"), images_per_class=8, image_size=32)
    run_dir = tmp_path_factory.mktemp("run")
    checkpoint = train_embedding_model(folder, checkpoint_dir=run_dir, **fast_config())
    return folder, checkpoint


def _break_files(folder):
    """Make a corrupt, a truncated and a zero-byte file among good ones; return their names."""
    root = str(folder)
    with open(os.path.join(root, "circle", "corrupt.png"), "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    good = open(os.path.join(root, "square", os.listdir(os.path.join(root, "square"))[0]), "rb").read()
    with open(os.path.join(root, "square", "truncated.png"), "wb") as handle:
        handle.write(good[: len(good) // 2])
    open(os.path.join(root, "triangle", "empty.jpg"), "wb").close()
    return ["circle/corrupt.png", "square/truncated.png", "triangle/empty.jpg"]


# ---------------------------------------------------------------------------------- folders
@pytest.mark.parametrize("case", ["missing", "empty", "file", "no_images"])
def test_bad_folders_raise_errors_naming_path_and_expectation(tmp_path, case):
    path = tmp_path / "input"
    if case == "empty":
        path.mkdir()
    elif case == "file":
        path.write_text("not a folder")
    elif case == "no_images":
        path.mkdir()
        (path / "notes.txt").write_text("hello")
        (path / "data.csv").write_text("1,2")
    expected = {"missing": (FileNotFoundError, "does not exist"), "empty": (ValueError, "contains no image files"),
                "file": (NotADirectoryError, "is a file, not a folder"), "no_images": (ValueError, r"\.jpg, \.jpeg, \.png")}[case]
    for call in (lambda: SSLDataset(path), lambda: train_embedding_model(path, **fast_config())):
        with pytest.raises(expected[0], match=expected[1]) as info:
            call()
        assert str(path) in str(info.value)


def test_cli_reports_bad_folders_in_one_line(tmp_path, capsys, trained):
    _, checkpoint = trained
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile.png").write_text("x")
    for argv in (["train", str(tmp_path / "nope")], ["train", str(tmp_path / "afile.png")], ["train", str(tmp_path / "empty"), "--epochs", "1"],
                 ["embed", str(tmp_path / "empty"), "--checkpoint", checkpoint]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert os.path.basename(argv[1]) in err


# ---------------------------------------------------------------------------------- unreadable files
def test_unreadable_files_are_none_with_a_warning_naming_them(demo_folder):
    broken = _break_files(demo_folder)
    dataset = SSLDataset(demo_folder, transform=EvalTransform(32))
    assert len(dataset) == 43
    for name in broken:
        index = dataset.filenames.index(name)
        with pytest.warns(UserWarning, match=name.split("/")[1]):
            sample, target, filename = dataset[index]
        assert sample is None and filename == name and target == dataset.targets[index]
        image, target = dataset.load_or_none(index)
        assert image is None
        with pytest.raises(OSError, match=name.split("/")[1]):
            dataset.load(index)
    assert dataset.skipped_files() == sorted(broken, key=dataset.filenames.index)
    # A second read does not warn again.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset[dataset.filenames.index(broken[0])]


def test_collate_drops_unreadable_items_and_handles_an_all_bad_batch():
    collate = MultiViewCollate()
    good = ([torch.zeros(3, 4, 4), torch.ones(3, 4, 4)], 1, "a.png")
    views, targets, names = collate([good, (None, 0, "bad.png"), good])
    assert views[0].shape == (2, 3, 4, 4) and targets.tolist() == [1, 1] and names == ["a.png", "a.png"]
    batch = collate([(None, 0, "x.png"), (None, 1, "y.png")])
    assert is_empty_batch(batch) and batch[2] == [] and batch[1].numel() == 0
    assert not is_empty_batch((views, targets, names))


@pytest.mark.parametrize("workers", [0, 2])
def test_training_skips_unreadable_files_and_summarises_them(demo_folder, tmp_path, caplog, workers):
    broken = _break_files(demo_folder)
    # Batches of 3 with the broken files first: one batch is entirely unreadable.
    config = fast_config(loader={"num_workers": workers, "batch_size": 3, "shuffle": False, "persistent_workers": False})
    run = build_training(demo_folder, checkpoint_dir=tmp_path, **config)
    order = run.dataset.filenames
    run.dataset.filenames = broken + [f for f in order if f not in broken]  # broken files first (targets unused in training)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = run.trainer.train_embedding(max_epochs=1, checkpoint_dir=tmp_path, progress_bar=False)
    assert sorted(run.trainer.skipped_files) == sorted(broken)
    logged = caplog.text  # status lines go to the "easyssl" logger
    assert "skipped 3 unreadable file(s)" in logged and all(name in logged for name in broken)
    state = load_checkpoint(path)
    # 43 items in 14 batches of 3 (drop_last), the first one entirely unreadable: 13 steps, 39 images.
    assert state["epoch"] == 1 and state["step"] == 13
    assert run.trainer.history[0]["images"] == 39


def test_embed_images_skips_unreadable_files_and_says_which(trained, tmp_path):
    folder, checkpoint = trained
    import shutil

    copy = shutil.copytree(folder, tmp_path / "images")
    broken = _break_files(copy)
    with pytest.warns(UserWarning) as record:
        embeddings, labels, filenames, skipped = embed_images(copy, checkpoint, progress_bar=False, return_skipped=True)
    messages = " ".join(str(w.message) for w in record)
    assert all(name in messages for name in broken)
    assert embeddings.shape == (40, 96) and len(labels) == len(filenames) == 40
    assert not set(broken) & set(filenames) and set(skipped) == set(broken)
    assert set(last_skipped_files()) == set(broken)
    # The embeddings of the good files are those of a clean folder.
    clean, _, clean_names = embed_images(folder, checkpoint, progress_bar=False)
    assert clean_names == filenames and np.allclose(clean, embeddings, atol=1e-5)
    assert last_skipped_files() == []
    # Worker processes record what they skip too.
    with pytest.warns(UserWarning):
        _, _, names, skipped = embed_images(copy, checkpoint, progress_bar=False, num_workers=2, batch_size=7, return_skipped=True)
    assert set(skipped) == set(broken) and len(names) == 40


# ---------------------------------------------------------------------------------- odd images
def _odd_images(root):
    write_image(os.path.join(root, "gray.png"), "L")
    write_image(os.path.join(root, "rgba.png"), "RGBA")
    write_image(os.path.join(root, "palette.png"), "P")
    write_image(os.path.join(root, "deep.png"), "I;16")
    write_image(os.path.join(root, "cmyk.jpg"), "CMYK")
    write_image(os.path.join(root, "tiny.png"), "RGB", size=(1, 1))
    write_image(os.path.join(root, "wide.png"), "RGB", size=(10_000, 3))
    write_image(os.path.join(root, "tall.bmp"), "RGB", size=(2, 3_000))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 40, 3), dtype=np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    image.save(os.path.join(root, "rotated.jpg"), exif=exif)
    palette = Image.new("P", (8, 8))
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.info["transparency"] = 0
    palette.save(os.path.join(root, "palette_alpha.png"), transparency=0)
    return root


def test_odd_images_are_all_read_as_rgb(tmp_path):
    folder = _odd_images(str(tmp_path / "odd"))
    dataset = SSLDataset(folder)
    for i in range(len(dataset)):
        image, _, name = dataset[i]
        assert image.mode == "RGB", name
    sizes = {name: dataset[i][0].size for i, name in enumerate(dataset.filenames)}
    assert sizes["rotated.jpg"] == (20, 40)  # EXIF rotation applied
    assert sizes["tiny.png"] == (1, 1) and sizes["wide.png"] == (10_000, 3)
    assert dataset.skipped_files() == []


def test_odd_images_train_and_embed(tmp_path):
    folder = _odd_images(str(tmp_path / "odd"))
    dataset = SSLDataset(folder, transform=SimCLRTransform(input_size=32))
    views, _, _ = MultiViewCollate()([dataset[i] for i in range(len(dataset))])
    assert views[0].shape == (len(dataset), 3, 32, 32) and torch.isfinite(views[0]).all()
    checkpoint = train_embedding_model(folder, checkpoint_dir=tmp_path / "run", **fast_config(loader={"batch_size": 4}))
    embeddings, _, filenames = embed_images(folder, checkpoint, progress_bar=False)
    assert embeddings.shape[0] == len(filenames) == 10 and np.isfinite(embeddings).all()


# ---------------------------------------------------------------------------------- checkpoints
def test_bad_checkpoints_say_what_is_wrong(trained, tmp_path):
    folder, checkpoint = trained
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "epoch": 3}, foreign)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(os.urandom(100))
    with pytest.raises(CheckpointError, match="not an easyssl checkpoint"):
        load_model(foreign)
    with pytest.raises(CheckpointError, match="not an easyssl checkpoint"):
        embed_images(folder, garbage, progress_bar=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.ckpt")

    state = load_checkpoint(checkpoint)
    state.pop("format")
    unknown_method = {**state, "config": {**state["config"], "method": "teleportation"}}
    save_checkpoint(tmp_path / "method.ckpt", unknown_method)
    with pytest.raises(CheckpointError, match="unknown method.*teleportation"):
        load_model(tmp_path / "method.ckpt")
    extra_section = {**state, "config": {**state["config"], "warp_drive": {"on": True}}}
    save_checkpoint(tmp_path / "section.ckpt", extra_section)
    with pytest.raises(CheckpointError, match="unknown config key 'warp_drive'"):
        load_model(tmp_path / "section.ckpt")
    extra_key = {**state, "config": {**state["config"], "model": {**state["config"]["model"], "flux": 3}}}
    save_checkpoint(tmp_path / "key.ckpt", extra_key)
    with pytest.raises(CheckpointError, match=r"unknown config key\(s\) 'flux' in model"):
        embed_images(folder, tmp_path / "key.ckpt", progress_bar=False)
    # Resuming from such a checkpoint says so too.
    os.makedirs(tmp_path / "resume", exist_ok=True)
    save_checkpoint(tmp_path / "resume" / "last.ckpt", extra_key)
    with pytest.raises(CheckpointError, match="flux"):
        train_embedding_model(folder, checkpoint_dir=tmp_path / "resume", resume=True, **fast_config())


# ---------------------------------------------------------------------------------- big folders
def test_listing_a_huge_folder_opens_nothing_and_stays_small(tmp_path, monkeypatch):
    folder = tmp_path / "huge"
    folder.mkdir()
    n = 200_000
    for i in range(n):
        os.close(os.open(os.path.join(folder, f"img{i:07d}.jpg"), os.O_CREAT | os.O_WRONLY, 0o644))
    import builtins

    import PIL.Image

    def forbidden(*args, **kwargs):
        raise AssertionError(f"listing opened a file: {args[:1]}")

    monkeypatch.setattr(builtins, "open", forbidden)
    monkeypatch.setattr(PIL.Image, "open", forbidden)
    tracemalloc.start()
    try:
        dataset = SSLDataset(folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    monkeypatch.undo()
    assert len(dataset) == n and dataset.filenames[0] == "img0000000.jpg"
    # The names themselves (about 60 bytes each) and little else: far from loading any image.
    assert peak < 250 * n, f"listing {n} files peaked at {peak / 1e6:.1f} MB"


def test_streamed_embeddings_match_and_hold_one_batch(trained, tmp_path):
    folder, checkpoint = trained
    embeddings, labels, filenames = embed_images(folder, checkpoint, progress_bar=False)
    for name in ("big.npz", "big.csv"):
        result = stream_embeddings(folder, checkpoint, tmp_path / name, batch_size=7, progress_bar=False)
        assert result.count == 40 and result.dim == 96 and result.skipped == []
        loaded, loaded_labels, loaded_names = load_embeddings(result.path)
        assert loaded_names == filenames and loaded_labels == labels
        assert np.allclose(loaded, embeddings, atol=1e-5)
    assert sorted(os.listdir(tmp_path)) == ["big.csv", "big.npz"]  # no temporary files left
    # The .npz records how long its model trained (for `easyssl duplicates`' warning); a CSV has no place for it.
    steps = load_checkpoint(checkpoint)["step"]
    assert embeddings_training_steps(tmp_path / "big.npz") == steps and embeddings_training_steps(tmp_path / "big.csv") is None
    save_embeddings(tmp_path / "saved.npz", embeddings, labels, filenames, training_steps=steps)
    assert embeddings_training_steps(tmp_path / "saved.npz") == steps
    assert load_embeddings(tmp_path / "saved.npz")[2] == filenames
    save_embeddings(tmp_path / "plain.npz", embeddings, labels, filenames)
    assert embeddings_training_steps(tmp_path / "plain.npz") is None


def test_stream_writer_memory_does_not_grow_with_the_number_of_rows(tmp_path):
    from easyssl import EmbeddingStreamWriter

    batch = np.random.default_rng(0).standard_normal((2_000, 128)).astype(np.float32)  # 1 MB per batch
    labels = list(range(2_000))
    names = [f"dir/file_{i:06d}.png" for i in range(2_000)]
    tracemalloc.start()
    try:
        with EmbeddingStreamWriter(tmp_path / "e.npz") as writer:
            for _ in range(60):  # 60 MB of embeddings in total
                writer.write(batch, labels, names)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12e6, f"streaming 60 MB peaked at {peak / 1e6:.1f} MB"
    with np.load(tmp_path / "e.npz", mmap_mode="r") as data:
        assert data["embeddings"].shape == (120_000, 128) and data["filenames"][2_001] == names[1]
        assert np.array_equal(data["embeddings"][-2_000:], batch)
    assert os.listdir(tmp_path) == ["e.npz"]


def test_list_image_folder_is_lazy_about_unsupported_files(tmp_path):
    (tmp_path / "a").mkdir()
    write_image(str(tmp_path / "a" / "x.png"))
    (tmp_path / "a" / "x.txt").write_text("t")
    (tmp_path / ".hidden").mkdir()
    write_image(str(tmp_path / ".hidden" / "y.png"))
    files, labels, classes = list_image_folder(tmp_path)
    assert files == ["a/x.png"] and classes == ["a"]
