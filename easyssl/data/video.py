"""Folders of videos read frame by frame with PyAV (the optional ``easyssl[video]`` extra).

Every frame is a sample named ``<video name>-<frame index>``: ``"clips/walk-007"`` is frame 7
of ``clips/walk.mp4`` (the video's path relative to the folder, without its extension; the
index is zero-padded to the number of digits of the video's frame count, so names sort in
frame order). PyAV is imported only when a video is read, never when easyssl is imported.
"""

from __future__ import annotations

import bisect
import os
import warnings
from collections import Counter, OrderedDict
from typing import Any, Callable

import numpy as np

from easyssl.data.dataset import SSLDataset
from easyssl.data.scan import VIDEO_EXTENSIONS, has_video_files, is_video_file, list_image_folder

__all__ = ["VIDEO_EXTENSIONS", "VIDEO_INSTALL_HINT", "VideoDataset", "has_video_files", "import_av", "is_video_file"]

#: What to install to read videos.
VIDEO_INSTALL_HINT = "pip install 'easyssl[video]' (or: pip install av)"

# Frames further ahead than this are reached by seeking rather than by decoding forward.
_MAX_FORWARD_DECODE = 32
# Open containers kept per process (each holds a file handle and a decoder).
_OPEN_CONTAINERS = 2


def import_av() -> Any:
    """Import PyAV, or raise an ImportError that says what to install."""
    try:
        import av
    except ImportError as error:
        raise ImportError(f"reading videos needs PyAV, an optional extra: {VIDEO_INSTALL_HINT}") from error
    return av


def _frame_timestamps(av: Any, path: str) -> np.ndarray:
    """Presentation timestamps of every frame of the first video stream, sorted (one demux pass, no decoding).

    Falls back to a decoding pass when the container gives packets no timestamps.
    """
    with av.open(path) as container:
        if not container.streams.video:
            raise OSError(f"{path!r} has no video stream")
        stream = container.streams.video[0]
        pts = [packet.pts for packet in container.demux(stream) if packet.size > 0]
    if any(p is None for p in pts):
        with av.open(path) as container:
            stream = container.streams.video[0]
            pts = [frame.pts for frame in container.decode(stream)]
        if any(p is None for p in pts):  # no timestamps at all: frames are addressed by their decode order
            return -np.arange(1, len(pts) + 1, dtype=np.int64)
    return np.sort(np.asarray(pts, dtype=np.int64))


