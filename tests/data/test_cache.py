"""The decoded-image cache of the fast data path (easyssl.data.cache)."""

import torch
from PIL import Image
from torch.utils.data import DataLoader

from easyssl import SSLDataset
from easyssl.data import CachedImageDataset, MultiViewCollate, fit_square


def _filled(cache):
    return float(cache.filled.float().mean()) if cache.capacity else 0.0


def test_fit_square_centre_crops_and_resizes():
    image = Image.new("RGB", (60, 20), (0, 0, 255))
    image.paste((255, 0, 0), (20, 0, 40, 20))  # the centre square is red
    tensor = fit_square(image, 10)
    assert tensor.shape == (3, 10, 10) and tensor.dtype == torch.uint8
    assert tensor[:, 5, 5].tolist() == [255, 0, 0]


def test_cache_decodes_each_file_once_and_shares_memory(class_folder):
    dataset = SSLDataset(class_folder)
    calls = []
    load = dataset.load
    dataset.load = lambda i: calls.append(i) or load(i)
    cache = CachedImageDataset(dataset, size=16)
    assert cache.storage.is_shared()
    first = [cache[i][0].clone() for i in range(len(cache))]
    second = [cache[i][0] for i in range(len(cache))]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert calls.count(0) == 1 and _filled(cache) == 1.0
    image, target, filename = cache[7]
    assert (target, filename) == (1, "dogs/img1.JPG") and image.shape == (3, 16, 16)


def test_cache_memory_is_bounded(class_folder):
    cache = CachedImageDataset(SSLDataset(class_folder), size=16, max_bytes=3 * 16 * 16 * 5)
    assert cache.capacity == 5 and cache.storage.shape[0] == 5
    assert cache[11][0].shape == (3, 16, 16)  # beyond capacity: decoded on every read
    assert not cache.filled.any()


def test_cache_fills_from_worker_processes(class_folder):
    cache = CachedImageDataset(SSLDataset(class_folder), size=8)
    loader = DataLoader(cache, batch_size=4, num_workers=2, collate_fn=MultiViewCollate())
    batches = list(loader)
    assert batches[0][0].dtype == torch.uint8 and batches[0][0].shape == (4, 3, 8, 8)
    assert _filled(cache) == 1.0  # filled by the workers, seen by the main process
