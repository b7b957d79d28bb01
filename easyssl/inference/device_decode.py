"""Embedding JPEG photos with the decoding and resizing on the GPU.

On a GPU the CPU path (every image decoded and resized with PIL in loader workers) is decode-bound: a
ResNet-50 embeds several thousand 224 px images a second, a CPU core decodes a few hundred photos. Here
the workers only read the files (:class:`~easyssl.data.encoded.EncodedImageDataset`, every core reading
ahead), the device decodes each batch at once (``torchvision.io.decode_jpeg(..., device="cuda")``, nvJPEG)
and applies the evaluation transform (resize with antialiasing, centre crop, normalise) to the decoded
tensors on the device, while a background thread prepares the next batch, so loading overlaps the model.

The same code runs with ``device="cpu"`` (torchvision's libjpeg-turbo instead of Pillow's): that is the
CPU fallback, and what the tests check. The evaluation transform is the very same function on the
decoded tensor as on the PIL path (which turns the PIL image into a tensor first), so the only
difference is the JPEG decoder's rounding (on the CPU up to one or two grey levels per pixel; nvJPEG's
IDCT may differ as much): embeddings agree to about 1e-2 relative. Non-JPEG files, CMYK JPEGs, JPEGs
with an EXIF rotation (nvJPEG ignores it), images over the pixel limit and files the decoder rejects
take the PIL path.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import warnings
from typing import Any, Callable, Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from easyssl.data.encoded import EncodedCollate, EncodedImageDataset, is_encoded
from easyssl.defaults import default_device_decode


def device_decode_available(device: torch.device) -> bool:
    """True when JPEGs can be decoded on ``device``: a CUDA device with torchvision's nvJPEG decoder (CPU: always)."""
    if device.type == "cpu":
        return True
    if device.type != "cuda":
        return False
    try:
        from torchvision.io import decode_jpeg  # noqa: F401
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return False
    return torch.cuda.is_available()


def decode_batch(samples: list[Any], transform: Callable, device: torch.device, fallback: Callable[[int], Any] | None = None) -> tuple[torch.Tensor | None, list[int]]:
    """The images of a batch of :class:`EncodedImageDataset` samples as one ``(B, 3, S, S)`` float tensor on ``device``.

    JPEG bytes are decoded together on ``device`` and passed through ``transform`` there; samples already
    decoded on the CPU (the fallback path) are moved to ``device``. A JPEG the decoder rejects is given to
    ``fallback(position)`` (a PIL decode; None when it cannot be read either, and the sample is dropped).

    Returns:
        ``(images, kept)``: the images (None when none is left) and the positions in ``samples`` they come from.
    """
    from torchvision.io import ImageReadMode, decode_jpeg

    positions = [i for i, s in enumerate(samples) if is_encoded(s)]
    decoded: dict[int, Any] = {}
    if positions:
        data = [samples[i] for i in positions]
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders for torchcodec's (same calls)
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                images = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
            except RuntimeError:  # one bad file fails the whole batch: decode one by one to find it
                images = []
                for item in data:
                    try:
                        images.append(decode_jpeg(item, mode=ImageReadMode.RGB, device=device))
                    except RuntimeError:
                        images.append(None)
        for i, image in zip(positions, images):
            decoded[i] = transform(image) if image is not None else (fallback(i) if fallback is not None else None)
    out, kept = [], []
    for i, sample in enumerate(samples):
        image = decoded[i] if i in decoded else sample
        if image is not None:
            out.append(image.to(device, non_blocking=True))
            kept.append(i)
    return (torch.stack(out) if out else None), kept