class _OpenVideo:
    """An open container positioned somewhere in its video stream, for sequential reads without seeking."""

    def __init__(self, av: Any, path: str) -> None:
        self.container = av.open(path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.frames = None  # iterator over decoded frames
        self.position = None  # pts (or negative decode index) of the last frame returned
        self.count = 0  # frames decoded since the last seek from the start

    def close(self) -> None:
        self.container.close()

    def read(self, target: int, index: int, previous: int | None) -> Any:
        """The frame whose timestamp is ``target`` (frame number ``index``), as an RGB PIL image."""
        if target < 0:  # no timestamps: decode from the start (or onwards) counting frames
            wanted = -target - 1
            if self.frames is None or self.position is None or self.count > wanted:
                self.container.seek(0)
                self.frames = self.container.decode(self.stream)
                self.count = 0
            for frame in self.frames:
                self.count += 1
                if self.count - 1 == wanted:
                    self.position = target
                    return frame.to_image()
            raise OSError(f"frame {index} could not be decoded")
        start = int(self.stream.start_time or 0)
        plans: list[int | None] = []  # None: keep decoding forward from the last frame read
        if previous is not None and self.frames is not None and self.position is not None and self.position <= previous < target:
            plans.append(None)
        plans.append(int(target))
        if int(target) > start:
            plans.append(start)  # fallback when a seek lands past the frame: decode from the start
        for attempt, plan in enumerate(plans):
            if plan is not None:
                self.container.seek(plan, stream=self.stream, backward=True, any_frame=False)
                self.frames = self.container.decode(self.stream)
            last_attempt = attempt == len(plans) - 1
            for frame in self.frames:
                if frame.pts is None or frame.pts < target:
                    continue
                if frame.pts > target and not last_attempt:
                    break
                self.position = int(frame.pts)
                return frame.to_image()
            self.frames, self.position = None, None
        raise OSError(f"frame {index} (timestamp {target}) could not be decoded")


class VideoDataset(SSLDataset):
    """A folder of videos whose items are frames: ``(sample, target, "video_name-<frame index>")``.

    Frames are counted once per video when the dataset is created (a pass over the packets
    with PyAV, no decoding) and decoded only when an item is read, by seeking to the
    nearest key frame (reading frames in order decodes forward without seeking). Labels
    come from class sub-folders as for images. Unreadable videos are skipped with a
    warning and listed by :meth:`skipped_files`; so are frames that fail to decode.
    :func:`~easyssl.data.open_dataset` returns one for a folder of videos.

    Args:
        input_dir: Folder of videos (mp4, avi, mov, mkv, webm; any case), flat or with
            class sub-folders.
        transform: Callable applied to each frame (an RGB PIL image).
        frame_step: Keep every ``frame_step``-th frame (1: every frame).

    Raises:
        ImportError: PyAV is not installed (the message says what to install).

    Example:
        >>> dataset = VideoDataset("my/videos/", frame_step=5)
        >>> frame, target, name = dataset[0]   # name == "walk-000"
    """

    def __init__(self, input_dir: str | os.PathLike, transform: Callable | None = None, frame_step: int = 1) -> None:
        if int(frame_step) < 1:
            raise ValueError(f"frame_step must be >= 1, got {frame_step}")
        av = import_av()
        self.input_dir = os.fspath(input_dir)
        self.transform = transform
        self.frame_step = int(frame_step)
        self._dataset = None
        videos, labels, self.classes = list_image_folder(self.input_dir, is_wanted=is_video_file, kind="video")
        stems = [os.path.splitext(v)[0] for v in videos]
        duplicated = {stem for stem, count in Counter(stems).items() if count > 1}
        self.videos: list[str] = []
        self._timestamps: list[np.ndarray] = []
        self._starts: list[int] = []  # first item index of each video
        self.filenames: list[str] = []
        self.targets: list[int] = []
        unreadable: list[str] = []
        for video, label, stem in zip(videos, labels, stems):
            try:
                timestamps = _frame_timestamps(av, os.path.join(self.input_dir, video))
            except Exception as error:  # corrupt, truncated, not a video: skip it with a warning
                unreadable.append(video)
                warnings.warn(f"easyssl: skipping video {video!r}, which cannot be read: {error}", stacklevel=2)
                continue
            kept = timestamps[:: self.frame_step]
            if len(kept) == 0:
                unreadable.append(video)
                warnings.warn(f"easyssl: skipping video {video!r}: it has no frames", stacklevel=2)
                continue
            name = video if stem in duplicated else stem
            width = len(str(len(timestamps) - 1))
            self.videos.append(video)
            self._timestamps.append(kept)
            self._starts.append(len(self.filenames))
            self.filenames.extend(f"{name}-{i * self.frame_step:0{width}d}" for i in range(len(kept)))
            self.targets.extend([label] * len(kept))
        if not self.filenames:
            raise ValueError(f"input_dir {self.input_dir!r} holds videos but none could be read: {', '.join(unreadable[:10])}")
        self._init_skip_record()
        self._skipped_other = list(unreadable)
        self._open: OrderedDict[int, _OpenVideo] = OrderedDict()
        self._last: dict[int, int] = {}

    def locate(self, index: int) -> tuple[str, int]:
        """``(video path relative to input_dir, frame index in that video)`` of item ``index``."""
        video = bisect.bisect_right(self._starts, index) - 1
        return self.videos[video], (index - self._starts[video]) * self.frame_step

    def load(self, index: int) -> tuple[Any, int]:
        """The frame of item ``index`` as an RGB PIL image, and its target.

        Raises:
            OSError: the frame cannot be decoded (the message names the video and frame).
        """
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        video = bisect.bisect_right(self._starts, index) - 1
        position = index - self._starts[video]
        target = int(self._timestamps[video][position])
        previous = int(self._timestamps[video][position - 1]) if position > 0 else None
        path = os.path.join(self.input_dir, self.videos[video])
        try:
            handle = self._handle(video, path)
            sequential = self._last.get(video) == position - 1 and self.frame_step <= _MAX_FORWARD_DECODE
            image = handle.read(target, position * self.frame_step, previous if sequential else None)
            self._last[video] = position
        except Exception as error:
            self._drop(video)
            raise OSError(f"cannot read frame {position * self.frame_step} of video {path!r}: {error}") from error
        return image.convert("RGB"), self.targets[index]

    def _handle(self, video: int, path: str) -> _OpenVideo:
        if not hasattr(self, "_open"):  # unpickled in a worker process
            self._open, self._last = OrderedDict(), {}
        handle = self._open.get(video)
        if handle is None:
            handle = _OpenVideo(import_av(), path)
            self._open[video] = handle
            while len(self._open) > _OPEN_CONTAINERS:
                old, oldest = self._open.popitem(last=False)
                self._last.pop(old, None)
                oldest.close()
        else:
            self._open.move_to_end(video)
        return handle

    def _drop(self, video: int) -> None:
        handle = getattr(self, "_open", {}).pop(video, None)
        getattr(self, "_last", {}).pop(video, None)
        if handle is not None:
            try:
                handle.close()
            except Exception:
                pass

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_open", None)
        state.pop("_last", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._open, self._last = OrderedDict(), {}

    def __del__(self) -> None:
        for handle in getattr(self, "_open", {}).values():
            try:
                handle.close()
            except Exception:
                pass
