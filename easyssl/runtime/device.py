"""Device and numerical precision: which device ``"auto"`` means, which precision ``"auto"`` means, and autocast."""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import ContextManager

import torch

from easyssl.runtime import distributed, mps_env

#: CPU flags of bf16 matrix instructions: AMX-BF16 tiles (Intel Sapphire Rapids and later) and
#: AVX512-BF16 dot products (Intel Cooper Lake, AMD Zen 4 and later).
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")

#: The precisions :func:`resolve_precision` accepts besides ``"auto"``.
PRECISIONS = ("32", "bf16", "bf16-mixed", "16", "fp16", "16-mixed")

#: Those of :data:`PRECISIONS` that train under bf16 autocast.
BF16_PRECISIONS = ("bf16", "bf16-mixed")


#: Device types easyssl treats as GPUs in its defaults (batch size, loader workers, backbone width).
GPU_TYPES = ("cuda", "mps")


def mps_is_available() -> bool:
    """Whether an Apple GPU can be used (``torch.backends.mps.is_available()``; False on torch builds without MPS)."""
    backend = getattr(torch.backends, "mps", None)
    try:
        return bool(backend is not None and backend.is_available())
    except Exception:  # noqa: BLE001 - a broken Metal setup means no Apple GPU, not a crash
        return False


def mps_autocast_known() -> bool:
    """Whether this torch's autocast accepts ``device_type="mps"`` (torch 2.5 and later). Older versions raise
    ``RuntimeError: unsupported autocast device_type 'mps'`` even for ``enabled=False``, which easyssl's losses
    use to compute in float32, so easyssl trains on Apple GPUs only with a torch that knows them."""
    known = getattr(torch.amp, "is_autocast_available", None)
    try:
        return bool(known is not None and known("mps"))
    except Exception:  # noqa: BLE001 - an older torch: no
        return False


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``"auto"``/None -> the local CUDA device when there is one, else an Apple GPU (MPS) when there is one and
    torch supports it there (:func:`mps_autocast_known`; else a warning and the CPU), else the CPU.

    On an Apple GPU, operators Metal lacks run on the CPU through torch's fallback, which easyssl
    switches on when it is imported (see :mod:`easyssl.runtime.mps_env`); a warning says so when
    that came too late.
    """
    if device is None or device == "auto":
        if torch.cuda.is_available():
            index = int(os.environ.get("LOCAL_RANK", 0)) if distributed.is_distributed() else torch.cuda.current_device()
            return torch.device("cuda", index)
        if mps_is_available():
            if mps_autocast_known():
                check_mps_fallback()
                return torch.device("mps")
            _warn_once(f"an Apple GPU is there, but torch {torch.__version__} is too old to train on it (its autocast does not "
                       "know 'mps'; torch 2.5 or newer does): using the CPU. pip install -U torch to use the GPU")
        return torch.device("cpu")
    resolved = torch.device(device)
    if resolved.type == "mps":
        if not mps_autocast_known():
            raise ValueError(f"device='mps' needs torch 2.5 or newer (this is {torch.__version__}, whose autocast does not know "
                             "Apple GPUs): pip install -U torch, or use device='cpu'")
        check_mps_fallback()
    return resolved


_FALLBACK_WARNED: list[bool] = []


def check_mps_fallback() -> bool:
    """Whether operators Metal lacks will run on the CPU in this process; warns once when they will not.

    torch reads ``PYTORCH_ENABLE_MPS_FALLBACK`` only when it loads, so it is in effect when it was
    set before ``import torch``: by the user, or by easyssl's import (:mod:`easyssl.runtime.mps_env`)
    when easyssl was imported first. Explicitly ``0``: the user's choice, no warning.
    """
    requested = mps_env.fallback_requested()
    in_effect = requested and not (mps_env.TORCH_LOADED_FIRST and mps_env.SET_BY_EASYSSL)
    explicit_off = mps_env.FALLBACK_VARIABLE in os.environ and not requested
    if not in_effect and not explicit_off:
        _warn_once(
            "training on an Apple GPU (MPS) without torch's CPU fallback: torch was imported before easyssl, so "
            f"{mps_env.FALLBACK_VARIABLE}=1 came too late, and an operator Metal lacks would stop training with "
            f"NotImplementedError. Set it before Python starts (export {mps_env.FALLBACK_VARIABLE}=1) or import easyssl before torch"
        )
    return in_effect


def _warn_once(message: str) -> None:
    """A RuntimeWarning about the Apple GPU, once per process (device resolution runs for every train and embed call)."""
    if not _FALLBACK_WARNED:
        _FALLBACK_WARNED.append(True)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def autocast(device: torch.device, precision: str, cache_enabled: bool = True) -> ContextManager:
    """The autocast context of a resolved ``precision`` (see :func:`resolve_precision`) on ``device``:
    bf16 or float16 autocast, or a no-op context for ``"32"``. ``cache_enabled=False`` inside a CUDA graph's capture
    (autocast's cache of cast weights cannot outlive it)."""
    if precision in BF16_PRECISIONS:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=cache_enabled)
    if precision in ("16", "fp16", "16-mixed"):
        return torch.autocast(device_type=device.type, dtype=torch.float16, cache_enabled=cache_enabled)
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


def mps_autocast_dtypes() -> tuple[torch.dtype, ...]:
    """The autocast dtypes this torch supports on Apple GPUs: float16 where torch has MPS autocast at all
    (``torch.amp.is_autocast_available("mps")``, recent torch), bfloat16 too on macOS 14 or newer (torch's autocast disables itself for bf16 on older
    macOS, so easyssl refuses it up front); () where there is no MPS autocast."""
    try:
        if not mps_autocast_known():
            return ()
        newer = getattr(torch.backends.mps, "is_macos_or_newer", None)
        bf16 = newer is not None and mps_is_available() and bool(newer(14, 0))
    except Exception:  # noqa: BLE001 - no Metal: no autocast there
        return ()
    return (torch.float16, torch.bfloat16) if bf16 else (torch.float16,)


def resolve_precision(precision: str | int | None, device: torch.device) -> str:
    """``"auto"`` -> ``"bf16"`` autocast on CUDA devices that support it and on CPUs with bf16 matrix
    instructions, AMX-BF16 or AVX512-BF16 (1.6-2.5 times the float32 speed in the README's step timings on 2 cores,
    1.2-1.3 times in whole training runs on a 2-core AMD EPYC; see the README's Performance section); else ``"32"``.

    Apple GPUs (MPS): ``"auto"`` is ``"32"``. float16 autocast there is opt-in (``"16"``): the
    trainer has no loss scaling, so small gradients of the SSL losses could underflow in float16;
    ``"bf16"`` needs macOS 14+ and a torch with MPS autocast (see :func:`mps_autocast_dtypes`),
    is emulated on the older Apple GPUs, and its speed there is unmeasured, so it is not the default
    either. An unsupported choice raises ``ValueError`` rather than silently running float32.
    """
    precision = str(precision) if precision is not None else "auto"
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "32"
        return "bf16" if device.type == "cpu" and cpu_has_bf16_matrix_units() else "32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be 'auto' or one of {', '.join(PRECISIONS)}, got {precision!r}")
    if device.type == "mps" and precision != "32":
        wanted = torch.bfloat16 if precision.startswith("bf16") else torch.float16
        if wanted not in mps_autocast_dtypes():
            raise ValueError(
                f"precision={precision!r} is not available on this Apple GPU: autocast to {str(wanted).replace('torch.', '')} "
                "needs a torch with MPS autocast (float16) and macOS 14+ (bfloat16); use precision='32' (the default there)"
            )
    return precision
