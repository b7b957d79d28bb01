"""Folders of videos, read frame by frame with PyAV (optional extra); the test writes its own small videos."""

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

from easyssl import SSLDataset
from easyssl.data import VideoDataset, VideoFolderError, open_dataset
from tests.conftest import fast_config, write_image

#: (extension, codec) pairs PyAV writes without extra libraries.
FORMATS = [("mp4", "libx264"), ("avi", "mpeg4"), ("mov", "mpeg4"), ("mkv", "libx264"), ("webm", "libvpx")]


def write_video(path, codec, frames=12, size=(32, 24), fps=10, gop=4):
    """Frame ``i`` is a flat grey of value ``20 * i`` (so a decoded frame tells its index)."""
    av = importlib.import_module("av")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.gop_size = gop
        for i in range(frames):
            array = np.full((size[1], size[0], 3), 20 * i % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _index_of(image):
    return int(round(np.asarray(image, dtype=np.float64)[4:-4, 4:-4].mean() / 20))


@pytest.fixture()
def video_folder(tmp_path):
    importlib.import_module("av")
    root = tmp_path / "videos"
    for ext, codec in FORMATS:
        write_video(str(root / "walks" / f"clip_{ext}.{ext}"), codec)
    write_video(str(root / "runs" / "long.mp4"), "libx264", frames=10)
    return str(root)


def test_video_folder_items_are_frames_named_video_frame(video_folder):
    dataset = open_dataset(video_folder)  # no image in the folder: read as videos
    assert type(dataset) is VideoDataset
    assert len(dataset) == 5 * 12 + 10 and dataset.classes == ["runs", "walks"]
    assert dataset.filenames[:2] == ["runs/long-0", "runs/long-1"]
    assert "walks/clip_webm-11" in dataset.filenames and "walks/clip_avi-00" in dataset.filenames
    frame, target, name = dataset[dataset.filenames.index("walks/clip_mkv-07")]
    assert frame.mode == "RGB" and frame.size == (32, 24) and target == 1 and name == "walks/clip_mkv-07"
    assert dataset.locate(dataset.filenames.index("walks/clip_mkv-07")) == ("walks/clip_mkv.mkv", 7)
    # Every frame decodes to the right picture, whatever the container and the order of reads.
    expected = [int(name.rsplit("-", 1)[1]) for name in dataset.filenames]
    assert [_index_of(dataset[i][0]) for i in range(len(dataset))] == expected
    order = np.random.default_rng(0).permutation(len(dataset))
    shuffled = {int(i): _index_of(dataset[int(i)][0]) for i in order}
    assert [shuffled[i] for i in range(len(dataset))] == expected


def test_frame_step_and_transform(video_folder):
    from easyssl.transforms import EvalTransform

    dataset = open_dataset(video_folder, transform=EvalTransform(16), frame_step=5)
    names = [n for n in dataset.filenames if n.startswith("walks/clip_mp4")]
    assert names == ["walks/clip_mp4-00", "walks/clip_mp4-05", "walks/clip_mp4-10"]
    sample, _, _ = dataset[dataset.filenames.index("walks/clip_mp4-10")]
    assert sample.shape == (3, 16, 16)


def test_corrupt_videos_are_skipped_with_a_warning(video_folder):
    with open(os.path.join(video_folder, "walks", "broken.mp4"), "wb") as handle:
        handle.write(b"\x00\x00\x00\x18ftypmp42" + os.urandom(200))
    open(os.path.join(video_folder, "walks", "empty.webm"), "wb").close()
    with pytest.warns(UserWarning) as record:
        dataset = open_dataset(video_folder)
    messages = " ".join(str(w.message) for w in record)
    assert "broken.mp4" in messages and "empty.webm" in messages
    assert set(dataset.skipped_files()) == {"walks/broken.mp4", "walks/empty.webm"}
    assert len(dataset) == 70


def test_a_folder_with_images_stays_an_image_folder(video_folder):
    write_image(os.path.join(video_folder, "walks", "still.png"))
    dataset = open_dataset(video_folder)
    assert type(dataset) is SSLDataset and dataset.filenames == ["walks/still.png"]


def test_train_and_embed_a_folder_of_videos(video_folder, tmp_path):
    from easyssl import embed_images, train_embedding_model

    checkpoint = train_embedding_model(video_folder, checkpoint_dir=tmp_path / "run", **fast_config(loader={"batch_size": 16}))
    embeddings, labels, filenames = embed_images(video_folder, checkpoint, progress_bar=False, num_workers=2, batch_size=16)
    assert embeddings.shape == (70, 96) and filenames == open_dataset(video_folder).filenames
    assert labels == [0] * 10 + [1] * 60 and np.isfinite(embeddings).all()


def test_without_pyav_the_error_says_what_to_install(video_folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # import av now fails
    with pytest.raises(ImportError, match=r"pip install 'easyssl\[video\]'"):
        open_dataset(video_folder)


def test_without_pyav_video_folder_is_still_detected(tmp_path, monkeypatch):
    # Detection needs no PyAV: a video folder without the extra says what to install, whatever the files hold.
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.MP4").write_bytes(b"whatever")
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match="PyAV"):
        open_dataset(tmp_path / "v")
    from easyssl.cli import main

    assert main(["train", str(tmp_path / "v"), "--epochs", "1"]) == 2  # a missing optional extra: one line, exit code 2


def test_importing_easyssl_never_imports_av():
    code = "import sys, easyssl, easyssl.data, easyssl.data.video, easyssl.api; assert 'av' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_ssl_dataset_reads_images_only_and_points_to_open_dataset(tmp_path, monkeypatch):
    # One constructor per class: SSLDataset never turns into a VideoDataset; it says what to use instead.
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.MP4").write_bytes(b"whatever")
    monkeypatch.setitem(sys.modules, "av", None)  # detection needs no PyAV
    with pytest.raises(VideoFolderError, match=r"holds videos, not images.*open_dataset.*VideoDataset") as info:
        SSLDataset(tmp_path / "v")
    assert isinstance(info.value, ValueError) and str(tmp_path / "v") in str(info.value)


def test_open_dataset_returns_a_video_dataset_with_its_own_constructor(video_folder, monkeypatch):
    calls = []
    original = VideoDataset.__init__
    monkeypatch.setattr(VideoDataset, "__init__", lambda self, *a, **k: calls.append((a, k)) or original(self, *a, **k))
    dataset = open_dataset(video_folder, frame_step=2)
    assert type(dataset) is VideoDataset and dataset.frame_step == 2 and len(calls) == 1
    with pytest.raises(VideoFolderError):
        SSLDataset(video_folder)
