"""``tomoseg-nb lab``: open JupyterLab on the tutorial notebooks."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import MissingInputError
from ._common import whole_number

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("lab", help="start JupyterLab on the tutorial notebooks")
    parser.add_argument(
        "--folder", default=None, help="notebook folder to open (default: the tutorials)"
    )
    parser.add_argument(
        "--port", type=whole_number(1, 65535), default=None, help="port (default: Jupyter's choice)"
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="do not open a browser (remote machines)"
    )
    parser.add_argument(
        "jupyter_args",
        nargs=argparse.REMAINDER,
        metavar="-- JUPYTER_ARGS",
        help="passed on to jupyter lab after --, e.g. -- --allow-root in a container",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.folder) if args.folder else NOTEBOOKS
    if not folder.is_dir():
        raise MissingInputError(
            f"{folder}: no notebook folder; run from a clone of the repository or pass a folder"
        )
    command = [sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={folder}"]
    if args.port:
        command.append(f"--port={args.port}")
    if args.no_browser:
        command.append("--no-browser")
    command += [a for a in args.jupyter_args if a != "--"]
    os.execv(sys.executable, command)
    return 0
