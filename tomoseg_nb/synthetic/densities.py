"""Real macromolecular density maps shipped with the package, for realistic phantom particles.

The maps (10 A/voxel, computed from PDB atomic models by the PolNet project, Apache-2.0; see
``densities/README.md``) are cropped to the molecule and scaled so that the mean density inside the
molecular envelope is 1.0: one unit is "protein against vitreous ice", the contrast scale every
phantom uses. When a map file is missing (a stripped-down install) a smooth blob of the molecule's
size is returned instead, so phantoms still build.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import BadInputError

DENSITY_VOXEL_SIZE = 10.0
"""Voxel size of the shipped maps, Angstrom."""

DENSITY_NAMES: dict[str, str] = {
    "4v4r": "E. coli 70S ribosome (PDB 4V4R)",
    "3j9i": "20S proteasome (PDB 3J9I)",
    "1bxn": "RuBisCO L8S8 (PDB 1BXN)",
    "6utj": "elongated ~23 nm complex (PDB 6UTJ)",
    "membrane_4pe5": "membrane protein, normal along z, bilayer centre at the box centre (PDB 4PE5)",
}
"""Shipped maps: name -> what it is."""

ENVELOPE_LEVEL = 0.2
"""Contour (in the maps' normalised units) that draws the molecular envelope used for labels.

About 10 % of a map's peak: encloses the molecule as a surface rendering at a usual display level
does (the 70S ribosome at this level is ~25 nm across).
"""

_FOLDER = Path(__file__).with_name("densities")
# Approximate diameters (A) for the fallback blobs when a map file is missing.
_FALLBACK_DIAMETER = {
    "4v4r": 250.0,
    "3j9i": 150.0,
    "1bxn": 120.0,
    "6utj": 200.0,
    "membrane_4pe5": 130.0,
}


def load_density(name: str) -> np.ndarray:
    """Return the density map ``name`` as float32 ``(z, y, x)`` at 10 A/voxel, envelope mean 1.0.

    Parameters
    ----------
    name : str
        One of ``DENSITY_NAMES`` (PDB id, or ``membrane_<id>`` for membrane proteins).

    Returns
    -------
    numpy.ndarray
        Non-negative density, the molecule centred in the box (for membrane proteins the bilayer
        centre is the box centre along z and the membrane normal is z).

    Examples
    --------
    >>> ribosome = load_density("4v4r")
    >>> ribosome.dtype, ribosome.ndim
    (dtype('float32'), 3)
    """
    if name not in DENSITY_NAMES:
        raise BadInputError(f"unknown density {name!r}; choose one of {', '.join(DENSITY_NAMES)}")
    path = _FOLDER / f"{name}.mrc"
    if not path.exists():
        return _fallback_blob(_FALLBACK_DIAMETER[name] / DENSITY_VOXEL_SIZE)
    import mrcfile

    with mrcfile.open(path, permissive=True) as mrc:
        return np.array(mrc.data, dtype=np.float32)


def _fallback_blob(diameter_voxels: float) -> np.ndarray:
    """A soft-edged ball of the given diameter, envelope mean about 1."""
    size = int(np.ceil(diameter_voxels)) + 5
    grid = np.indices((size,) * 3, dtype=np.float32) - (size - 1) / 2.0
    radius = np.sqrt((grid**2).sum(axis=0))
    blob = 1.0 / (1.0 + np.exp((radius - diameter_voxels / 2.0) / 0.7))
    return (blob / blob[blob > ENVELOPE_LEVEL].mean()).astype(np.float32)


def resample_density(density: np.ndarray, voxel_size_angstrom: float) -> np.ndarray:
    """Resample a 10 A/voxel map to ``voxel_size_angstrom``, keeping density units (not mass).

    Coarser grids are low-pass filtered first so that fine detail does not alias; values stay on
    the same scale, so ``ENVELOPE_LEVEL`` still draws the envelope.

    Parameters
    ----------
    density : numpy.ndarray
        Map at ``DENSITY_VOXEL_SIZE``.
    voxel_size_angstrom : float
        Target voxel size, Angstrom (positive).

    Returns
    -------
    numpy.ndarray
        float32 map; each axis scaled by ``DENSITY_VOXEL_SIZE / voxel_size_angstrom``.
    """
    if not np.isfinite(voxel_size_angstrom) or voxel_size_angstrom <= 0:
        raise BadInputError(f"voxel size {voxel_size_angstrom!r} A: must be a positive number")
    density = np.asarray(density, dtype=np.float32)
    factor = DENSITY_VOXEL_SIZE / float(voxel_size_angstrom)
    if abs(factor - 1.0) < 1e-6:
        return density.copy()
    if factor < 1.0:
        # Anti-alias: Gaussian with ~half a target voxel sigma in source voxels.
        density = ndimage.gaussian_filter(density, sigma=0.5 * (1.0 / factor - 1.0) + 0.25)
    shape = tuple(max(1, round(n * factor)) for n in density.shape)
    zoom = tuple(new / old for new, old in zip(shape, density.shape, strict=True))
    return np.clip(
        ndimage.zoom(density, zoom, order=1, grid_mode=True, mode="grid-constant"), 0, None
    )
