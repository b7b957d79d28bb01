"""easyssl.inference: the Embedder (model + transform + loader settings) behind embed_images and stream_embeddings."""

import numpy as np
import pytest

from easyssl import embed_images, open_dataset, train_embedding_model
from easyssl.config import eval_transform
from easyssl.inference import Embedder, load_model
from tests.conftest import fast_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from easyssl import make_demo_dataset

    folder = make_demo_dataset(tmp_path_factory.mktemp("demo"), images_per_class=4, image_size=32)
    path = train_embedding_model(folder, checkpoint_dir=tmp_path_factory.mktemp("run"), **fast_config())
    return folder, path


def test_embedder_from_checkpoint_gives_what_embed_images_gives(checkpoint):
    folder, path = checkpoint
    embedder = Embedder.from_checkpoint(path, device="cpu", precision="32", num_workers=0)
    assert embedder.batch_size == 256 and embedder.config["collate"]["input_size"] == 32  # the CPU rule
    assert tuple(embedder.transform(open_dataset(folder).load(0)[0]).shape) == (3, 32, 32)
    data = open_dataset(folder, transform=embedder.transform)
    embeddings, labels, filenames = embedder.embed(embedder.loader(data), progress_bar=False)
    expected, expected_labels, expected_names = embed_images(folder, path, device="cpu", precision="32", num_workers=0, progress_bar=False)
    np.testing.assert_allclose(embeddings, expected, rtol=1e-5, atol=1e-5)
    assert labels == expected_labels and filenames == expected_names
    raw = np.concatenate([batch for batch, _, _ in embedder.iter_embeddings(embedder.loader(data), progress_bar=False, whiten=False)])
    assert raw.shape == embeddings.shape and not np.allclose(raw, embeddings)  # whitening is on by default


def test_embedder_leaves_a_callers_model_in_its_memory_format(checkpoint):
    folder, path = checkpoint
    model, config = load_model(path)
    embedder = Embedder(model, eval_transform(config), device="cpu", batch_size=7, num_workers=0)
    loader = embedder.loader(open_dataset(folder, transform=embedder.transform))
    assert loader.batch_size == 7 and embedder.channels_last
    embeddings, _, _ = embedder.embed(loader, progress_bar=False)
    assert embeddings.shape[0] == 20 and embeddings.dtype == np.float32
    assert all(p.is_contiguous() for p in model.parameters() if p.ndim == 4) and not model.training
