"""A training batch that does not fit in memory ends with an error that names the batch size and the memory.

Without this, a batch too large for the GPU ends in a bare ``CUDA out of memory`` deep in a convolution,
and one too large for the machine's RAM in ``DefaultCPUAllocator: not enough memory`` (or, where the system
overcommits, in swapping that looks like a hang). :func:`explain_out_of_memory` turns both into a
:class:`BatchTooLargeError` saying which batch size failed, how much memory the device has and how much
the step held, and what to pass instead (half the batch).
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

#: Phrases of the errors PyTorch raises when an allocation fails (CUDA, the CPU allocator, MPS).
OUT_OF_MEMORY_PHRASES = ("out of memory", "not enough memory", "can't allocate memory", "failed to allocate")


class BatchTooLargeError(MemoryError):
    """A training step ran out of memory: the message names the batch size, the memory, and a batch size to try."""


def device_memory(device: torch.device) -> tuple[int | None, int | None]:
    """``(total, in use)`` bytes of ``device``'s memory (the GPU's, or the machine's RAM for a CPU); None where unknown."""
    if device.type == "cuda":
        try:
            free, total = torch.cuda.mem_get_info(device)
            return int(total), int(total - free)
        except RuntimeError:
            return None, None
    try:
        with open("/proc/meminfo") as handle:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in handle if ":" in line}
        return info.get("MemTotal"), info.get("MemTotal", 0) - info.get("MemAvailable", 0)
    except (OSError, ValueError, IndexError):
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), None
        except (ValueError, OSError, AttributeError):
            return None, None


def _gib(value: int | None) -> str:
    return "unknown" if value is None else f"{value / 2**30:.1f} GiB"


def is_out_of_memory(error: BaseException) -> bool:
    """True for the errors PyTorch raises when an allocation fails."""
    if isinstance(error, getattr(torch, "OutOfMemoryError", ())) or isinstance(error, MemoryError):
        return True
    return isinstance(error, RuntimeError) and any(phrase in str(error).lower() for phrase in OUT_OF_MEMORY_PHRASES)


def out_of_memory_message(batch_size: int | None, device: torch.device) -> str:
    """The message of :class:`BatchTooLargeError` for a loader of ``batch_size`` images a batch training on ``device``."""
    total, used = device_memory(device)
    where = f"the GPU ({device})" if device.type == "cuda" else "this machine's RAM"
    peak = ""
    if device.type == "cuda":
        with contextlib.suppress(RuntimeError):
            peak = f", the step had allocated {_gib(torch.cuda.max_memory_allocated(device))}"
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if device.type != "cuda" and soft != resource.RLIM_INFINITY:
            where += f", of which this process may address {_gib(soft)} (ulimit -v)"
    smaller = max(1, (batch_size or 2) // 2)
    return (
        f"loader.batch_size={batch_size} does not fit in the memory of {where} (the step's views, activations and gradients): "
        f"{_gib(total)} in all, {_gib(used)} in use{peak}. Use a smaller batch, e.g. loader={{'batch_size': {smaller}}} "
        "(the learning rate follows it), a smaller model or collate={'input_size': ...}"
    )


@contextlib.contextmanager
def explain_out_of_memory(batch_size: int | None, device: torch.device) -> Iterator[None]:
    """Re-raise an out-of-memory error of the block as :class:`BatchTooLargeError` naming ``batch_size`` and the memory."""
    try:
        yield
    except BatchTooLargeError:
        raise
    except BaseException as error:
        if not is_out_of_memory(error):
            raise
        if device.type == "cuda":
            with contextlib.suppress(RuntimeError):
                torch.cuda.empty_cache()
        raise BatchTooLargeError(out_of_memory_message(batch_size, device)) from error
