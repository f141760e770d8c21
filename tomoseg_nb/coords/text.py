"""Plain-text picks: IMOD point files, CSV and EMAN / RELION 2D ``.box`` files.

Positions only (CSV may add scores): none of these files carries a voxel size, shape or name.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..atomic import write_text_atomic
from ..errors import BadInputError, first_line
from ._shared import _ReadContext
from .picks import Picks


def _write_imod(path: Path, picks: Picks, overwrite: bool, one_based: bool = True) -> None:
    xyz = picks.xyz + (1.0 if one_based else 0.0)
    write_text_atomic(
        path, "".join(f"{x:.3f} {y:.3f} {z:.3f}\n" for x, y, z in xyz), overwrite=overwrite
    )


def _read_imod(path: Path, context: _ReadContext, one_based: bool = True) -> Picks:
    rows = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if any(len(row) != 3 for row in rows):
        raise BadInputError(
            f"{path}: IMOD point files here have three columns x y z; run model2point without "
            "-object / -contour"
        )
    xyz = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return Picks.from_xyz(xyz - (1.0 if one_based else 0.0))


def _write_csv(path: Path, picks: Picks, overwrite: bool) -> None:
    header = list("xyz"[: picks.ndim])
    values = picks.xyz
    if picks.scores is not None:
        header.append("score")
        values = np.column_stack([values, picks.scores])
    buffer = io.StringIO()
    buffer.write(",".join(header) + "\n")
    np.savetxt(buffer, values.reshape(-1, len(header)), fmt="%.6f", delimiter=",")
    write_text_atomic(path, buffer.getvalue(), overwrite=overwrite)


def _read_csv(path: Path, context: _ReadContext) -> Picks:
    import pandas as pd

    try:
        table = pd.read_csv(path, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise BadInputError(f"{path}: not a readable CSV file ({first_line(error)})") from error
    table.columns = [str(c).strip().lower() for c in table.columns]
    axes = [a for a in "xyz" if a in table.columns]
    if axes not in (["x", "y"], ["x", "y", "z"]):
        raise BadInputError(
            f"{path}: CSV picks need a header with x,y[,z][,score]; found {', '.join(table.columns)}"
        )
    scores = table["score"].to_numpy(dtype=np.float64) if "score" in table.columns else None
    return Picks.from_xyz(table[axes].to_numpy(dtype=np.float64), scores=scores)


def _write_box(path: Path, picks: Picks, overwrite: bool, box_size_px: int | None = None) -> None:
    if box_size_px is None or int(box_size_px) < 1:
        raise BadInputError(
            f"{path}: .box files store boxes, not points; pass box_size_px= (the box edge)"
        )
    size = int(box_size_px)
    corners = np.rint(picks.xyz - size / 2.0).astype(np.int64)
    write_text_atomic(
        path, "".join(f"{x}\t{y}\t{size}\t{size}\n" for x, y in corners), overwrite=overwrite
    )


def _read_box(path: Path, context: _ReadContext) -> Picks:
    rows = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if any(len(row) < 4 for row in rows):
        raise BadInputError(f"{path}: .box lines need four columns x y width height")
    boxes = np.array([row[:4] for row in rows], dtype=np.float64).reshape(-1, 4)
    return Picks.from_xyz(boxes[:, :2] + boxes[:, 2:4] / 2.0)
