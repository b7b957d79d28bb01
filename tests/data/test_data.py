import os

import numpy as np
import pytest
import torch
from PIL import Image

from easyssl import MultiViewCollate, SSLDataset, make_demo_dataset
from easyssl.data import DEMO_CLASSES, list_image_folder, load_image, to_rgb
from tests.conftest import write_image


def test_flat_folder_gets_label_zero_and_sorted_relative_names(tmp_path):
    for name in ["b.png", "a.jpg", "C.JPEG", "notes.txt", "d.WebP"]:
        if name.endswith(".txt"):
            (tmp_path / name).write_text("not an image")
        else:
            write_image(str(tmp_path / name))
    dataset = SSLDataset(str(tmp_path))
    assert dataset.get_filenames() == ["C.JPEG", "a.jpg", "b.png", "d.WebP"]
    assert dataset.get_targets() == [0, 0, 0, 0]
    image, target, filename = dataset[1]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (40, 30)
    assert (target, filename) == (0, "a.jpg")


def test_class_subfolders_give_labels_in_sorted_folder_order(class_folder):
    dataset = SSLDataset(class_folder)
    assert dataset.classes == ["cats", "dogs"]
    assert len(dataset) == 12
    assert dataset.get_targets() == [0] * 6 + [1] * 6
    assert dataset.filenames[0] == "cats/img0.png" and dataset.filenames[-1] == "dogs/img5.JPG"
    # Listing is deterministic.
    assert SSLDataset(class_folder).filenames == dataset.filenames


def test_files_outside_class_folders_get_label_minus_one(class_folder):
    write_image(os.path.join(class_folder, "loose.png"))
    dataset = SSLDataset(class_folder)
    assert dataset.targets[dataset.filenames.index("loose.png")] == -1


@pytest.mark.parametrize("mode,ext", [("L", ".png"), ("P", ".png"), ("RGBA", ".png"), ("I;16", ".png"), ("CMYK", ".jpg"), ("L", ".pgm"), ("RGB", ".ppm"), ("RGB", ".bmp"), ("RGB", ".tiff")])
def test_every_mode_is_loaded_as_rgb(tmp_path, mode, ext):
    path = write_image(str(tmp_path / f"x{ext}"), mode=mode, size=(9, 7))
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (9, 7)


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    array = np.full((4, 4), 65535, dtype=np.uint16)
    array[0, 0] = 0
    Image.fromarray(array).save(tmp_path / "deep.png")
    rgb = np.asarray(load_image(tmp_path / "deep.png"))
    assert rgb[1, 1].tolist() == [255, 255, 255] and rgb[0, 0].tolist() == [0, 0, 0]


def test_rgba_is_composited_on_white():
    transparent = Image.new("RGBA", (2, 2), (10, 20, 30, 0))
    assert to_rgb(transparent).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (20, 10), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg").size == (10, 20)


def test_corrupt_file_error_names_the_file(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(OSError, match="broken.png"):
        load_image(tmp_path / "broken.png")


def test_bad_folders_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SSLDataset(str(tmp_path / "missing"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        SSLDataset(str(tmp_path / "file.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="contains no image files"):
        SSLDataset(str(tmp_path / "empty"))


def test_listing_opens_no_file(tmp_path):
    # Files that are not images but carry an image extension are listed without being read.
    for i in range(50):
        (tmp_path / f"{i:03d}.jpg").write_bytes(b"")
    files, labels, classes = list_image_folder(tmp_path)
    assert len(files) == 50 and classes == [] and set(labels) == {0}


def test_wraps_a_torchvision_dataset():
    from torchvision.datasets import FakeData

    fake = FakeData(size=5, image_size=(3, 16, 12), num_classes=3)
    dataset = SSLDataset.from_torch_dataset(fake)
    image, target, filename = dataset[3]
    assert image.mode == "RGB" and image.size == (12, 16)
    assert filename == "3" and 0 <= target < 3
    assert dataset.get_targets() == [int(fake[i][1]) for i in range(5)]


def test_wraps_tensor_and_array_datasets():
    items = [(torch.rand(3, 8, 8), 1), (np.zeros((8, 8), dtype=np.uint8), 0)]
    dataset = SSLDataset.from_torch_dataset(items)
    assert dataset[0][0].size == (8, 8) and dataset[1][0].mode == "RGB"
    assert dataset.get_targets() == [1, 0]


def test_collate_batches_views_targets_and_names():
    items = [([torch.zeros(3, 8, 8), torch.ones(3, 4, 4)], i, f"f{i}") for i in range(3)]
    views, targets, names = MultiViewCollate()(items)
    assert [tuple(v.shape) for v in views] == [(3, 3, 8, 8), (3, 3, 4, 4)]
    assert targets.tolist() == [0, 1, 2] and names == ["f0", "f1", "f2"]
    with pytest.raises(TypeError, match="cannot batch"):
        MultiViewCollate()([("a string", 0, "x")])


def test_demo_dataset_is_deterministic(tmp_path):
    a = make_demo_dataset(tmp_path / "a", images_per_class=3, image_size=24, seed=3)
    b = make_demo_dataset(tmp_path / "b", images_per_class=3, image_size=24, seed=3)
    dataset = SSLDataset(a)
    assert dataset.classes == sorted(DEMO_CLASSES) and len(dataset) == 15
    for name in dataset.filenames:
        assert np.array_equal(np.asarray(Image.open(os.path.join(a, name))), np.asarray(Image.open(os.path.join(b, name))))
