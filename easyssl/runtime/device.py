"""Device and numerical precision: which device ``"auto"`` means, which precision ``"auto"`` means, and autocast."""

from __future__ import annotations

import contextlib
import os
from typing import ContextManager

import torch

from easyssl.runtime import distributed

#: CPU flags of bf16 matrix instructions: AMX-BF16 tiles (Intel Sapphire Rapids and later) and
#: AVX512-BF16 dot products (Intel Cooper Lake, AMD Zen 4 and later).
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")

#: The precisions :func:`resolve_precision` accepts besides ``"auto"``.
PRECISIONS = ("32", "bf16", "bf16-mixed", "16", "fp16", "16-mixed")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``"auto"``/None -> the local CUDA device when there is one, else the CPU."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            index = int(os.environ.get("LOCAL_RANK", 0)) if distributed.is_distributed() else torch.cuda.current_device()
            return torch.device("cuda", index)
        return torch.device("cpu")
    return torch.device(device)


def autocast(device: torch.device, precision: str) -> ContextManager:
    """The autocast context of a resolved ``precision`` (see :func:`resolve_precision`) on ``device``:
    bf16 or float16 autocast, or a no-op context for ``"32"``."""
    if precision in ("bf16", "bf16-mixed"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision in ("16", "fp16", "16-mixed"):
        return torch.autocast(device_type=device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def cpu_has_bf16_matrix_units() -> bool:
    """True on CPUs with bf16 matrix instructions (:data:`BF16_CPU_FLAGS`), where oneDNN runs bf16
    convolutions 1.6-2.5x faster than float32 (measured on 2 cores, see the README); False when unknown."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split())
                    return any(flag in flags for flag in BF16_CPU_FLAGS) and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (OSError, AttributeError, RuntimeError):
        pass
    return False


def resolve_precision(precision: str | int | None, device: torch.device) -> str:
    """``"auto"`` -> ``"bf16"`` autocast on CUDA devices that support it and on CPUs with bf16 matrix
    instructions, AMX-BF16 or AVX512-BF16 (about twice the float32 speed on 2 cores, see the README's
    Performance section); else ``"32"``."""
    precision = str(precision) if precision is not None else "auto"
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "32"
        return "bf16" if device.type == "cpu" and cpu_has_bf16_matrix_units() else "32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be 'auto' or one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision
