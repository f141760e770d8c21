"""Files in and out of the boxer: micrographs, reference coordinate files, pick files.

Coordinate files are whatever ``tomoseg_nb.coords`` reads: EMAN / RELION ``.box``, STAR
(``rlnCoordinateX/Y``, optionally ``rlnMicrographName``) and CSV (``x,y``), all in pixels. Give
one file per micrograph, in the same order, or a single STAR file that names the micrographs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import check_output_path
from ..coords import Picks, read_picks, write_picks
from ..errors import BadInputError
from ..volume import IMAGE_SUFFIXES, open_volume

PICK_FORMATS = {"star": ("star2d", ".star"), "box": ("box", ".box"), "csv": ("csv", ".csv")}
"""``--format`` name -> (``coords`` format, file suffix)."""


@dataclass
class Micrograph:
    """A micrograph read into memory, with its name and pixel size (None when the file has none)."""

    image: np.ndarray
    name: str
    path: Path
    pixel_size: float | None


def read_micrograph(path: str | os.PathLike, *, pixel_size: float | None = None) -> Micrograph:
    """Read a micrograph: MRC (a one-frame ``.mrcs`` too), TIFF, or 8/16-bit PNG / JPEG.

    PNG and JPEG carry no pixel size, nor does an MRC header with 1.0 (the "unset" value): their
    ``pixel_size`` is None unless given here.
    """
    path = Path(path)
    with open_volume(path, ndim=2, voxel_size=pixel_size) as volume:
        image = volume.read()
        size: float | None = volume.voxel_size
        name = volume.name
    if pixel_size is None and (path.suffix.lower() in IMAGE_SUFFIXES or size == 1.0):
        size = None
    return Micrograph(image=image, name=name, path=path, pixel_size=size)


def _names(micrograph: Micrograph) -> list[str]:
    return [str(micrograph.path), micrograph.path.name, micrograph.name]


def coordinates_per_micrograph(
    files: Sequence[str | os.PathLike], micrographs: Sequence[Micrograph], kind: str
) -> list[np.ndarray]:
    """``(N, 2)`` y, x coordinates of ``kind`` boxes for each micrograph, from coordinate files.

    Parameters
    ----------
    files : sequence of path
        One file per micrograph in the same order, or one STAR file listing several micrographs
        in ``rlnMicrographName`` (matched by path as given, file name, or name without suffix).
    micrographs : sequence of Micrograph
        The micrographs, in order.
    kind : str
        ``"good"``, ``"background"`` or ``"bad"``, for messages.
    """
    paths = [Path(f) for f in files]
    if len(paths) == len(micrographs):
        return [read_picks(f).coordinates for f in paths]
    if len(paths) == 1 and paths[0].suffix.lower() == ".star":
        coordinates = []
        for micrograph in micrographs:
            for name in _names(micrograph):
                try:
                    coordinates.append(read_picks(paths[0], tomogram=name).coordinates)
                    break
                except BadInputError:
                    continue
            else:
                raise BadInputError(
                    f"{paths[0]}: no {kind} coordinates for micrograph {micrograph.path} (looked for "
                    f"rlnMicrographName {', '.join(repr(n) for n in _names(micrograph))})"
                )
        return coordinates
    raise BadInputError(
        f"{len(paths)} {kind} coordinate file(s) for {len(micrographs)} micrographs: give one file per "
        "micrograph in the same order, or one STAR file with rlnMicrographName"
    )


def pick_path(folder: str | os.PathLike, name: str, format: str) -> Path:
    """Where the picks of micrograph ``name`` go: ``folder/name.star|.box|.csv``."""
    if format not in PICK_FORMATS:
        raise BadInputError(
            f"unknown pick format {format!r}; choose one of {', '.join(PICK_FORMATS)}"
        )
    if not name or name in (".", "..") or Path(name).name != name:  # no '../' out of ``folder``
        raise BadInputError(f"micrograph name {name!r} cannot name a file in {folder}")
    return Path(folder) / f"{name}{PICK_FORMATS[format][1]}"


def write_micrograph_picks(
    picks: Picks,
    folder: str | os.PathLike,
    format: str,
    *,
    box_px: float,
    overwrite: bool = False,
) -> Path:
    """Write one micrograph's picks as ``folder/<micrograph name>.<format suffix>`` (atomically).

    ``box_px`` is the box side in pixels of that micrograph (the ``.box`` format stores boxes).
    """
    path = check_output_path(pick_path(folder, picks.tomogram, format), overwrite)
    name, _ = PICK_FORMATS[format]
    options = {"box_size_px": round(box_px)} if name == "box" else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_picks(path, picks, format=name, overwrite=overwrite, **options)
