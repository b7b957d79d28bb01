"""Apple GPUs (MPS): switch on torch's CPU fallback for operators Metal lacks, before torch is loaded.

Some operators have no Metal kernel yet; on an ``mps`` tensor they raise
``NotImplementedError`` unless the environment variable ``PYTORCH_ENABLE_MPS_FALLBACK=1`` is
set, in which case torch runs them on the CPU (slower, but training goes on). torch reads the
variable once, when its library is loaded (``import torch``: a static registration of the MPS
fallback kernel), so setting it later has no effect. easyssl's package ``__init__`` therefore
imports this module first, before anything imports torch: on macOS it sets the variable to 1
unless the user set it (an explicit ``0`` is respected). This module imports nothing but the
standard library, for that reason.

When torch was imported before easyssl, the variable comes too late for this process:
:func:`easyssl.runtime.device.resolve_device` then warns once when it picks an Apple GPU,
saying to set it in the shell (``export PYTORCH_ENABLE_MPS_FALLBACK=1``) or to import easyssl first.
"""

from __future__ import annotations

import os
import sys
from typing import MutableMapping

#: The variable torch reads when it loads.
FALLBACK_VARIABLE = "PYTORCH_ENABLE_MPS_FALLBACK"

#: Whether torch was already loaded when easyssl was imported (then the variable set here comes too late).
TORCH_LOADED_FIRST = "torch" in sys.modules


def enable_mps_fallback(environ: MutableMapping[str, str] | None = None, platform: str | None = None) -> bool:
    """On macOS, set ``PYTORCH_ENABLE_MPS_FALLBACK=1`` in ``environ`` (``os.environ``) unless it is set; returns
    whether this call set it. Elsewhere nothing is changed (there is no Apple GPU)."""
    environ = os.environ if environ is None else environ
    if (platform or sys.platform) != "darwin" or FALLBACK_VARIABLE in environ:
        return False
    environ[FALLBACK_VARIABLE] = "1"
    return True


def fallback_requested(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether the variable asks for the fallback (set to a non-zero integer)."""
    value = (os.environ if environ is None else environ).get(FALLBACK_VARIABLE, "")
    try:
        return int(value.strip()) != 0
    except ValueError:
        return False


#: Whether this import set the variable (on macOS, when the user had not).
SET_BY_EASYSSL = enable_mps_fallback()
