"""Listing folders of images or videos, without opening any file.

This is the one place that knows which file names are images or videos and how a folder's
sub-folders become labels; :mod:`easyssl.data.dataset` (images) and :mod:`easyssl.data.video`
(videos) both list their folders through it.
"""

from __future__ import annotations

import os
import warnings
from typing import Callable

from easyssl.data.images import IMAGE_EXTENSIONS, is_image_file

#: File extensions read as videos (compared case-insensitively).
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def is_video_file(name: str) -> bool:
    """True when ``name`` ends in one of :data:`VIDEO_EXTENSIONS` (any case)."""
    return name.lower().endswith(VIDEO_EXTENSIONS)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def scan_files(folder: str | os.PathLike, is_wanted: Callable[[str], bool]) -> list[str]:
    """All wanted files under ``folder`` (recursively, hidden folders skipped), as sorted ``/``-separated paths relative to it.

    Symbolic links to folders are followed, except a link back to one of its own parent folders (a loop,
    which would never end): it is skipped with a warning naming it. A sub-folder that cannot be listed
    (permission denied) is skipped with a warning too.
    """
    folder = os.fspath(folder)
    found: list[str] = []
    root = _identity(folder)
    stack: list[tuple[str, frozenset]] = [("", frozenset([root]) if root else frozenset())]
    problems: list[str] = []
    while stack:
        relative, ancestors = stack.pop()
        try:
            with os.scandir(os.path.join(folder, relative) if relative else folder) as entries:
                for entry in entries:
                    name = f"{relative}/{entry.name}" if relative else entry.name
                    try:
                        is_dir = entry.is_dir(follow_symlinks=True)
                    except OSError:  # a link to itself, or to something unreadable
                        is_dir = False
                    if is_dir:
                        if entry.name.startswith("."):
                            continue
                        identity = _identity(entry.path)
                        if identity is None or identity in ancestors:
                            problems.append(f"{name!r} (a link back to a folder that contains it)")
                            continue
                        stack.append((name, ancestors | {identity}))
                    elif is_wanted(entry.name):
                        found.append(name)
        except OSError as error:
            if not relative:
                raise
            problems.append(f"{relative!r} ({error.strerror or error})")
    if problems:
        shown = ", ".join(problems[:10]) + (f", ... ({len(problems) - 10} more)" if len(problems) > 10 else "")
        warnings.warn(f"easyssl: skipped {len(problems)} folder(s) while listing {folder!r}: {shown}", stacklevel=2)
    found.sort()
    return found


def has_video_files(folder: str | os.PathLike) -> bool:
    """True when ``folder`` (or a sub-folder) holds at least one video file."""
    folder = os.fspath(folder)
    return os.path.isdir(folder) and bool(scan_files(folder, is_video_file))


def list_image_folder(
    input_dir: str | os.PathLike, is_wanted: Callable[[str], bool] = is_image_file, kind: str = "image"
) -> tuple[list[str], list[int], list[str]]:
    """List a folder of files as ``(filenames, labels, class_names)`` without opening any.

    A flat folder gives label 0 to every file. With sub-folders, each top-level sub-folder
    is a class (labels follow the sorted folder names; files in deeper folders belong to
    their top-level folder) and files lying directly in ``input_dir`` get label -1.
    Filenames are relative to ``input_dir`` with ``/`` separators, sorted.

    Args:
        input_dir: The folder.
        is_wanted: Which file names to list (default: images, :func:`~easyssl.data.images.is_image_file`;
            :func:`is_video_file` for videos).
        kind: ``"image"`` or ``"video"``, for the error messages.

    Raises:
        FileNotFoundError: ``input_dir`` does not exist.
        NotADirectoryError: ``input_dir`` is a file.
        ValueError: the folder holds no file of a supported type.
    """
    folder = os.fspath(input_dir)
    if not os.path.exists(folder):
        raise FileNotFoundError(f"input_dir {folder!r} does not exist: pass the folder that holds your {kind}s")
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"input_dir {folder!r} is a file, not a folder: pass the folder that holds your {kind}s")
    files = scan_files(folder, is_wanted)
    if not files:
        extensions = {"image": IMAGE_EXTENSIONS, "video": VIDEO_EXTENSIONS}.get(kind)
        raise ValueError(
            f"input_dir {folder!r} contains no {kind} files (looked for "
            f"{', '.join(extensions) if extensions else 'supported extensions'}, in any case, "
            "in the folder and its sub-folders"
            + (f"; folders of videos ({', '.join(VIDEO_EXTENSIONS)}) are read by easyssl.data.open_dataset" if kind == "image" else "")
            + ")"
        )
    class_names = sorted({f.split("/", 1)[0] for f in files if "/" in f})
    if not class_names:
        return files, [0] * len(files), []
    index = {name: i for i, name in enumerate(class_names)}
    labels = [index[f.split("/", 1)[0]] if "/" in f else -1 for f in files]
    return files, labels, class_names
