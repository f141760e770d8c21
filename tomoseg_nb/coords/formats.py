"""``write_picks`` / ``read_picks``: which format a file is, and the dispatch to its reader/writer.

The one place that knows every format (``FORMATS``); the readers and writers live in ``star``,
``json_formats`` and ``text``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInputError, MissingInputError, first_line
from ._shared import _ReadContext
from .json_formats import (
    _read_copick,
    _read_eman2,
    _read_json,
    _read_ndjson,
    _write_copick,
    _write_eman2,
    _write_ndjson,
)
from .picks import Picks
from .star import (
    _CENTRED_COLUMNS,
    _PIXEL_COLUMNS,
    _read_relion4,
    _read_relion5,
    _read_star2d,
    _read_star_blocks,
    _write_relion4,
    _write_relion5,
    _write_star2d,
)
from .text import _read_box, _read_csv, _read_imod, _write_box, _write_csv, _write_imod

FORMATS = (
    "relion5",
    "relion4",
    "copick",
    "eman2",
    "imod",
    "csv",
    "cryoet-ndjson",
    "box",
    "star2d",
)
"""Names accepted by ``write_picks`` / ``read_picks`` ``format=``."""

_SUFFIX_FORMATS = {".csv": "csv", ".txt": "imod", ".box": "box", ".ndjson": "cryoet-ndjson"}


def write_picks(
    path: str | os.PathLike,
    picks: Picks,
    format: str | None = None,
    *,
    overwrite: bool = False,
    **options: Any,
) -> Path:
    """Write ``picks`` atomically in the format the next tool reads.

    Parameters
    ----------
    path : path-like
        Output file. ``format`` is taken from the suffix when that is unambiguous: ``.csv``,
        ``.txt`` (IMOD), ``.box``, ``.ndjson``, ``*_info.json`` (EMAN2), and ``.star`` for 2D picks.
        A 3D ``.star`` (RELION 5 or 4) and other ``.json`` (copick or EMAN2) need ``format``.
    picks : Picks
        What to write. Empty picks write a valid empty file.
    format : str, optional
        One of ``FORMATS``; see the ``tomoseg_nb.coords`` docstring for each format's frame.
    overwrite : bool
        Replace an existing file. For ``eman2`` the info file is updated in place, keeping its
        other keys and other classes; ``overwrite`` is needed only to replace boxes of the same
        class (``picks.feature``).
    **options
        ``voxel_size`` (relion5, copick, eman2): Angstrom per voxel, overriding ``picks.voxel_size``
        (needed when that is 1.0, the value that means "unknown").
        ``user_id``, ``session_id`` (copick; default ``"tomoseg_nb"``, ``"0"`` = made by a tool).
        ``box_size_px`` (box: required; eman2: the class box size, default 32).
        ``class_id`` (eman2). ``one_based`` (imod, default True).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    BadInputError
        Unknown or ambiguous format, 2D picks for a 3D format (or the reverse), missing metadata
        the format needs (shape, voxel size, tomogram name, box size), unknown options.
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if not isinstance(picks, Picks):
        raise BadInputError(f"{path}: expected a Picks table, got {type(picks).__name__}")
    name = picks_format(path, ndim=picks.ndim, format=format)
    spec = _SPECS[name]
    if spec.ndim is not None and spec.ndim != picks.ndim:
        fitting = ", ".join(n for n, s in _SPECS.items() if s.ndim in (None, picks.ndim))
        raise BadInputError(
            f"{path}: format '{name}' holds {spec.ndim}D picks but these are {picks.ndim}D; "
            f"use one of: {fitting}"
        )
    _check_options(path, name, spec.writer, options, skip=3)
    spec.writer(path, picks, overwrite, **options)
    return path