class DeviceDecodedLoader:
    """An iterable of ``(images on device, targets, filenames)`` batches of a folder, its JPEGs decoded on ``device``.

    Drop-in for the embedding loop's loader (:func:`~easyssl.inference.iter_embeddings`): ``len()`` is the
    number of batches, a batch whose files were all unreadable is ``(None, targets, [])``.

    Args:
        dataset: An :class:`~easyssl.data.SSLDataset` over a folder of images.
        transform: The evaluation transform (applied to decoded tensors on ``device``, or to PIL images).
        device: Where to decode (``cuda``; ``cpu`` runs the same code with the CPU decoder).
        batch_size, num_workers, sampler: As for a ``DataLoader`` (the workers read files and run the PIL fallback).
        prefetch: Batches decoded ahead by the background thread (0: decode in the caller's thread).
    """

    def __init__(self, dataset: Any, transform: Callable, device: torch.device, batch_size: int = 512, num_workers: int = 0,
                 sampler: Sampler | None = None, prefetch: int = 2) -> None:
        self.dataset = dataset
        self.transform = transform
        self.device = torch.device(device)
        self.prefetch = int(prefetch)
        self.loader = DataLoader(
            EncodedImageDataset(dataset, transform), batch_size=batch_size, shuffle=False, sampler=sampler,
            num_workers=num_workers, collate_fn=EncodedCollate(), pin_memory=False,
        )
        self._index: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.loader)

    def _fallback(self, name: str) -> Any:
        """A file the device decoder rejected, through the PIL path (None when unreadable: recorded as skipped)."""
        if self._index is None:
            self._index = {n: i for i, n in enumerate(self.dataset.filenames)}
        image, _ = self.dataset.load_or_none(self._index[name])
        return None if image is None else self.transform(image)

    def _batches(self) -> Iterator[tuple[torch.Tensor | None, torch.Tensor, list[str]]]:
        for samples, targets, names in self.loader:
            images, kept = decode_batch(samples, self.transform, self.device, lambda i: self._fallback(names[i]))
            yield images, targets[kept], [names[i] for i in kept]

    def __iter__(self) -> Iterator[tuple[torch.Tensor | None, torch.Tensor, list[str]]]:
        if self.prefetch <= 0:
            yield from self._batches()
            return
        yield from _ahead(self._batches(), self.prefetch, self.device)


def _ahead(batches: Iterator, depth: int, device: torch.device) -> Iterator:
    """Run ``batches`` in a background thread, ``depth`` batches ahead (on a CUDA side stream, so that decoding
    overlaps the model's kernels); errors are re-raised in the caller's thread."""
    stream = torch.cuda.Stream(device) if device.type == "cuda" else None
    out: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
                for batch in batches:
                    event = None
                    if stream is not None:
                        event = torch.cuda.Event()
                        event.record(stream)
                    while not stop.is_set():
                        try:
                            out.put((batch, event), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            out.put((done, None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            out.put((error, None))

    thread = threading.Thread(target=work, name="easyssl-device-decode", daemon=True)
    thread.start()
    try:
        while True:
            batch, event = out.get()
            if batch is done:
                return
            if isinstance(batch, BaseException):
                raise batch
            if event is not None:
                torch.cuda.current_stream(device).wait_event(event)
                if batch[0] is not None:
                    batch[0].record_stream(torch.cuda.current_stream(device))
            yield batch
    finally:
        stop.set()
        thread.join(timeout=5)


def use_device_decode(dataset: Any, device: torch.device, decode: str = "auto") -> bool:
    """Whether to embed ``dataset`` with :class:`DeviceDecodedLoader`: ``decode="device"`` always (where possible),
    ``"pil"`` never, ``"auto"`` for a folder of images (not videos, not a wrapped dataset) on a CUDA device with few
    CPU cores (:func:`easyssl.defaults.default_device_decode`: on many cores, PIL in loader workers is faster).

    ``EASYSSL_DECODE=pil`` or ``=device`` in the environment overrides ``"auto"`` (to compare the two paths).
    """
    if decode == "auto":
        decode = os.environ.get("EASYSSL_DECODE", "auto").lower()
    if decode not in ("auto", "device", "pil"):
        raise ValueError(f"decode must be 'auto', 'device' or 'pil', got {decode!r}")
    is_folder = bool(getattr(dataset, "input_dir", "")) and not hasattr(dataset, "videos") and hasattr(dataset, "load_or_none")
    if decode == "pil" or not is_folder or not device_decode_available(device):
        return False
    return decode == "device" or default_device_decode(device)
