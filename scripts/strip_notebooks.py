"""Strip outputs, execution counts and saved widget state from notebooks before committing them.

    python scripts/strip_notebooks.py                  # every notebook in notebooks/, in place
    python scripts/strip_notebooks.py --check          # exit 1 (listing them) if any needs it
    python scripts/strip_notebooks.py path/to/a.ipynb  # just these

Committed tutorials stay small, diff cleanly and never carry a previous run's data or paths. Cell
tags (the ``parameters`` cell) and cell ids are kept; other cell metadata (collapsed, scrolled,
execution timings) and the notebook's saved widget state are removed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KEPT_CELL_METADATA = ("tags",)


def strip(notebook: nbformat.NotebookNode) -> bool:
    """Strip ``notebook`` in place; True if anything was removed."""
    changed = notebook.metadata.pop("widgets", None) is not None
    for cell in notebook.cells:
        kept = {k: v for k, v in cell.metadata.items() if k in KEPT_CELL_METADATA}
        changed |= kept != dict(cell.metadata)
        cell.metadata = kept
        if cell.cell_type == "code":
            changed |= bool(cell.outputs) or cell.execution_count is not None
            cell.outputs, cell.execution_count = [], None
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if any needs it")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOKS.glob("*.ipynb"))
    dirty = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        if strip(notebook):
            dirty.append(path)
            if not args.check:
                nbformat.write(notebook, path)
    for path in dirty:
        print(f"{'needs stripping' if args.check else 'stripped'}: {path}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
