"""The ``tomoseg-nb`` command line: one module per sub-command, discovered in this package.

Each module defines ``register(subparsers)`` that adds its parser and sets ``func``. User mistakes
(``TomosegError``), and what the system refuses (a full disk, a read-only folder, too little memory),
print one line and exit with status 2; no traceback reaches the user. TensorFlow's own log lines
stay hidden (``tomoseg_nb._quiet``) unless ``--verbose`` is given, before or after the sub-command.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import pkgutil
import sys
import warnings
from collections.abc import Sequence

from .. import _quiet
from ..errors import TomosegError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tomoseg-nb",
        description="Segment cryo-electron tomograms with small per-feature networks; pick particles.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}").register(subparsers)
    _add_verbose(parser)
    return parser


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    """``--verbose`` on ``parser`` and every sub-command below it, where users type it."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,  # a sub-command's default must not undo the top-level flag
        help="show TensorFlow's log lines (hidden by default)",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _add_verbose(subparser)


def _one_line_warning(command: str):
    """A ``warnings.showwarning`` telling the user one line (e.g. "nothing above threshold")."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"tomoseg-nb {command}: warning: {message}", file=sys.stderr)

    return show


def _describe_os_error(error: OSError) -> str:
    """One line for an operating-system error: the file, what went wrong, what to do."""
    where = f"{error.filename}: " if error.filename else ""
    what = error.strerror or str(error) or type(error).__name__
    advice = {
        errno.ENOSPC: "free some space or write to another disk",
        errno.EDQUOT: "free some space or write to another disk",
        errno.EFBIG: "free some space or write to another disk",
        errno.EACCES: "choose a folder you can write to, or fix its permissions",
        errno.EPERM: "choose a folder you can write to, or fix its permissions",
        errno.EROFS: "choose a folder on a writable disk",
    }.get(error.errno or 0, "check the path and try again")
    return f"{where}{what}; {advice}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tomoseg-nb`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "verbose", False):
        _quiet.verbose()
    # "boxer train", as argparse names it in its own errors
    command = " ".join(filter(None, (args.command, getattr(args, "action", None))))
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(command)
            return int(args.func(args) or 0)
    except TomosegError as error:
        print(f"tomoseg-nb {command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, a read-only folder: the user's to fix, no traceback
        print(f"tomoseg-nb {command}: error: {_describe_os_error(error)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(
            f"tomoseg-nb {command}: error: not enough memory; use smaller sizes "
            "(--shape, --slab, fewer or smaller inputs) or a machine with more memory",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"tomoseg-nb {command}: interrupted; no partial output was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
