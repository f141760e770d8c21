"""RELION STAR picks: RELION 5 (centred Angstrom), RELION 4 (tomogram voxels) and 2D micrographs.

All three go through ``starfile``; the column names here are also what ``formats`` looks for to tell
them apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_output
from ..errors import BadInputError, first_line
from ._shared import _ReadContext, _require_name, _voxel_size_for_angstrom
from .picks import Picks

_ANGLE_COLUMNS = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
_SCORE_COLUMN = "rlnAutopickFigureOfMerit"
_CENTRED_COLUMNS = tuple(f"rlnCenteredCoordinate{a}Angst" for a in "XYZ")
_PIXEL_COLUMNS = tuple(f"rlnCoordinate{a}" for a in "XYZ")
_NAME_COLUMNS = ("rlnTomoName", "rlnMicrographName")


def _read_star_blocks(path: Path) -> dict:
    import starfile

    try:
        blocks = starfile.read(path, always_dict=True, parse_as_string=list(_NAME_COLUMNS))
    except Exception as error:  # starfile/pandas raise many types for malformed files
        raise BadInputError(f"{path}: not a readable STAR file ({first_line(error)})") from error
    import pandas as pd

    return {name: block for name, block in blocks.items() if isinstance(block, pd.DataFrame)}


def _particle_table(path: Path, needed: Sequence[str], tomogram: str | None):
    """The block with ``needed`` columns, restricted to one tomogram/micrograph name."""
    blocks = _read_star_blocks(path)
    ordered = sorted(blocks.items(), key=lambda item: item[0] != "particles")
    table = next((block for _, block in ordered if set(needed) <= set(block.columns)), None)
    if table is None:
        raise BadInputError(f"{path}: no STAR block with columns {', '.join(needed)}")
    name_column = next((c for c in _NAME_COLUMNS if c in table.columns), None)
    if name_column is None:
        return table, ""
    names = table[name_column].astype(str)
    present = list(dict.fromkeys(names))
    if tomogram is not None:
        if tomogram not in present and len(table):
            raise BadInputError(f"{path}: no picks for '{tomogram}'; it lists {', '.join(present)}")
        return table[names == tomogram], tomogram
    if len(present) > 1:
        raise BadInputError(
            f"{path}: lists picks of {len(present)} tomograms ({', '.join(present[:10])}); "
            "pass tomogram=NAME to read one"
        )
    return table, present[0] if present else ""


def _star_extras(table) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    if _SCORE_COLUMN in table.columns:
        extras["scores"] = table[_SCORE_COLUMN].to_numpy(dtype=np.float64)
    if set(_ANGLE_COLUMNS) <= set(table.columns):
        extras["orientations"] = table[list(_ANGLE_COLUMNS)].to_numpy(dtype=np.float64)
    return extras


def _write_star(
    path: Path, columns: dict[str, Any], picks: Picks, block: str, overwrite: bool
) -> None:
    import pandas as pd
    import starfile

    if picks.orientations is not None:
        columns.update(zip(_ANGLE_COLUMNS, picks.orientations.T, strict=True))
    if picks.scores is not None:
        columns[_SCORE_COLUMN] = picks.scores
    table = pd.DataFrame(columns)
    with atomic_output(path, overwrite=overwrite) as tmp:
        starfile.write({block: table}, tmp, overwrite=True)


def _write_relion5(
    path: Path, picks: Picks, overwrite: bool, voxel_size: float | None = None
) -> None:
    name = _require_name(picks, path, "RELION 5 (rlnTomoName)")
    size = _voxel_size_for_angstrom(picks, voxel_size, path, "RELION 5")
    centred = (picks.xyz - picks._centre_xyz("RELION 5 coordinates")) * size
    columns: dict[str, Any] = {"rlnTomoName": [name] * len(picks)}
    columns.update(zip(_CENTRED_COLUMNS, centred.T, strict=True))
    _write_star(path, columns, picks, "particles", overwrite)


def _read_relion5(path: Path, context: _ReadContext) -> Picks:
    table, name = _particle_table(path, _CENTRED_COLUMNS, context.tomogram)
    centre, size = context.need_frame(path, "RELION 5 coordinates (rlnCenteredCoordinateXAngst)")
    xyz = table[list(_CENTRED_COLUMNS)].to_numpy(dtype=np.float64) / size + centre
    return Picks.from_xyz(
        xyz, voxel_size=size, shape=context.shape, tomogram=name, **_star_extras(table)
    )


def _write_relion4(path: Path, picks: Picks, overwrite: bool) -> None:
    name = _require_name(picks, path, "RELION 4 (rlnTomoName)")
    columns: dict[str, Any] = {"rlnTomoName": [name] * len(picks)}
    columns.update(zip(_PIXEL_COLUMNS, picks.xyz.T, strict=True))
    _write_star(path, columns, picks, "particles", overwrite)


def _read_relion4(path: Path, context: _ReadContext) -> Picks:
    table, name = _particle_table(path, _PIXEL_COLUMNS, context.tomogram)
    xyz = table[list(_PIXEL_COLUMNS)].to_numpy(dtype=np.float64)
    return Picks.from_xyz(xyz, tomogram=name, **_star_extras(table))


def _write_star2d(path: Path, picks: Picks, overwrite: bool) -> None:
    columns: dict[str, Any] = (
        {"rlnMicrographName": [picks.tomogram] * len(picks)} if picks.tomogram else {}
    )
    columns.update(zip(_PIXEL_COLUMNS[:2], picks.xyz.T, strict=True))
    _write_star(path, columns, picks, "", overwrite)


def _read_star2d(path: Path, context: _ReadContext) -> Picks:
    table, name = _particle_table(path, _PIXEL_COLUMNS[:2], context.tomogram)
    xyz = table[list(_PIXEL_COLUMNS[:2])].to_numpy(dtype=np.float64)
    extras = _star_extras(table)
    extras.pop("orientations", None)
    return Picks.from_xyz(xyz, tomogram=name, **extras)
