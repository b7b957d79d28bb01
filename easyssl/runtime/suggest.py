"""Did-you-mean hints for unknown names: config keys, methods, backbones, command-line options.

A name that is not known is most often a typo (``max_epoch``) or the name another library
uses for the same thing; LightlySSL users bring theirs (``model={"name": "resnet-18"}``,
``trainer={"gpus": 1}``, a top-level ``max_epochs``). :func:`did_you_mean` turns either into
the one hint that fixes it: the known name of the alias tables below first (they map another
library's name to easyssl's, possibly in another config section), else the closest spelling
(:func:`difflib.get_close_matches`). It sits in the bottom layer so that the config, the
method and backbone registries and the command line all give the same hints.
"""

from __future__ import annotations

import difflib
from typing import Iterable, Mapping

__all__ = ["CONFIG_ALIASES", "METHOD_ALIASES", "closest", "config_key_hint", "did_you_mean"]

#: Config keys of LightlySSL (and of PyTorch Lightning's Trainer, which LightlySSL passes
#: ``trainer`` to) or common spellings, as ``(section or None for top level, key) -> (section, key)``
#: of easyssl's config; ``None`` as key: the setting has no key, the hint says why (see :data:`NO_KEY`).
CONFIG_ALIASES: dict[tuple[str | None, str], tuple[str | None, str | None]] = {
    ("model", "name"): ("model", "backbone"),
    ("model", "arch"): ("model", "backbone"),
    ("model", "architecture"): ("model", "backbone"),
    ("model", "model_name"): ("model", "backbone"),
    ("model", "num_ftrs"): ("model", None),
    ("model", "num_features"): ("model", None),
    ("model", "pretrained"): ("model", "weights"),
    ("model", "pre_trained"): ("model", "weights"),
    ("trainer", "gpus"): ("trainer", "device"),
    ("trainer", "accelerator"): ("trainer", "device"),
    ("trainer", "devices"): ("trainer", "device"),
    ("trainer", "epochs"): ("trainer", "max_epochs"),
    ("trainer", "enable_progress_bar"): ("trainer", "progress_bar"),
    ("loader", "workers"): ("loader", "num_workers"),
    ("loader", "bs"): ("loader", "batch_size"),
    ("optimizer", "learning_rate"): ("optimizer", "lr"),
    ("optimizer", "wd"): ("optimizer", "weight_decay"),
    ("optimizer", "type"): ("optimizer", "name"),
    ("collate", "image_size"): ("collate", "input_size"),
    ("collate", "img_size"): ("collate", "input_size"),
    ("collate", "size"): ("collate", "input_size"),
    ("criterion", "temp"): ("criterion", "temperature"),
    ("criterion", "tau"): ("criterion", "temperature"),
    (None, "gpus"): ("trainer", "device"),
    (None, "device"): ("trainer", "device"),
    (None, "epochs"): ("trainer", "max_epochs"),
    (None, "backbone"): ("model", "backbone"),
    (None, "num_ftrs"): ("model", None),
    (None, "lr"): ("optimizer", "lr"),
    (None, "learning_rate"): ("optimizer", "lr"),
    (None, "temperature"): ("criterion", "temperature"),
    (None, "checkpoint"): (None, "checkpoint_dir"),
    (None, "output_dir"): (None, "checkpoint_dir"),
    (None, "checkpoint_callback"): (None, "checkpoint_dir"),
    (None, "run_dir"): (None, "checkpoint_dir"),
}

#: Why a key has no counterpart, for the aliases mapped to ``(section, None)``.
NO_KEY: dict[str, str] = {
    "num_ftrs": "easyssl finds the backbone's feature size itself: leave num_ftrs out and choose the size with "
    "model={'backbone': ..., 'width': ...}",
    "num_features": "easyssl finds the backbone's feature size itself: leave it out and choose the size with "
    "model={'backbone': ..., 'width': ...}",
}

#: Method names of other libraries and papers -> easyssl's method.
METHOD_ALIASES: dict[str, str] = {
    "mocov1": "moco", "mocov2": "moco", "simclrv1": "simclr", "simclrv2": "simclr", "barlow": "barlowtwins",
    "dinov1": "dino", "dinov2": "dino", "vicregl": "vicreg", "mocov3vit": "mocov3",
}


def closest(name: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice spelled most like ``name`` (case and ``-``/``_`` ignored), or None when none is close."""
    choices = list(choices)
    if not choices:
        return None
    def canon(text: str) -> str:
        return str(text).lower().replace("-", "").replace("_", "")
    by_canon = {canon(c): c for c in choices}
    if canon(name) in by_canon:
        return by_canon[canon(name)]
    match = difflib.get_close_matches(canon(name), list(by_canon), n=1, cutoff=cutoff)
    return by_canon[match[0]] if match else None


def did_you_mean(name: str, choices: Iterable[str], aliases: Mapping[str, str] | None = None) -> str:
    """``" (did you mean `x`?)"``: text to append to an error about the unknown ``name``, or ``""``.

    Example:
        >>> "unknown method 'simclrr'" + did_you_mean("simclrr", ["simclr", "byol"])
        "unknown method 'simclrr' (did you mean `simclr`?)"
    """
    choices = list(choices)
    key = str(name).lower().replace("-", "").replace("_", "")
    target = (aliases or {}).get(key)
    if target is None or target not in choices:
        target = closest(str(name), choices)
    return f" (did you mean `{target}`?)" if target else ""


def _section_call(section: str | None, key: str, sections: Iterable[str] = ()) -> str:
    if section is None:
        return f"`{key}={{...}}`" if key in sections else f"`{key}=...`"
    return f"`{section}={{'{key}': ...}}`"


def config_key_hint(section: str | None, key: str, reference: Mapping[str, object]) -> str:
    """The hint for an unknown config ``key`` in ``section`` (None: the top level) of a config like ``reference``
    (a full default config, whose sections are dicts): ``" (did you mean `trainer={'max_epochs': ...}`?)"`` or ``""``.

    In order: an alias of :data:`CONFIG_ALIASES`; the same key in another section (``loader={'max_epochs': 3}``,
    a top-level ``batch_size``); the closest spelling in the same section.
    """
    sections = [name for name, value in reference.items() if isinstance(value, dict)]
    keys = {name: list(value) for name, value in reference.items() if isinstance(value, dict)}
    top = list(reference)
    alias = CONFIG_ALIASES.get((section, str(key)))
    if alias is not None:
        target_section, target_key = alias
        if target_key is None:
            return f" ({NO_KEY.get(str(key), 'it has no counterpart in easyssl')})"
        valid = top if target_section is None else keys.get(target_section, [])
        if target_key in valid:
            return f" (did you mean {_section_call(target_section, target_key)}?)"
    homes = [name for name in sections if name != section and key in keys[name]]
    if section is not None and key in top and key not in sections:
        homes.insert(0, None)  # a top-level key put inside a section
    if homes:
        return f" (did you mean {_section_call(homes[0], str(key))}?)"
    if section is None and str(key) in sections:
        return ""
    spelled = closest(str(key), keys.get(section, []) if section is not None else top)
    if spelled is not None:
        return f" (did you mean {_section_call(section, spelled, sections)}?)"
    return ""
