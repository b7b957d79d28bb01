"""An ``argparse`` parser whose usage errors end with a did-you-mean hint.

argparse (before Python 3.14) names an unknown option or an invalid choice but does not
suggest the one meant; ``easyssl trian`` or ``--epoch 3`` then leaves the user to read the
whole usage. :class:`SuggestingParser` adds the closest known spelling
(:func:`easyssl.runtime.suggest.closest`), and maps the LightlySSL command line's names
(``trainer.max_epochs=10``, ``input_dir=...``) to easyssl's options.
"""

from __future__ import annotations

import argparse
import re
from typing import Any, NoReturn, Sequence

from easyssl.runtime.suggest import closest

__all__ = ["LIGHTLY_CLI_NAMES", "SuggestingParser"]

#: LightlySSL's command-line arguments (``key=value`` words, Hydra style) -> easyssl's option.
LIGHTLY_CLI_NAMES: dict[str, str] = {
    "trainer.max_epochs": "--epochs",
    "max_epochs": "--epochs",
    "input_dir": "the folder as a plain argument (easyssl train my/images/)",
    "checkpoint": "--checkpoint",
    "trainer.gpus": "--device (auto uses the GPU when there is one)",
    "loader.batch_size": "--batch-size",
    "loader.num_workers": "--num-workers",
    "collate.input_size": "--input-size",
    "model.name": "--backbone",
}


class SuggestingParser(argparse.ArgumentParser):
    """``ArgumentParser`` that remembers its options and sub-command parsers, and whose errors suggest the
    closest option, choice or sub-command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.known_options: list[str] = []  # before argparse's __init__, which adds --help
        #: Sub-command name -> its parser (filled by :meth:`add_command_parser`).
        self.command_parsers: dict[str, SuggestingParser] = {}
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.known_options.extend(action.option_strings)
        return action

    def add_command_parser(self, subparsers: Any, name: str, **kwargs: Any) -> "SuggestingParser":
        """``subparsers.add_parser(name, ...)`` (``subparsers`` made with ``parser_class=SuggestingParser``), remembered."""
        parser = subparsers.add_parser(name, **kwargs)
        self.command_parsers[name] = parser
        return parser

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self.command_parsers.get(str(getattr(namespace, "command", "")))
            options = (command or self).known_options
            hints = [hint for hint in (self.hint(word, options) for word in extras) if hint]
            (command or self).error(f"unrecognized arguments: {' '.join(extras)}" + (f" ({'; '.join(hints)})" if hints else ""))
        return namespace

    @staticmethod
    def hint(word: str, options: Sequence[str]) -> str:
        """The suggestion for one unrecognised word: a LightlySSL name, else the closest option, else ``""``."""
        key = word.split("=", 1)[0].lstrip("-")
        if key in LIGHTLY_CLI_NAMES and not word.startswith("-"):
            return f"{word!r} is LightlySSL's; easyssl's is {LIGHTLY_CLI_NAMES[key]}"
        if not word.startswith("-"):
            return ""
        match = closest(word.split("=", 1)[0], options)
        return f"did you mean `{match}`?" if match else ""

    def error(self, message: str) -> NoReturn:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            choices = re.findall(r"'([^']*)'", choice.group(2))
            match = closest(choice.group(1), choices)
            if match:
                message += f" (did you mean `{match}`?)"
        super().error(message)
