"""The ``tomoseg-nb`` command line: one module per sub-command, discovered in this package.

Each module defines ``register(subparsers)`` that adds its parser and sets ``func``. User mistakes
(``TomosegError``) print one line and exit with status 2; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from collections.abc import Sequence

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
    return parser


def _one_line_warning(command: str):
    """A ``warnings.showwarning`` telling the user one line (e.g. "nothing above threshold")."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"tomoseg-nb {command}: warning: {message}", file=sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tomoseg-nb`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(args.command)
            return int(args.func(args) or 0)
    except TomosegError as error:
        print(f"tomoseg-nb {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"tomoseg-nb {args.command}: interrupted; no partial output was kept", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
