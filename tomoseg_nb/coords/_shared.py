"""Helpers every format module shares: the caller's frame when reading, and the checks writers make.

Kept apart from ``formats`` (which imports the format modules) so that the format modules can use
them without an import cycle.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInputError
from .picks import Picks


@dataclass
class _ReadContext:
    """What the caller knows about the source volume; overrides what the file says."""

    voxel_size: float | None
    shape: tuple[int, ...] | None
    origin: tuple[float, float, float] | None
    tomogram: str | None
    feature: str | None

    def apply(self, picks: Picks) -> Picks:
        return dataclasses.replace(
            picks,
            voxel_size=picks.voxel_size if self.voxel_size is None else self.voxel_size,
            shape=picks.shape if self.shape is None else self.shape,
            origin=picks.origin if self.origin is None else self.origin,
            tomogram=picks.tomogram if self.tomogram is None else self.tomogram,
            feature=picks.feature if self.feature is None else self.feature,
        )

    def need_frame(self, path: Path, what: str) -> tuple[np.ndarray, float]:
        """(centre x, y, z in voxels, voxel size) for centred formats; clear error if unknown."""
        if self.shape is None or self.voxel_size is None:
            raise BadInputError(
                f"{path}: {what} are Angstrom from the tomogram centre; pass the tomogram's "
                "shape=(z, y, x) and voxel_size= to read them, e.g. "
                "read_picks(path, shape=volume.shape, voxel_size=volume.voxel_size)"
            )
        return np.asarray(self.shape[::-1], dtype=np.float64) / 2.0, float(self.voxel_size)


def _voxel_size_for_angstrom(
    picks: Picks, voxel_size: float | None, path: Path, name: str
) -> float:
    """The voxel size to convert to Angstrom; refuses the 1.0 default that means 'unknown'."""
    if voxel_size is not None:
        if not (math.isfinite(voxel_size) and voxel_size > 0):
            raise BadInputError(f"{path}: voxel_size must be positive, got {voxel_size}")
        return float(voxel_size)
    if picks.voxel_size == 1.0:
        raise BadInputError(
            f"{path}: {name} coordinates are in Angstrom but the picks' voxel size is 1.0, the value "
            "that means unknown; set picks.voxel_size (e.g. open_volume(tomogram).voxel_size), or "
            "pass voxel_size=1.0 if that really is it"
        )
    return picks.voxel_size


def _require_name(picks: Picks, path: Path, what: str) -> str:
    if not picks.tomogram:
        raise BadInputError(
            f"{path}: {what} needs the tomogram name the picks belong to; set picks.tomogram "
            "(e.g. to open_volume(path).name)"
        )
    return picks.tomogram
