import numpy as np
import pytest

from easyssl import load_embeddings, save_embeddings


@pytest.mark.parametrize("ext", [".csv", ".npz"])
def test_round_trip_is_exact(tmp_path, ext):
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((5, 3)).astype(np.float32)
    names = ["a.png", "b/c.jpg", "with,comma.png", "d.png", "é.png"]
    path = save_embeddings(tmp_path / f"e{ext}", emb, [0, 1, 1, 2, 0], names)
    loaded, labels, filenames = load_embeddings(path)
    assert np.array_equal(loaded, emb) and loaded.dtype == np.float32
    assert labels == [0, 1, 1, 2, 0] and filenames == names


def test_csv_has_the_peer_layout(tmp_path):
    path = save_embeddings(tmp_path / "e.csv", np.array([[0.5, -1.0]], dtype=np.float32), [3], ["x.png"])
    lines = open(path).read().splitlines()
    assert lines == ["filenames,embedding_0,embedding_1,labels", "x.png,0.5,-1,3"]


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="must match"):
        save_embeddings(tmp_path / "e.csv", np.zeros((2, 2)), [0], ["a", "b"])
    with pytest.raises(ValueError, match=".csv or .npz"):
        save_embeddings(tmp_path / "e.txt", np.zeros((1, 2)), [0], ["a"])
    (tmp_path / "bad.csv").write_text("name,value\nx,1\n")
    with pytest.raises(ValueError, match="not an embeddings CSV"):
        load_embeddings(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError):
        load_embeddings(tmp_path / "missing.csv")
    assert not list(tmp_path.glob(".tmp-*"))
