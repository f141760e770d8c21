"""Particle coordinates: one picks table type, read and written in the formats users' next tools read.

Frames
------
``Picks.coordinates`` are voxel indices of the source tomogram (``(z, y, x)``) or micrograph
(``(y, x)``): the centre of voxel ``i`` is at ``i``, the first voxel is 0. Each format stores them
in its own frame, converted exactly on writing and back on reading:

========================  =========================================================================
format                    what the file holds
========================  =========================================================================
``relion5`` (.star)       ``rlnCenteredCoordinateX/Y/ZAngst``: Angstrom from the tomogram centre.
                          RELION 5 puts the centre at ``size / 2`` voxels (``Tomogram::centre =
                          (w0/2, h0/2, d0/2)``, a float division; ``ParticleSet`` converts with
                          ``pixel = angst / pixel_size + centre``), so
                          ``angst = (index - size / 2) * voxel_size``. This is the same physical
                          point whatever the binning of the tomogram, provided the binned size is
                          the unbinned size divided by the binning. Needs ``shape`` and
                          ``voxel_size``.
``relion4`` (.star)       ``rlnCoordinateX/Y/Z``: voxels of the tomogram, 0-based (RELION 4.1).
                          RELION 4 expects unbinned tilt-series pixels: use
                          ``picks.rescaled(binning)`` first for picks made on a binned tomogram.
``copick`` (.json)        ``points[].location``: Angstrom from the first voxel centre
                          (``index * voxel_spacing``), plus ``transformation_`` (4 x 4).
``eman2`` (*_info.json)   ``boxes_3d: [[x, y, z, "tomoseg", score, class_id], ...]``: voxels; when
                          the info file has ``apix_unbin`` (EMAN2's tomogram pipeline), unbinned
                          pixels from the tomogram centre,
                          ``(index - size / 2) * voxel_size / apix_unbin``, as
                          ``e2spt_extractfromseg`` writes them.
``imod`` (.txt)           ``x y z`` per line, numbered from 1 like 3dmod shows them (turn into a
                          model with ``point2model``; with ``one_based=False``, ``point2model
                          -zero``).
``csv`` (.csv)            header ``x,y,z[,score]`` or ``x,y[,score]``, 0-based voxels.
``cryoet-ndjson``         CryoET Data Portal point annotations, one JSON object per line:
(.ndjson)                 ``{"type": "point", "location": {"x", "y", "z"}}`` in 0-based voxels;
                          ``"orientedPoint"`` with ``xyz_rotation_matrix`` when oriented.
``box`` (.box)            EMAN / RELION 2D boxes ``x y w h``: the lower corner, whole pixels.
``star2d`` (.star)        RELION micrograph coordinates ``rlnCoordinateX/Y`` in pixels, 0-based.
========================  =========================================================================

The MRC origin (``Picks.origin``, the header origin of the source) never enters these files: voxel
indices are in the file's own frame, RELION 5 and EMAN2 are relative to the tomogram centre, and
copick and the Data Portal are in the volume's own frame (first voxel at 0) - which is what each
tool expects. ``Picks.angstrom_xyz(include_origin=True)`` gives the header frame ChimeraX uses
when it displays the map with its origin.

Orientations are RELION ZYZ Euler angles (rot, tilt, psi) in degrees. copick and the Data Portal
store a rotation matrix; it is RELION's Euler matrix, the same convention copick uses when it
converts RELION particles (``Rotation.from_euler("ZYZ", angles, degrees=True).inv()``).
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_output, write_json_atomic, write_text_atomic
from .errors import BadInputError, MissingInputError, OutputExistsError

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
_ANGLE_COLUMNS = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
_SCORE_COLUMN = "rlnAutopickFigureOfMerit"
_CENTRED_COLUMNS = tuple(f"rlnCenteredCoordinate{a}Angst" for a in "XYZ")
_PIXEL_COLUMNS = tuple(f"rlnCoordinate{a}" for a in "XYZ")
_NAME_COLUMNS = ("rlnTomoName", "rlnMicrographName")


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
                f"picks coordinates must be numbers ({_first_line(error)})"
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
        self.origin = origin  # type: ignore[assignment]
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


# ---------------------------------------------------------------------------------------------
# public entry points


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
        One of ``FORMATS``; see the module docstring for each format's frame.
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
    name = _format_for_writing(path, picks, format)
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
            f"{path}: not a readable {name} picks file ({_first_line(error)})"
        ) from error
    return context.apply(picks)


# ---------------------------------------------------------------------------------------------
# format choice and option checking


@dataclass(frozen=True)
class _Spec:
    ndim: int | None  # None: both
    reader: Callable[..., Picks]
    writer: Callable[..., None]


@dataclass
class _ReadContext:
    """What the caller knows about the source volume; overrides what the file says."""

    voxel_size: float | None
    shape: tuple[int, ...] | None
    origin: tuple[float, float, float] | None
    tomogram: str | None
    feature: str | None

    def apply(self, picks: Picks) -> Picks:
        given = {
            "voxel_size": self.voxel_size,
            "shape": self.shape,
            "origin": self.origin,
            "tomogram": self.tomogram,
            "feature": self.feature,
        }
        return dataclasses.replace(picks, **{k: v for k, v in given.items() if v is not None})

    def need_frame(self, path: Path, what: str) -> tuple[np.ndarray, float]:
        """(centre x, y, z in voxels, voxel size) for centred formats; clear error if unknown."""
        if self.shape is None or self.voxel_size is None:
            raise BadInputError(
                f"{path}: {what} are Angstrom from the tomogram centre; pass the tomogram's "
                "shape=(z, y, x) and voxel_size= to read them, e.g. "
                "read_picks(path, shape=volume.shape, voxel_size=volume.voxel_size)"
            )
        return np.asarray(self.shape[::-1], dtype=np.float64) / 2.0, float(self.voxel_size)


def _unknown_format(path: Path, name: str) -> BadInputError:
    return BadInputError(
        f"{path}: unknown picks format '{name}'; choose one of: {', '.join(FORMATS)}"
    )


def _format_for_writing(path: Path, picks: Picks, format: str | None) -> str:
    if format is not None:
        if format not in _SPECS:
            raise _unknown_format(path, format)
        return format
    suffix = path.suffix.lower()
    if suffix in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffix]
    if path.name.lower().endswith("_info.json"):
        return "eman2"
    if suffix == ".star" and picks.ndim == 2:
        return "star2d"
    choices = {".star": "relion5 or relion4", ".json": "copick or eman2"}.get(suffix)
    if choices:
        raise BadInputError(f"{path}: '{suffix}' can be {choices}; pass format= to say which")
    raise BadInputError(
        f"{path}: cannot tell the picks format from '{suffix or path.name}'; pass format= "
        f"(one of: {', '.join(FORMATS)}) or use .star, .json, .csv, .txt, .box or .ndjson"
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


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


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


# ---------------------------------------------------------------------------------------------
# STAR: RELION 5, RELION 4, 2D


def _read_star_blocks(path: Path) -> dict:
    import starfile

    try:
        blocks = starfile.read(path, always_dict=True, parse_as_string=list(_NAME_COLUMNS))
    except Exception as error:  # starfile/pandas raise many types for malformed files
        raise BadInputError(f"{path}: not a readable STAR file ({_first_line(error)})") from error
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


# ---------------------------------------------------------------------------------------------
# JSON: copick, EMAN2 info, CryoET Data Portal ndjson


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    # RecursionError: JSON nested thousands deep, which the decoder cannot follow
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise BadInputError(f"{path}: not valid JSON ({_first_line(error)})") from error


def _write_copick(
    path: Path,
    picks: Picks,
    overwrite: bool,
    voxel_size: float | None = None,
    user_id: str = "tomoseg_nb",
    session_id: str = "0",
) -> None:
    if not picks.feature:
        raise BadInputError(
            f"{path}: copick needs the picked object's name; set picks.feature (e.g. 'ribosome')"
        )
    size = _voxel_size_for_angstrom(picks, voxel_size, path, "copick")
    transforms = np.tile(np.eye(4), (len(picks), 1, 1))
    if picks.orientations is not None:
        transforms[:, :3, :3] = rotation_matrices(picks.orientations)
    points = [
        {
            "location": dict(zip("xyz", map(float, location), strict=True)),
            "transformation_": transform.tolist(),
            "instance_id": 0,
            "score": float(score),
        }
        for location, transform, score in zip(
            picks.xyz * size, transforms, picks.score_values, strict=True
        )
    ]
    document = {
        "pickable_object_name": picks.feature,
        "user_id": user_id,
        "session_id": session_id,
        "run_name": picks.tomogram or None,
        "voxel_spacing": size,
        "unit": "angstrom",
        "points": points,
        "trust_orientation": picks.orientations is not None,
    }
    write_json_atomic(path, document, overwrite=overwrite)


def _read_copick(path: Path, context: _ReadContext) -> Picks:
    document = _read_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("points", []), list):
        raise BadInputError(f"{path}: not a copick picks file (no 'points' list)")
    unit = document.get("unit", "angstrom")
    if unit != "angstrom":
        raise BadInputError(
            f"{path}: copick unit '{unit}' is not supported; locations must be in Angstrom"
        )
    size = context.voxel_size or document.get("voxel_spacing")
    if not size:
        raise BadInputError(
            f"{path}: copick file without voxel_spacing; pass voxel_size= to read it"
        )
    points = document.get("points") or []
    transforms = np.array(
        [p.get("transformation_", np.eye(4).tolist()) for p in points], dtype=np.float64
    )
    transforms = transforms.reshape(len(points), 4, 4)
    # copick: the particle centre is the location plus the transform's translation
    xyz = np.array([[p["location"][a] for a in "xyz"] for p in points], dtype=np.float64).reshape(
        -1, 3
    )
    xyz = (xyz + transforms[:, :3, 3]) / float(size)
    oriented = document.get("trust_orientation", False) or not np.allclose(
        transforms[:, :3, :3], np.eye(3)
    )
    return Picks.from_xyz(
        xyz,
        scores=np.array(
            [1.0 if p.get("score") is None else p["score"] for p in points], dtype=np.float64
        ),
        voxel_size=float(size),
        tomogram=document.get("run_name") or "",
        feature=document.get("pickable_object_name", ""),
        orientations=euler_angles(transforms[:, :3, :3]) if oriented and points else None,
    )


def _eman2_classes(info: dict) -> dict[int, str]:
    classes = {int(k): str(v.get("name", "")) for k, v in (info.get("class_list") or {}).items()}
    for box in info.get("boxes_3d") or []:
        if len(box) > 5:
            classes.setdefault(int(box[5]), "")
        else:
            classes.setdefault(0, "")
    return classes


def _write_eman2(
    path: Path,
    picks: Picks,
    overwrite: bool,
    voxel_size: float | None = None,
    box_size_px: int = 32,
    class_id: int | None = None,
) -> None:
    info = _read_json(path) if path.exists() else {}
    if not isinstance(info, dict):
        raise BadInputError(f"{path}: not an EMAN2 info file (expected a JSON object)")
    name = picks.feature or "particles"
    classes = _eman2_classes(info)
    same = [k for k, v in classes.items() if v == name] if class_id is None else [class_id]
    if class_id is None:
        class_id = same[0] if same else next(i for i in range(len(classes) + 1) if i not in classes)
    boxes = [b for b in info.get("boxes_3d") or [] if (int(b[5]) if len(b) > 5 else 0) != class_id]
    if len(boxes) < len(info.get("boxes_3d") or []) and not overwrite:
        raise OutputExistsError(
            f"{path}: already has boxes of class {class_id} ('{classes.get(class_id, name)}'); "
            "pass overwrite=True (--overwrite) to replace them"
        )
    xyz, box_size = picks.xyz, float(box_size_px)
    if "apix_unbin" in info:  # EMAN2 tomogram pipeline: unbinned pixels from the centre
        scale = _voxel_size_for_angstrom(picks, voxel_size, path, "EMAN2 (apix_unbin)") / float(
            info["apix_unbin"]
        )
        xyz = (xyz - picks._centre_xyz("EMAN2 boxes of an info file with apix_unbin")) * scale
        box_size *= scale
    boxes += [
        [*map(float, p), "tomoseg", float(s), int(class_id)]
        for p, s in zip(xyz, picks.score_values, strict=True)
    ]
    class_list = dict(info.get("class_list") or {})
    class_list[str(class_id)] = {"name": name, "boxsize": box_size}
    write_json_atomic(path, {**info, "boxes_3d": boxes, "class_list": class_list}, overwrite=True)


def _read_eman2(path: Path, context: _ReadContext, class_id: int | None = None) -> Picks:
    info = _read_json(path)
    if not isinstance(info, dict):
        raise BadInputError(f"{path}: not an EMAN2 info file (expected a JSON object)")
    classes = _eman2_classes(info)
    if class_id is None and context.feature is not None:
        matching = [k for k, v in classes.items() if v == context.feature]
        if not matching:
            raise BadInputError(
                f"{path}: no class named '{context.feature}'; it has {_describe(classes)}"
            )
        class_id = matching[0]
    if class_id is None and len(classes) > 1:
        raise BadInputError(
            f"{path}: has {len(classes)} classes ({_describe(classes)}); pass feature=NAME or class_id=N"
        )
    if class_id is None:
        class_id = next(iter(classes), 0)
    rows = [b for b in info.get("boxes_3d") or [] if (int(b[5]) if len(b) > 5 else 0) == class_id]
    xyz = np.array([b[:3] for b in rows], dtype=np.float64).reshape(-1, 3)
    scores = np.array([float(b[4]) if len(b) > 4 else 1.0 for b in rows], dtype=np.float64)
    size = context.voxel_size or 1.0
    if "apix_unbin" in info:
        centre, size = context.need_frame(path, "EMAN2 boxes (info file with apix_unbin)")
        xyz = xyz * float(info["apix_unbin"]) / size + centre
    return Picks.from_xyz(
        xyz, scores=scores, voxel_size=size, shape=context.shape, feature=classes.get(class_id, "")
    )


def _describe(classes: dict[int, str]) -> str:
    return ", ".join(f"{k}: '{v}'" for k, v in sorted(classes.items())) or "none"


def _write_ndjson(path: Path, picks: Picks, overwrite: bool) -> None:
    matrices = None if picks.orientations is None else rotation_matrices(picks.orientations)
    lines = []
    for i, location in enumerate(picks.xyz):
        point: dict[str, Any] = {
            "type": "point" if matrices is None else "orientedPoint",
            "location": dict(zip("xyz", map(float, location), strict=True)),
        }
        if matrices is not None:
            point["xyz_rotation_matrix"] = matrices[i].tolist()
        lines.append(json.dumps(point) + "\n")
    write_text_atomic(path, "".join(lines), overwrite=overwrite)


def _read_ndjson(path: Path, context: _ReadContext) -> Picks:
    points = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                points.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError) as error:
                raise BadInputError(
                    f"{path}: line {number} is not JSON ({_first_line(error)})"
                ) from error
    xyz = np.array([[p["location"][a] for a in "xyz"] for p in points], dtype=np.float64).reshape(
        -1, 3
    )
    oriented = bool(points) and all("xyz_rotation_matrix" in p for p in points)
    matrices = [p["xyz_rotation_matrix"] for p in points] if oriented else None
    return Picks.from_xyz(
        xyz, orientations=None if matrices is None else euler_angles(np.array(matrices))
    )


# ---------------------------------------------------------------------------------------------
# plain text: IMOD, CSV, EMAN/RELION .box


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
        raise BadInputError(f"{path}: not a readable CSV file ({_first_line(error)})") from error
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
