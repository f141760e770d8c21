"""Where picks land: map voxels to the source tomogram's frame, edge limits, filament angles.

A probability map may be made from a binned copy of the tomogram that particles will be
extracted from. Picks are always reported in voxels of that *source* tomogram. Binned and source
grids share their centre (the convention of RELION and Warp, whose binned tomograms are the same
volume sampled coarser), so ``source = (map - map_shape / 2) * binning + source_shape / 2``,
which is ``map * binning`` when the source shape is ``binning`` times the map shape; RELION 5
centred Angstrom coordinates are then identical whichever grid they are computed from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..coords import Picks
from ..errors import BadInputError


@dataclass(frozen=True)
class SourceFrame:
    """The grid of a probability map and of the tomogram its picks refer to.

    Attributes
    ----------
    map_shape : tuple of int
        Shape ``(z, y, x)`` of the probability map.
    voxel_size : float
        Angstrom per voxel of the map.
    binning : float
        Source voxels per map voxel (1: the map is at the tomogram's sampling).
    origin : tuple of float
        MRC origin ``(x, y, z)`` in Angstrom of the source tomogram.
    source_shape : tuple of int or None
        Shape of the source tomogram; ``map_shape * binning`` when None.
    """

    map_shape: tuple[int, ...]
    voxel_size: float = 1.0
    binning: float = 1.0
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    source_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.voxel_size > 0 or not math.isfinite(self.voxel_size):
            raise BadInputError(
                f"voxel size must be a positive number of Angstrom, got {self.voxel_size}"
            )
        if not self.binning > 0 or not math.isfinite(self.binning):
            raise BadInputError(f"binning must be positive (1 = unbinned), got {self.binning}")
        if self.source_shape is not None and len(self.source_shape) != len(self.map_shape):
            raise BadInputError(
                f"source shape {self.source_shape} and map shape {self.map_shape} differ in dimensions"
            )

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the source tomogram."""
        if self.source_shape is not None:
            return tuple(int(n) for n in self.source_shape)
        return tuple(round(n * self.binning) for n in self.map_shape)

    @property
    def source_voxel_size(self) -> float:
        """Angstrom per voxel of the source tomogram."""
        return self.voxel_size / self.binning

    def to_source(self, coordinates: np.ndarray) -> np.ndarray:
        """Map-voxel coordinates ``(N, d)`` to source-voxel coordinates (float)."""
        coordinates = np.asarray(coordinates, dtype=np.float64).reshape(-1, len(self.map_shape))
        map_centre = np.asarray(self.map_shape, dtype=np.float64) / 2
        source_centre = np.asarray(self.shape, dtype=np.float64) / 2
        return (coordinates - map_centre) * self.binning + source_centre

    def picks(
        self,
        coordinates: np.ndarray,
        scores: np.ndarray,
        *,
        orientations: np.ndarray | None = None,
        tomogram: str = "",
        feature: str = "",
    ) -> Picks:
        """Build `Picks` in the source frame from map-voxel coordinates."""
        return Picks(
            coordinates=self.to_source(coordinates),
            scores=np.asarray(scores, dtype=np.float64).reshape(-1),
            voxel_size=self.source_voxel_size,
            shape=self.shape,
            origin=self.origin,  # Picks checks it and makes it floats
            tomogram=tomogram,
            feature=feature,
            orientations=None
            if orientations is None
            else np.asarray(orientations, dtype=np.float64),
        )


def edge_margins(edge_px: float | Sequence[float], ndim: int) -> np.ndarray:
    """Per-axis margins from a scalar (applies to y and x only, as in EMAN2) or one per axis."""
    if np.isscalar(edge_px):
        margins = np.zeros(ndim)
        margins[-2:] = edge_px  # numpy converts (and refuses) as float() would
    else:
        margins = np.asarray(edge_px, dtype=np.float64)
        if margins.shape != (ndim,):
            raise BadInputError(
                f"edge margins {edge_px!r}: give one number, or one per axis ({ndim})"
            )
    if (margins < 0).any() or not np.isfinite(margins).all():
        raise BadInputError(f"edge margins must be >= 0 voxels, got {edge_px!r}")
    return margins


def inside_edges(coordinates: np.ndarray, shape: Sequence[int], margins: np.ndarray) -> np.ndarray:
    """True for coordinates at least ``margins`` voxels from every face of a volume of ``shape``."""
    coordinates = np.asarray(coordinates, dtype=np.float64).reshape(-1, len(shape))
    last = np.asarray(shape, dtype=np.float64) - 1
    return np.all((coordinates >= margins) & (last - coordinates >= margins), axis=1)


def euler_from_direction(direction_xyz: np.ndarray) -> np.ndarray:
    """RELION ZYZ Euler angles (rot, tilt, psi; degrees) that put a reference's Z axis along a direction.

    RELION maps reference coordinates to the particle by the matrix of (rot, tilt, psi), whose third
    column is ``(-cos(psi) sin(tilt), sin(psi) sin(tilt), cos(tilt))``: that is where the reference
    Z axis (a filament's axis, by helical convention) points. Rot, the spin about the axis, is
    undetermined by a direction and set to 0.

    Parameters
    ----------
    direction_xyz : ndarray
        ``(N, 3)`` directions as x, y, z (need not be unit length).

    Examples
    --------
    >>> euler_from_direction(np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])).round(6) + 0.0
    array([[ 0.,  0.,  0.],
           [ 0., 90., 90.]])
    """
    d = np.asarray(direction_xyz, dtype=np.float64).reshape(-1, 3)
    norm = np.linalg.norm(d, axis=1, keepdims=True)
    if (norm == 0).any():
        raise BadInputError("a filament direction of zero length has no orientation")
    d = d / norm
    tilt = np.degrees(np.arccos(np.clip(d[:, 2], -1.0, 1.0)))
    psi = np.degrees(np.arctan2(d[:, 1], -d[:, 0]))
    # Along +-z psi is arbitrary; report 0 rather than whatever atan2 of rounding noise gives.
    psi = np.where(np.hypot(d[:, 0], d[:, 1]) < 1e-9, 0.0, psi)
    return np.column_stack([np.zeros(len(d)), tilt, psi])


def direction_from_euler(angles: np.ndarray) -> np.ndarray:
    """Unit x, y, z direction of a reference's Z axis for RELION Euler angles ``(N, 3)`` in degrees."""
    angles = np.radians(np.asarray(angles, dtype=np.float64).reshape(-1, 3))
    tilt, psi = angles[:, 1], angles[:, 2]
    return np.column_stack([-np.cos(psi) * np.sin(tilt), np.sin(psi) * np.sin(tilt), np.cos(tilt)])