def read_picks(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    voxel_size: float | None = None,
    shape: tuple[int, ...] | None = None,
    origin: tuple[float, float, float] | None = None,
    tomogram: str | None = None,
    feature: str | None = None,
    **options: Any,
) -> Picks:
    """Read picks written by ``write_picks`` or by the tools that use these formats.

    Parameters
    ----------
    path : path-like
        Input file; the format is inferred from the suffix, and for ``.star`` / ``.json`` from the
        columns / keys inside.
    format : str, optional
        One of ``FORMATS``.
    voxel_size, shape, origin : optional
        The source volume's frame (e.g. ``volume.voxel_size, volume.shape, volume.origin``).
        Formats in Angstrom (relion5, copick, and eman2 with ``apix_unbin``) are converted to
        voxels of this voxel size, so it may differ from the picking one; relion5 and centred
        eman2 also need ``shape``. For the other formats these label the picks.
    tomogram : str, optional
        Which tomogram's picks to take from a STAR file listing several (``rlnTomoName``);
        otherwise the name given to the picks.
    feature : str, optional
        Which class to take from an EMAN2 info file (by name); otherwise the name given.
    **options
        ``class_id`` (eman2), ``one_based`` (imod, default True).

    Raises
    ------
    MissingInputError
        ``path`` does not exist.
    BadInputError
        Unknown format, a malformed file, or metadata needed for the conversion missing.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: no such picks file")
    context = _ReadContext(voxel_size, shape, origin, tomogram, feature)
    name = format if format is not None else _format_for_reading(path)
    if name not in _SPECS:
        raise _unknown_format(path, name)
    spec = _SPECS[name]
    _check_options(path, name, spec.reader, options, skip=2)
    try:
        picks = spec.reader(path, context, **options)
    except (BadInputError, MissingInputError):
        raise
    except (
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
        UnicodeDecodeError,
    ) as error:
        raise BadInputError(
            f"{path}: not a readable {name} picks file ({first_line(error)})"
        ) from error
    return context.apply(picks)


# ---------------------------------------------------------------------------------------------
# format choice and option checking


@dataclass(frozen=True)
class _Spec:
    ndim: int | None  # None: both
    reader: Callable[..., Picks]
    writer: Callable[..., None]


def _unknown_format(path: Path, name: str) -> BadInputError:
    return BadInputError(
        f"{path}: unknown picks format '{name}'; choose one of: {', '.join(FORMATS)}"
    )


def picks_format(path: str | os.PathLike, *, ndim: int, format: str | None = None) -> str:
    """The format ``write_picks`` will use for ``ndim``-D picks at ``path``; raises if it cannot tell.

    Call it before the work that makes the picks, so a bad name fails at once. A 3D ``.star`` is
    RELION 5 (pass ``format="relion4"`` for tomogram voxels).
    """
    path = Path(path)
    if format is not None:
        if format not in _SPECS:
            raise _unknown_format(path, format)
        return format
    suffix = path.suffix.lower()
    if suffix in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffix]
    if path.name.lower().endswith("_info.json"):
        return "eman2"
    if suffix == ".star":
        return "star2d" if ndim == 2 else "relion5"
    if suffix == ".json":
        raise BadInputError(
            f"{path}: '.json' can be copick or eman2; name the format (--format, or format= "
            "in Python), or end an EMAN2 file in _info.json"
        )
    raise BadInputError(
        f"{path}: cannot tell the picks format from '{suffix or path.name}'; name it (--format, "
        f"or format= in Python: one of {', '.join(FORMATS)}) or use .star, .json, .csv, .txt, "
        ".box or .ndjson"
    )


def _format_for_reading(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffix]
    if suffix == ".star":
        columns = {c for block in _read_star_blocks(path).values() for c in block.columns}
        if set(_CENTRED_COLUMNS) <= columns:
            return "relion5"
        if set(_PIXEL_COLUMNS) <= columns:
            return "relion4"
        if set(_PIXEL_COLUMNS[:2]) <= columns:
            return "star2d"
        raise BadInputError(
            f"{path}: STAR file without particle coordinates (rlnCenteredCoordinateXAngst or "
            "rlnCoordinateX/Y columns)"
        )
    if suffix == ".json":
        document = _read_json(path)
        if isinstance(document, dict) and "points" in document:
            return "copick"
        if isinstance(document, dict) and (
            "boxes_3d" in document or path.name.endswith("_info.json")
        ):
            return "eman2"
        raise BadInputError(
            f"{path}: JSON without copick 'points' or EMAN2 'boxes_3d'; pass format="
        )
    raise BadInputError(
        f"{path}: cannot tell the picks format from '{suffix or path.name}'; pass format= "
        f"(one of: {', '.join(FORMATS)})"
    )


def _check_options(path: Path, name: str, function: Callable, options: dict, *, skip: int) -> None:
    allowed = list(inspect.signature(function).parameters)[skip:]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        known = ", ".join(allowed) if allowed else "none"
        raise BadInputError(
            f"{path}: format '{name}' does not take {', '.join(unknown)} (options: {known})"
        )


_SPECS: dict[str, _Spec] = {
    "relion5": _Spec(3, _read_relion5, _write_relion5),
    "relion4": _Spec(3, _read_relion4, _write_relion4),
    "copick": _Spec(3, _read_copick, _write_copick),
    "eman2": _Spec(3, _read_eman2, _write_eman2),
    "imod": _Spec(3, _read_imod, _write_imod),
    "csv": _Spec(None, _read_csv, _write_csv),
    "cryoet-ndjson": _Spec(3, _read_ndjson, _write_ndjson),
    "box": _Spec(2, _read_box, _write_box),
    "star2d": _Spec(2, _read_star2d, _write_star2d),
}
