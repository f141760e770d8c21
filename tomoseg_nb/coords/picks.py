"""The picks table (``Picks``) and the rotation conventions its orientations follow.

Independent of any file format: the format modules build and read ``Picks``, never the reverse.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import BadInputError, first_line


@dataclass(eq=False)
class Picks:
    """Particle positions in one tomogram (3D) or micrograph (2D).

    Arrays are validated and converted to float64 on construction, so a malformed table fails
    here, with a message, rather than in a file writer.

    Attributes
    ----------
    coordinates : ndarray
        ``(N, 3)`` z, y, x or ``(N, 2)`` y, x in voxels of the source tomogram/micrograph.
    scores : ndarray or None
        ``(N,)`` confidence, higher is better; ones when None.
    voxel_size : float
        Angstrom per voxel of the source.
    shape : tuple of int or None
        Shape of the source, needed for centred (RELION 5, EMAN2) coordinates.
    origin : tuple of float
        MRC header origin ``(x, y, z)`` of the source, Angstrom.
    tomogram : str
        Tomogram or micrograph name.
    feature : str
        What was picked, e.g. ``"ribosome"``.
    orientations : ndarray or None
        ``(N, 3)`` RELION ZYZ Euler angles (rot, tilt, psi) in degrees.

    Examples
    --------
    >>> picks = Picks(np.array([[10.0, 20.0, 30.0]]), voxel_size=10.0, shape=(64, 128, 128))
    >>> picks.xyz
    array([[30., 20., 10.]])
    >>> picks.rescaled(2).coordinates  # picked at bin 2 -> unbinned voxels
    array([[20., 40., 60.]])
    """

    coordinates: np.ndarray
    scores: np.ndarray | None = None
    voxel_size: float = 1.0
    shape: tuple[int, ...] | None = None
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tomogram: str = ""
    feature: str = ""
    orientations: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        try:
            coordinates = np.asarray(self.coordinates, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise BadInputError(
                f"picks coordinates must be numbers ({first_line(error)})"
            ) from error
        if coordinates.ndim != 2 or coordinates.shape[1] not in (2, 3):
            raise BadInputError(
                f"picks coordinates must be an (N, 3) z, y, x or (N, 2) y, x array, got shape "
                f"{coordinates.shape}; use np.empty((0, 3)) for no picks"
            )
        _require_finite(coordinates, "coordinates")
        self.coordinates = coordinates
        n, ndim = coordinates.shape
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.float64)
            if self.scores.shape != (n,):
                raise BadInputError(f"picks scores must have shape ({n},), got {self.scores.shape}")
            _require_finite(self.scores, "scores")
        if self.orientations is not None:
            self.orientations = np.asarray(self.orientations, dtype=np.float64)
            if ndim != 3 or self.orientations.shape != (n, 3):
                raise BadInputError(
                    f"picks orientations must be (N, 3) rot, tilt, psi for 3D picks; got shape "
                    f"{self.orientations.shape} for {ndim}D picks"
                )
            _require_finite(self.orientations, "orientations")
        if not (math.isfinite(self.voxel_size) and self.voxel_size > 0):
            raise BadInputError(
                f"picks voxel size must be a positive number of Angstrom, got {self.voxel_size}"
            )
        self.voxel_size = float(self.voxel_size)
        if self.shape is not None:
            shape = tuple(int(s) for s in self.shape)
            if len(shape) != ndim or min(shape) < 1:
                raise BadInputError(
                    f"picks shape must be {ndim} positive sizes (the source's), got {self.shape}"
                )
            self.shape = shape
        origin = tuple(float(v) for v in self.origin)
        if len(origin) != 3 or not all(math.isfinite(v) for v in origin):
            raise BadInputError(
                f"picks origin must be three finite numbers (x, y, z) in Angstrom, got {self.origin}"
            )
        self.origin = origin
        self.tomogram, self.feature = str(self.tomogram), str(self.feature)

    def __len__(self) -> int:
        return int(self.coordinates.shape[0])

    @property
    def ndim(self) -> int:
        """3 for tomogram picks, 2 for micrograph picks."""
        return int(self.coordinates.shape[1])

    @property
    def xyz(self) -> np.ndarray:
        """Coordinates in x, y(, z) order, as most file formats list them (a copy)."""
        return self.coordinates[:, ::-1].copy()

    @property
    def score_values(self) -> np.ndarray:
        """``scores``, or ones when the picks have none."""
        return np.ones(len(self)) if self.scores is None else self.scores

    @classmethod
    def from_xyz(cls, xyz: np.ndarray, **fields: Any) -> Picks:
        """Picks from an ``(N, 3)`` x, y, z (or ``(N, 2)`` x, y) array, as files list them."""
        xyz = np.asarray(xyz, dtype=np.float64)
        if xyz.ndim != 2:
            raise BadInputError(
                f"coordinates must be an (N, 3) or (N, 2) array, got shape {xyz.shape}"
            )
        return cls(coordinates=xyz[:, ::-1], **fields)

    def subset(self, selection: np.ndarray | Sequence[int] | slice) -> Picks:
        """The picks at ``selection`` (boolean mask, indices or slice), keeping the metadata."""
        if not isinstance(selection, slice):
            selection = np.asarray(selection)
            if selection.dtype == bool and selection.shape != (len(self),):
                raise BadInputError(
                    f"boolean selection must have shape ({len(self)},), got {selection.shape}"
                )

        def take(array: np.ndarray | None) -> np.ndarray | None:
            return None if array is None else array[selection]

        return dataclasses.replace(
            self,
            coordinates=self.coordinates[selection],
            scores=take(self.scores),
            orientations=take(self.orientations),
        )

    def rescaled(self, factor: float, *, shape: tuple[int, ...] | None = None) -> Picks:
        """Picks made on a tomogram binned by ``factor``, in voxels of the unbinned one.

        Centres are aligned, as RELION 5, Warp and IMOD reconstruct binned tomograms: binned voxel
        ``i`` of an ``n`` voxel axis is unbinned ``(i - n/2) * factor + N/2`` of an ``N`` voxel axis,
        so RELION 5 centred coordinates do not depend on the binning (``i * factor`` when
        ``N = n * factor``). ``factor < 1`` goes the other way. The voxel size is divided by
        ``factor``; the shape becomes ``shape`` if given, else the old one times ``factor``, rounded.
        """
        if not (math.isfinite(factor) and factor > 0):
            raise BadInputError(f"binning factor must be positive, got {factor}")
        if shape is None and self.shape is not None:
            shape = tuple(max(1, round(s * factor)) for s in self.shape)
        coordinates = self.coordinates * factor
        if shape is not None and self.shape is not None:
            old_centre = np.asarray(self.shape, dtype=np.float64) / 2
            coordinates = (self.coordinates - old_centre) * factor + np.asarray(shape) / 2
        return dataclasses.replace(
            self, coordinates=coordinates, voxel_size=self.voxel_size / factor, shape=shape
        )

    def angstrom_xyz(self, *, include_origin: bool = False) -> np.ndarray:
        """Positions in Angstrom, x, y(, z) order: ``index * voxel_size`` (+ the MRC origin).

        Without the origin this is copick's frame; with it, the frame ChimeraX and other viewers
        use for a map whose header has that origin.
        """
        xyz = self.xyz * self.voxel_size
        if include_origin:
            xyz += np.asarray(self.origin[: self.ndim])
        return xyz

    def centred_angstrom_xyz(self) -> np.ndarray:
        """Positions in Angstrom from the centre of the source, RELION 5's frame (x, y(, z) order).

        RELION 5 places the centre at ``size / 2`` voxels (not ``(size - 1) / 2``).
        """
        return (self.xyz - self._centre_xyz("centred coordinates")) * self.voxel_size

    def _centre_xyz(self, purpose: str) -> np.ndarray:
        if self.shape is None:
            axes = "(z, y, x)" if self.ndim == 3 else "(y, x)"
            raise BadInputError(
                f"{purpose} are measured from the centre of the tomogram, so the picks need its "
                f"shape: set picks.shape to the {axes} shape of the volume they were picked on "
                "(e.g. open_volume(path).shape)"
            )
        return np.asarray(self.shape[::-1], dtype=np.float64) / 2.0


def _require_finite(array: np.ndarray, what: str) -> None:
    if not np.isfinite(array).all():
        raise BadInputError(f"picks {what} contain NaN or Inf; remove those picks first")


def rotation_matrices(orientations: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` rotation matrices of RELION ZYZ Euler angles (rot, tilt, psi) in degrees.

    The matrices are RELION's ``Euler_angles2matrix``, which copick and the Data Portal store.
    """
    from scipy.spatial.transform import Rotation

    orientations = np.asarray(orientations, dtype=np.float64).reshape(-1, 3)
    if len(orientations) == 0:
        return np.empty((0, 3, 3))
    return (
        Rotation.from_euler("ZYZ", orientations, degrees=True).inv().as_matrix().reshape(-1, 3, 3)
    )


def euler_angles(matrices: np.ndarray) -> np.ndarray:
    """RELION ZYZ Euler angles (rot, tilt, psi) in degrees of ``(N, 3, 3)`` rotation matrices."""
    import warnings

    from scipy.spatial.transform import Rotation

    matrices = np.asarray(matrices, dtype=np.float64).reshape(-1, 3, 3)
    if len(matrices) == 0:
        return np.empty((0, 3))
    with warnings.catch_warnings():  # gimbal lock (tilt 0 or 180) is exact enough for RELION
        warnings.simplefilter("ignore", UserWarning)
        return Rotation.from_matrix(matrices).inv().as_euler("ZYZ", degrees=True)
