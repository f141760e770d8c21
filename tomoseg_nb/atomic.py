"""Atomic file output: write to a temporary sibling, then rename, so no half-written file is left.

A crash, a full disk or a cancelled run leaves either the old file or nothing, never a partial one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import BadInputError, OutputExistsError


def check_output_path(path: str | os.PathLike, overwrite: bool) -> Path:
    """Return ``path`` as a Path, refusing an existing one unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"{path}: output exists; pass overwrite=True (--overwrite) to replace it"
        )
    # Refused before any work: a file where the output's folder should be (``--out notes.txt/x``).
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise BadInputError(
            f"{path}: cannot be written, {blocking} is a file, not a folder; "
            "choose another output path"
        )
    return path


def _temporary_sibling(path: Path) -> Path:
    # Same folder, so the final rename never crosses file systems; leading dot hides it from globs.
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is deleted.

    Works for files and for folders (OME-Zarr). The parent folder is created if missing.

    >>> with atomic_output("picks.csv") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("x,y\\n")
    """
    path = check_output_path(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_dir() and path.exists():
            _replace_folder(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _replace_folder(new: Path, path: Path) -> None:
    """Swap a finished folder in; the old one is moved aside first and comes back if that fails.

    A folder cannot be renamed over another, and deleting the old one first would lose both if
    the rename were then refused (a read-only or full disk).
    """
    aside = path.with_name(f".{path.name}.old-{os.getpid()}")
    _remove(aside)
    os.replace(path, aside)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(aside, path)
        raise
    _remove(aside)


def write_text_atomic(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj: Any, *, overwrite: bool = True) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return write_text_atomic(
        path, json.dumps(obj, indent=2, sort_keys=False) + "\n", overwrite=overwrite
    )
