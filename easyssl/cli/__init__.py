"""The ``easyssl`` command line: ``easyssl train``, ``embed``, ``run``, ``similar``, ``duplicates`` and friends.

Every sub-command is one row of :data:`COMMANDS` (name, help, a function adding its
arguments, the function running it), written out here in the order ``easyssl --help``
lists them; nothing registers a command anywhere else. ``main(argv)`` parses and
dispatches, and returns the exit code (so tests call it directly):

* ``0``: done;
* ``2``: the command cannot run as asked: a usage error, bad input (a missing folder, a
  folder without images, a file that is not an easyssl checkpoint, a bad config value) or a
  missing optional extra. One line on stderr says why (argparse's own usage errors exit
  with 2 too);
* ``1``: an unexpected error (a bug, or something easyssl did not foresee): one line names
  it and says to set ``EASYSSL_DEBUG=1`` to see the traceback (with it, the error is raised);
* ``130``: interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import Callable, Iterator, NamedTuple, Sequence

from easyssl.cli import export, plot, search, selection, train
from easyssl.cli.common import CLIError, plain_warnings, printable_names
from easyssl.cli.suggest import SuggestingParser
from easyssl.runtime.log import console_handler, logger
from easyssl.version import __version__

__all__ = ["COMMANDS", "CLIError", "Command", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EXAMPLES = """examples:
  easyssl run                                   # train + embed the built-in demo set, in a minute
  easyssl run my/images/ --epochs 10 --output embeddings.csv
  easyssl train my/images/ --method byol --max-time 00:00:30:00
  easyssl train my/images/ --epochs 100 --batch-size 256 --set model.backbone=resnet-50
  easyssl train my/images/ --checkpoint-dir runs/a --resume      # continue an interrupted run
  easyssl embed my/images/ --checkpoint runs/a/last.ckpt --output embeddings.csv
  easyssl methods                               # list the SSL methods
"""


class Command(NamedTuple):
    """One sub-command: ``easyssl <name>``."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


#: Every sub-command, in the order ``easyssl --help`` lists them.
COMMANDS: tuple[Command, ...] = (
    Command("train", "train an embedding model on a folder of images; prints the checkpoint path", train.add_train, train.cmd_train),
    Command("embed", "embed a folder of images with a checkpoint and save the embeddings", train.add_embed, train.cmd_embed),
    Command("run", "train on a folder, embed it, save the embeddings (the demo set when no folder is given)", train.add_run, train.cmd_run),
    Command("methods", "list the self-supervised methods", train.add_methods, train.cmd_methods),
    Command("demo", "write the built-in demo image set (shapes in 5 classes) to a folder", train.add_demo, train.cmd_demo),
    Command("similar", "print the images most similar to a query image (and draw them)", search.add_similar, search.cmd_similar),
    Command("duplicates", "find groups of near-duplicate images", search.add_duplicates, search.cmd_duplicates),
    Command("select", "choose a diverse subset of images (a coreset) and write their filenames", selection.add_select, selection.cmd_select),
    Command("label-next", "active learning: choose the next images to label from a classifier's predictions",
            selection.add_label_next, selection.cmd_label_next),
    Command("plot", "draw the embeddings in 2-D (PCA), coloured by label, as a PNG", plot.add_plot, plot.cmd_plot),
    Command("export", "export the pretrained backbone's weights for torchvision", export.add_export, export.cmd_export),
)


def build_parser() -> argparse.ArgumentParser:
    """The ``easyssl`` argument parser with every sub-command of :data:`COMMANDS`."""
    parser = SuggestingParser(
        prog="easyssl",
        description="Self-supervised learning for images: learn embeddings from a folder of unlabeled images.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"easyssl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=SuggestingParser)
    for command in COMMANDS:
        p = parser.add_command_parser(sub, command.name, help=command.help, description=command.help,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(run=command.run)
        command.add_arguments(p)
    return parser


def is_bad_input(error: BaseException) -> bool:
    """True for the errors that mean "the command cannot run as asked" (exit code 2), not a bug (exit code 1).

    CLIError; ValueError (bad values, folders without images, CheckpointError); OSError (missing,
    unreadable or unwritable files); ImportError of an optional extra (PyAV, faiss), but not of
    easyssl's own modules, which would be a bug.
    """
    if isinstance(error, ImportError):
        return not str(getattr(error, "name", None) or "").startswith("easyssl")
    return isinstance(error, (CLIError, ValueError, OSError))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``easyssl`` command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code (see above)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        with _status_lines(), printable_names(), plain_warnings():
            return int(args.run(args) or EXIT_OK)
    except KeyboardInterrupt:
        print("easyssl: interrupted (the last checkpoint, if any, is kept)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if is_bad_input(error):
            print(f"easyssl {args.command}: error: {_one_line(error)}", file=sys.stderr)
            return EXIT_USAGE
        if os.environ.get("EASYSSL_DEBUG"):
            raise
        print(
            f"easyssl {args.command}: error: {type(error).__name__}: {_one_line(error)} "
            "(an unexpected error; set EASYSSL_DEBUG=1 to see the traceback)",
            file=sys.stderr,
        )
        return EXIT_ERROR


@contextlib.contextmanager
def _status_lines() -> Iterator[None]:
    """Show easyssl's informational log lines (epochs, checkpoints...) on stderr while a command runs,
    and leave the logger as it was afterwards (``main`` is also called from Python)."""
    if any(getattr(handler, "easyssl_console", False) for handler in logger.handlers):
        yield
        return
    level = logger.level
    handler = console_handler(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
