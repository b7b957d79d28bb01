"""``resume=True``: which checkpoint a run continues from, and what it takes from it."""

from __future__ import annotations

import os
import warnings
from typing import Any

from easyssl.config import check_saved_config
from easyssl.runtime.checkpoint import load_checkpoint
from easyssl.train.trainer import LAST_CHECKPOINT


def resume_from(config: dict[str, Any], method: str) -> str | None:
    """The checkpoint a ``resume=True`` run continues from (None: a new run), after checking it; the model
    and view settings are taken from it (in place, in ``config``), so that the model is rebuilt exactly as saved."""
    if not config["resume"]:
        return None
    if not config["checkpoint_dir"]:
        raise ValueError("resume=True needs checkpoint_dir=<the folder of the run to continue>")
    candidate = os.path.join(os.fspath(config["checkpoint_dir"]), LAST_CHECKPOINT)
    if not os.path.exists(candidate):
        warnings.warn(f"resume=True but {candidate!r} does not exist: starting a new run there", stacklevel=4)
        return None
    saved = load_checkpoint(candidate).get("config") or {}
    if saved:
        check_saved_config(saved, candidate)
    if saved.get("method") and saved["method"] != method:
        raise ValueError(f"cannot resume {candidate!r}: it is a {saved['method']!r} run, not {method!r}")
    for section in ("model", "collate"):
        if section in saved:
            config[section] = saved[section]
    return candidate
