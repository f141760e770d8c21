"""Phantom cellular tomograms with ground truth: the reference every accuracy claim is measured on.

A phantom is a slab of crowded cytoplasm holding vesicles and organelle membranes (lipid bilayers,
some decorated with membrane proteins), microtubules, actin filaments and bundles, 70S ribosomes
(the real density, some bound to membranes), unlabelled macromolecular crowding (proteasome,
RuBisCO and another complex, plus a fine texture of small proteins), gold fiducials and ice
contamination. It is imaged as ``imaging.image_density`` describes (CTF band limit, +-60 degree
missing wedge around y, reconstruction-like noise at a set SNR).

Density units: vitreous ice 0, protein about 1 (mean inside the molecular envelope), ribosomes
1.4 (two thirds RNA), lipid head groups 1.1, cytosol a textured 0.15 (cleaner 0.05 in vesicle
lumens, denser 0.3 in organelle matrix), gold 10, crystalline ice contamination 2.5. Protein
features overlap in intensity, so no feature is separable by grey level alone.

Labels (``LABEL_IDS``) and precedence. Objects are painted in this order: ice contamination,
membranes (vesicles, organelles, membrane proteins), microtubules, actin, ribosomes, crowding,
fiducials. Ice is never painted over (label 6 wins everywhere). Otherwise a later object replaces
what it covers, which only happens for filaments crossing membranes (a microtubule cuts through a
vesicle wall and its lumen is cleared); particles (ribosomes, crowding, fiducials) are placed only
where nothing else is, with a one-voxel gap, except membrane-bound ribosomes, which touch their
membrane. What is labelled:

- membrane (1): voxels within 2.5 nm of a bilayer mid-surface (5 nm thick shells); membrane
  protein domains outside the bilayer stay 0.
- microtubule (2): the wall, 8 to 12.5 nm from the axis; the lumen is 0.
- ribosome (3): the rotated, resampled 70S density above ``densities.ENVELOPE_LEVEL``.
- actin (4): voxels within 3.5 nm of a filament axis.
- fiducial (5): gold beads, 5-10 nm diameter.
- ice (6): contamination blobs on the slab surfaces.

Counts scale with the volume: ``CellContent`` gives them per cubic micrometre (per square
micrometre of slab surface for gold and ice), rounded stochastically, so a small test volume gets
proportionally fewer objects.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..atomic import check_output_path, write_json_atomic, write_text_atomic
from ..errors import BadInputError
from ..progress import ProgressCallback, progress_bar
from ..volume import write_volume
from . import densities
from .imaging import ImagingConditions, image_density, reconstruction_noise

LABEL_IDS = {"membrane": 1, "microtubule": 2, "ribosome": 3, "actin": 4, "fiducial": 5, "ice": 6}
"""Fixed ground-truth label ids of the phantoms (0 = background and unlabelled crowding)."""

PHANTOM_FILES = {
    "tomogram": "tomogram.mrc",
    "labels": "labels.mrc",
    "label_ids": "labels.json",
    "particles": "particles.csv",
    "filaments": "filaments.json",
}
"""What ``write_tomogram_phantom`` writes: key -> file name in the folder."""

_MEMBRANE, _MICROTUBULE, _RIBOSOME, _ACTIN, _FIDUCIAL, _ICE = range(1, 7)

# Physical sizes, Angstrom.
_BILAYER_HEAD_A = 19.0  # head-group peaks at +-19 A from the mid-surface
_BILAYER_HALF_A = 25.0  # labelled half-thickness
_INNER_MEMBRANE_GAP_A = 80.0  # organelle double membranes: mid-surface spacing minus a bilayer
_MT_INNER_A, _MT_OUTER_A = 80.0, 125.0
_ACTIN_RADIUS_A, _ACTIN_STRAND_A, _ACTIN_SIGMA_A = 35.0, 20.0, 10.0
_ACTIN_CROSSOVER_A, _ACTIN_SUBUNIT_A = 370.0, 55.0
_BUNDLE_SPACING_A = 120.0
_FILAMENT_STEP_A = 160.0
_CYTOSOL_MEAN, _CYTOSOL_STD = 0.15, 0.12
_GOLD_DENSITY, _ICE_DENSITY = 10.0, 2.5
_CROWDERS = ("3j9i", "1bxn", "6utj")
_MEMBRANE_PROTEIN = "membrane_4pe5"
_RIBOSOME_MAP = "4v4r"
_RIBOSOME_CONTRAST = 1.4  # two thirds rRNA, denser than protein: ribosomes stand out in real data
_UM3_PER_VOXEL_A3 = 1e-12  # 1 A^3 = 1e-12 um^3


@dataclass(frozen=True)
class CellContent:
    """How much of each feature a phantom holds; rates, so counts scale with the volume.

    Attributes
    ----------
    vesicles_per_um3 : float
        Vesicle centres per cubic micrometre (centres may lie just outside the slab, so some
        vesicles are cut by its surfaces).
    vesicle_radius_nm : tuple of float
        Radius range, drawn log-uniformly.
    organelles_per_um2 : float
        Large compartments (300-700 nm radius) whose membrane crosses the field, per square
        micrometre of slab; half have a double membrane.
    decorated_fraction : float
        Fraction of membranes carrying membrane proteins.
    membrane_proteins_per_um2 : float
        Membrane proteins per square micrometre of decorated membrane.
    microtubule_um_per_um3, actin_um_per_um3 : float
        Filament length per cubic micrometre (about, from the field's mean width).
    microtubule_elevation_deg : tuple of float
        Mean and spread (standard deviation, clipped at 3) of the microtubule axes' angle out of
        the x-y plane: (0, 6) lies them in the slab, as in flat cells; (75, 6) runs them along z.
    microtubule_protofilaments : int
        Protofilaments per microtubule wall (13 in most cells, 14 common in vitro).
    microtubule_contrast, membrane_contrast : float
        Multipliers of the microtubule wall and lipid head-group densities (1: protein-like).
    actin_bundle_fraction : float
        Fraction of actin placed as parallel bundles of 3-7 filaments 12 nm apart.
    ribosomes_per_um3 : float
        Ribosomes per cubic micrometre of cytosol.
    membrane_bound_fraction : float
        Fraction of ribosomes placed touching a membrane.
    crowders_per_um3 : float
        Unlabelled large complexes per cubic micrometre of cytosol and organelle lumen.
    fiducials_per_um2, ice_blobs_per_um2 : float
        Gold beads and ice contamination per square micrometre, near both slab surfaces.
    """

    vesicles_per_um3: float = 300.0
    vesicle_radius_nm: tuple[float, float] = (20.0, 90.0)
    organelles_per_um2: float = 1.5
    decorated_fraction: float = 0.5
    membrane_proteins_per_um2: float = 1500.0
    microtubule_um_per_um3: float = 60.0
    microtubule_elevation_deg: tuple[float, float] = (0.0, 6.0)
    microtubule_protofilaments: int = 13
    microtubule_contrast: float = 1.0
    membrane_contrast: float = 1.0
    actin_um_per_um3: float = 150.0
    actin_bundle_fraction: float = 0.5
    ribosomes_per_um3: float = 10000.0
    membrane_bound_fraction: float = 0.25
    crowders_per_um3: float = 20000.0
    fiducials_per_um2: float = 25.0
    ice_blobs_per_um2: float = 3.0


@dataclass
class TomogramPhantom:
    """A simulated tomogram with its ground truth.

    Attributes
    ----------
    tomogram : numpy.ndarray
        float32 ``(z, y, x)``: noisy, band-limited, missing wedge; noise-free part has mean 0, std 1.
    labels : numpy.ndarray
        uint8 ``(z, y, x)`` ground truth with ``label_ids``.
    label_ids : dict
        Feature name -> label id (``LABEL_IDS``).
    particles : dict
        "ribosome", "fiducial", "crowding" -> ``(N, 3)`` true centres z, y, x in voxels.
    filaments : dict
        "microtubule", "actin" -> list of ``(M, 3)`` axis polylines z, y, x in voxels, clipped to
        the volume.
    voxel_size : float
        Angstrom per voxel.
    """

    tomogram: np.ndarray
    labels: np.ndarray
    label_ids: dict[str, int]
    particles: dict[str, np.ndarray]
    filaments: dict[str, list[np.ndarray]]
    voxel_size: float


def simulate_tomogram(
    shape: tuple[int, int, int] = (64, 256, 256),
    *,
    voxel_size: float = 10.0,
    seed: int = 0,
    snr: float | None = 0.5,
    contrast: Literal["dark", "bright"] = "dark",
    content: CellContent | None = None,
    imaging: ImagingConditions | None = None,
    progress: ProgressCallback | None = None,
) -> TomogramPhantom:
    """Simulate a cellular tomogram and its ground-truth labels, particles and filament axes.

    Parameters
    ----------
    shape : tuple of int
        ``(z, y, x)`` voxels; z is the slab thickness.
    voxel_size : float
        Angstrom per voxel; all sizes are physical, so features keep their size in nm.
    seed : int
        Everything is determined by it. Content and noise use separate streams, so the same seed
        with ``snr=None`` gives the noise-free version of the same tomogram.
    snr : float or None
        Signal-to-noise ratio: variance of the noise-free tomogram over the whole volume divided
        by the variance of the added noise. None: no noise.
    contrast : {"dark", "bright"}
        "dark" (default): density is dark, as reconstructed cryo-ET tomograms usually are.
    content : CellContent, optional
        Feature rates; defaults to ``CellContent()``.
    imaging : ImagingConditions, optional
        Microscope and tilt settings; defaults to 300 kV, 4 um underfocus, phase flipped,
        +-60 degrees around y, WBP-like noise.
    progress : callable, optional
        ``callback(done, total)`` after each stage.

    Returns
    -------
    TomogramPhantom

    Examples
    --------
    >>> phantom = simulate_tomogram((32, 96, 96), seed=1)
    >>> phantom.tomogram.shape, phantom.labels.dtype
    ((32, 96, 96), dtype('uint8'))
    """
    shape = _checked_shape(shape)
    if not np.isfinite(voxel_size) or voxel_size <= 0:
        raise BadInputError(f"voxel_size={voxel_size!r}: use a positive number of Angstrom")
    if snr is not None and not (snr > 0):
        raise BadInputError(f"snr={snr!r}: use a positive signal-to-noise ratio, or None for none")
    if contrast not in ("dark", "bright"):
        raise BadInputError(f"contrast={contrast!r}: use 'dark' or 'bright'")
    content = content or CellContent()
    imaging = imaging or ImagingConditions()
    content_seed, noise_seed = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(content_seed)
    cell = _Cell(shape, float(voxel_size), rng)
    stages = (
        cell.add_ice,
        cell.add_membranes,
        cell.add_microtubules,
        cell.add_actin,
        cell.add_ribosomes,
        cell.add_crowding,
        cell.add_fiducials,
    )
    with progress_bar(len(stages) + 2, "simulating tomogram", progress) as advance:
        for stage in stages:
            stage(content)
            advance(1)
        tomogram = image_density(cell.density, cell.voxel_size, imaging, contrast=contrast)
        del cell.density
        advance(1)
        if snr is not None and np.isfinite(snr):
            noise = reconstruction_noise(
                shape, cell.voxel_size, imaging, np.random.default_rng(noise_seed)
            )
            # The noise-free tomogram has unit variance, so this noise variance gives the SNR.
            tomogram += noise * np.float32(1.0 / np.sqrt(snr))
        advance(1)
    return TomogramPhantom(
        tomogram=tomogram.astype(np.float32, copy=False),
        labels=cell.labels,
        label_ids=dict(LABEL_IDS),
        particles={
            name: np.asarray(points, dtype=np.float64).reshape(-1, 3)
            for name, points in cell.particles.items()
        },
        filaments={
            name: [run for axis in lines for run in _inside_runs(axis, shape)]
            for name, lines in cell.filaments.items()
        },
        voxel_size=float(voxel_size),
    )


def _checked_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    values = tuple(int(n) for n in shape)
    if len(values) != 3 or min(values) < 8:
        raise BadInputError(
            f"shape={tuple(shape)!r}: give three sizes (z, y, x) of at least 8 voxels"
        )
    return values  # three sizes: the length check above narrows the tuple


# ----------------------------------------------------------------------------- the cell


@dataclass
class _Membrane:
    centre: np.ndarray  # voxels
    radius: float  # voxels
    deformation: np.ndarray  # symmetric 3x3; radius(u) = radius * (1 + u.A.u)
    double: bool

    def signed_distance(self, zz: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        """Approximate signed distance (voxels) to the mid-surface; negative inside."""
        dz, dy, dx = zz - self.centre[0], yy - self.centre[1], xx - self.centre[2]
        distance = np.sqrt(dz * dz + dy * dy + dx * dx) + 1e-6
        a = self.deformation
        quad = (
            a[0, 0] * dz * dz
            + a[1, 1] * dy * dy
            + a[2, 2] * dx * dx
            + 2 * (a[0, 1] * dz * dy + a[0, 2] * dz * dx + a[1, 2] * dy * dx)
        ) / (distance * distance)
        return (distance - self.radius * (1.0 + quad)).astype(np.float32)

    def surface_point(self, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mid-surface point along the ray from the centre through ``point``, and that ray."""
        direction = point - self.centre
        direction /= np.linalg.norm(direction) + 1e-9
        radius = self.radius * (1.0 + direction @ self.deformation @ direction)
        return self.centre + radius * direction, direction


@dataclass
class _Template:
    """A density resampled to the phantom voxel size, with its rotation reference point."""

    density: np.ndarray
    reference: np.ndarray  # zyx voxels, the point that maps to the particle centre
    radius: float  # voxels, support radius around the reference

    @classmethod
    def load(cls, name: str, voxel_size: float, *, centre_of_mass: bool = True) -> _Template:
        density = densities.resample_density(densities.load_density(name), voxel_size)
        if centre_of_mass:
            reference = np.array(ndimage.center_of_mass(density))
        else:
            reference = (np.array(density.shape) - 1) / 2.0
        support = np.argwhere(density > 1e-3 * density.max())
        radius = float(np.sqrt(((support - reference) ** 2).sum(axis=1)).max())
        return cls(density, reference, radius)

    def oriented(self, rotation: np.ndarray, fraction: np.ndarray) -> _Oriented:
        """The density rotated by ``rotation`` (zyx), its reference at ``half + fraction``."""
        half = int(np.ceil(self.radius)) + 2
        size = 2 * half + 1
        matrix = rotation.T  # output -> input coordinates
        offset = self.reference - matrix @ (half + fraction)
        patch = ndimage.affine_transform(
            self.density, matrix, offset=offset, output_shape=(size,) * 3, order=1, mode="constant"
        )
        return _Oriented(np.clip(patch, 0, None), half, np.asarray(fraction, dtype=float))


@dataclass
class _Oriented:
    """A rotated particle density, ready to be tried at several positions."""

    patch: np.ndarray
    half: int
    fraction: np.ndarray  # sub-voxel part of every centre it is placed at

    @cached_property
    def envelope(self) -> np.ndarray:
        return self.patch > densities.ENVELOPE_LEVEL

    @cached_property
    def keep_clear(self) -> np.ndarray:
        """The envelope grown by one voxel: particles keep a gap and stay separate components."""
        return ndimage.binary_dilation(self.envelope, np.ones((3, 3, 3), dtype=bool))


@dataclass
class _Cell:
    """The density, labels and bookkeeping of a phantom while its content is placed."""

    shape: tuple[int, int, int]
    voxel_size: float
    rng: np.random.Generator
    density: np.ndarray = field(init=False)
    labels: np.ndarray = field(init=False)
    occupied: np.ndarray = field(init=False)  # no particle may be placed here
    region: np.ndarray = field(init=False)  # 0 cytosol, 1 vesicle lumen, 2 organelle lumen
    membranes: list[_Membrane] = field(default_factory=list)
    particles: dict[str, list[np.ndarray]] = field(init=False)
    filaments: dict[str, list[np.ndarray]] = field(init=False)
    _filament_trees: list[tuple[cKDTree, float]] = field(default_factory=list)
    _templates: dict[str, _Template] = field(default_factory=dict)

    def __post_init__(self) -> None:
        texture = self.rng.standard_normal(self.shape, dtype=np.float32)
        texture = ndimage.gaussian_filter(texture, max(0.6, 15.0 / self.voxel_size), mode="wrap")
        texture *= np.float32(_CYTOSOL_STD / texture.std())
        self.density = texture + np.float32(_CYTOSOL_MEAN)
        self.labels = np.zeros(self.shape, dtype=np.uint8)
        self.occupied = np.zeros(self.shape, dtype=bool)
        self.region = np.zeros(self.shape, dtype=np.uint8)
        self.particles = {"ribosome": [], "fiducial": [], "crowding": []}
        self.filaments = {"microtubule": [], "actin": []}

    # -- geometry helpers

    def voxels(self, angstrom: float) -> float:
        return angstrom / self.voxel_size

    @property
    def volume_um3(self) -> float:
        return float(np.prod(self.shape)) * self.voxel_size**3 * _UM3_PER_VOXEL_A3

    @property
    def area_um2(self) -> float:
        return self.shape[1] * self.shape[2] * (self.voxel_size * 1e-4) ** 2

    def count(self, expected: float) -> int:
        """Stochastic rounding: small volumes get a feature with the right probability."""
        return int(expected) + int(self.rng.random() < expected - int(expected))

    def box(self, low: np.ndarray, high: np.ndarray) -> tuple[slice, ...] | None:
        """Slices of the voxels between ``low`` and ``high`` (inclusive), clipped; None if empty."""
        lo = np.maximum(np.floor(low).astype(int), 0)
        hi = np.minimum(np.ceil(high).astype(int) + 1, self.shape)
        if np.any(hi <= lo):
            return None
        return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))

    @staticmethod
    def grid(box: tuple[slice, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        zz, yy, xx = np.ogrid[box]
        return zz.astype(np.float32), yy.astype(np.float32), xx.astype(np.float32)

    def patch_box(
        self, centre: np.ndarray, half: int, size: int
    ) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
        """Volume and patch slices where a cubic patch centred on ``floor(centre)`` lands."""
        origin = np.floor(centre).astype(int) - half
        lo = np.maximum(origin, 0)
        hi = np.minimum(origin + size, self.shape)
        if np.any(hi <= lo):
            return None
        volume = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        patch = tuple(slice(a - o, b - o) for a, b, o in zip(lo, hi, origin, strict=True))
        return volume, patch

    def paint(
        self,
        box: tuple[slice, ...],
        density: np.ndarray,
        alpha: np.ndarray,
        where: np.ndarray,
        *,
        label: int = 0,
        label_mask: np.ndarray | None = None,
        clear: bool = False,
        occupy: np.ndarray | None = None,
    ) -> None:
        """Composite an object: it adds its density and displaces ``alpha`` of what was there.

        Ice is never painted over. ``clear`` erases earlier labels under the object (filaments
        cutting through membranes); ``label_mask`` voxels get ``label``.
        """
        labels = self.labels[box]
        free = where & (labels != _ICE)
        current = self.density[box]
        current[free] = density[free] + (1.0 - alpha[free]) * current[free]
        if clear:
            labels[free] = 0
        if label and label_mask is not None:
            labels[free & label_mask] = label
        if occupy is not None:
            self.occupied[box] |= occupy & free

    # -- ice contamination

    def add_ice(self, content: CellContent) -> None:
        """Dense, irregular ice blobs sitting on the top and bottom slab surfaces."""
        depth = self.shape[0]
        for _ in range(self.count(content.ice_blobs_per_um2 * self.area_um2)):
            radius = self.voxels(self.rng.uniform(200.0, 600.0))
            face = 0.0 if self.rng.random() < 0.5 else depth - 1.0
            centre = np.array(
                [
                    face + self.rng.uniform(-0.4, 0.2) * radius * (1 if face == 0 else -1),
                    self.rng.uniform(0, self.shape[1]),
                    self.rng.uniform(0, self.shape[2]),
                ]
            )
            box = self.box(centre - 1.3 * radius, centre + 1.3 * radius)
            if box is None:
                continue
            zz, yy, xx = self.grid(box)
            distance = np.sqrt(
                (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2
            )
            bumps = _smooth_noise(tuple(s.stop - s.start for s in box), 6, self.rng)
            inside = (1.0 - distance / radius + 0.12 * bumps) * radius  # voxels inside the edge
            alpha = np.clip(inside + 0.5, 0, 1).astype(np.float32)
            current = self.density[box]
            blob = np.float32(_ICE_DENSITY) + 2.0 * (current - np.float32(_CYTOSOL_MEAN))
            mask = inside >= 0
            self.paint(
                box, alpha * blob, alpha, alpha > 0, label=_ICE, label_mask=mask, occupy=alpha > 0
            )

    # -- membranes

    def add_membranes(self, content: CellContent) -> None:
        """Organelle membranes crossing the field, then vesicles around them; some decorated."""
        for _ in range(self.count(content.organelles_per_um2 * self.area_um2)):
            self._add_organelle(content.membrane_contrast)
        low, high = (self.voxels(10.0 * r) for r in content.vesicle_radius_nm)
        for _ in range(self.count(content.vesicles_per_um3 * self.volume_um3)):
            for _attempt in range(30):
                radius = float(np.exp(self.rng.uniform(np.log(low), np.log(high))))
                centre = self.rng.uniform(0, 1, 3) * np.array(self.shape)
                centre[0] = self.rng.uniform(-0.3 * radius, self.shape[0] + 0.3 * radius)
                if self._membrane_fits(centre, radius):
                    membrane = _Membrane(centre, radius, _deformation(self.rng, 0.08), double=False)
                    self._paint_membrane(membrane, lumen=1, contrast=content.membrane_contrast)
                    break
        for membrane in list(self.membranes):
            if self.rng.random() < content.decorated_fraction:
                self._decorate(membrane, content.membrane_proteins_per_um2)

    def _add_organelle(self, contrast: float) -> None:
        radius = self.voxels(self.rng.uniform(3000.0, 7000.0))
        through = self.rng.uniform(0.15, 0.85, 3) * np.array(self.shape)
        through[0] = self.shape[0] / 2.0
        angle = self.rng.uniform(0, 2 * np.pi)
        outward = np.array([self.rng.normal(0, 0.1), np.sin(angle), np.cos(angle)])
        outward /= np.linalg.norm(outward)
        membrane = _Membrane(
            through - radius * outward,
            radius,
            _deformation(self.rng, 0.03),
            self.rng.random() < 0.5,
        )
        self._paint_membrane(membrane, lumen=2, contrast=contrast)

    def _membrane_fits(self, centre: np.ndarray, radius: float) -> bool:
        gap = self.voxels(100.0)
        for other in self.membranes:
            distance = float(np.linalg.norm(centre - other.centre))
            if distance < radius + other.radius * 1.1 + gap:
                return False
        return True

    def _paint_membrane(self, membrane: _Membrane, *, lumen: int, contrast: float) -> None:
        extent = membrane.radius * 1.35 + self.voxels(60.0)
        box = self.box(membrane.centre - extent, membrane.centre + extent)
        if box is None:
            return
        sd_voxels = membrane.signed_distance(*self.grid(box))
        half = self.voxels(_BILAYER_HALF_A)
        shells = (
            [0.0, -self.voxels(2 * _BILAYER_HALF_A + _INNER_MEMBRANE_GAP_A)]
            if membrane.double
            else [0.0]
        )
        if not np.any(np.abs(sd_voxels) <= half):
            return
        self.membranes.append(membrane)
        inner_edge = shells[-1] - half
        lumen_weight = np.clip(inner_edge - sd_voxels + 0.5, 0, 1).astype(np.float32)
        current = self.density[box]
        free = self.labels[box] != _ICE
        if lumen == 1:  # vesicle lumen: cleaner than the cytosol
            target = np.float32(0.05) + np.float32(0.4) * (current - np.float32(_CYTOSOL_MEAN))
        else:  # organelle matrix: denser
            target = np.float32(0.3) + np.float32(1.3) * (current - np.float32(_CYTOSOL_MEAN))
        current += np.where(free, lumen_weight * (target - current), 0)
        self.region[box][(lumen_weight > 0.5) & free] = lumen
        profile = np.zeros_like(sd_voxels)
        alpha = np.zeros_like(sd_voxels)
        label_mask = np.zeros(sd_voxels.shape, dtype=bool)
        for shell in shells:
            sd_angstrom = (sd_voxels - shell) * self.voxel_size
            profile += contrast * _bilayer_profile(sd_angstrom, self.voxel_size)
            alpha = np.maximum(
                alpha,
                np.clip((_BILAYER_HALF_A - np.abs(sd_angstrom)) / self.voxel_size + 0.5, 0, 1),
            )
            label_mask |= np.abs(sd_angstrom) <= _BILAYER_HALF_A
        where = alpha > 0
        self.paint(
            box, profile, alpha, where, label=_MEMBRANE, label_mask=label_mask, occupy=label_mask
        )

    def _decorate(self, membrane: _Membrane, per_um2: float) -> None:
        """Membrane proteins in the bilayer, normal along the membrane normal, either way up."""
        template = self._template(_MEMBRANE_PROTEIN, centre_of_mass=False)
        extent = membrane.radius * 1.2 + 2
        box = self.box(membrane.centre - extent, membrane.centre + extent)
        if box is None:
            return
        sd = membrane.signed_distance(*self.grid(box))
        band = np.argwhere(np.abs(sd) < 0.5) + np.array([s.start for s in box])
        area_um2 = len(band) * (self.voxel_size * 1e-4) ** 2
        placed: list[np.ndarray] = []
        spacing = self.voxels(120.0)
        for _ in range(self.count(per_um2 * area_um2)):
            point, normal = membrane.surface_point(band[self.rng.integers(len(band))].astype(float))
            if any(np.linalg.norm(point - other) < spacing for other in placed):
                continue
            if self.rng.random() < 0.5:
                normal = -normal
            oriented = template.oriented(_frame_rotation(normal, self.rng), point - np.floor(point))
            if self._place(oriented, point, 0, check=False):
                placed.append(point)

    # -- filaments

    def add_microtubules(self, content: CellContent) -> None:
        """Hollow 25 nm tubes with protofilament texture, gently curved, crossing the field."""
        outer = self.voxels(_MT_OUTER_A)
        mean_elevation, spread = content.microtubule_elevation_deg
        protofilaments, contrast = (
            content.microtubule_protofilaments,
            content.microtubule_contrast,
        )

        def profile(r, s, theta, voxel_size):
            return _microtubule_profile(r, s, theta, voxel_size, protofilaments, contrast)

        expected_length = content.microtubule_um_per_um3 * self.volume_um3 * 1e4 / self.voxel_size
        for _ in range(self.count(expected_length / self._mean_width())):
            for _attempt in range(40):
                axis = self._random_filament(
                    curvature_radius_a=self.rng.uniform(1.5e4, 6e4),
                    elevation_deg=spread,
                    wobble=0.0,
                    margin=outer + 1,
                    mean_elevation_deg=mean_elevation,
                )
                if axis is not None and self._filament_clear(axis, outer, gap=self.voxels(40.0)):
                    self._paint_tube(axis, outer, profile)
                    self._remember_filament(axis, outer)
                    self.filaments["microtubule"].append(axis)
                    break

    def add_actin(self, content: CellContent) -> None:
        """Double-helical 7 nm filaments, single or in parallel bundles 12 nm apart."""
        radius = self.voxels(_ACTIN_RADIUS_A)
        expected_length = content.actin_um_per_um3 * self.volume_um3 * 1e4 / self.voxel_size
        remaining = self.count(expected_length / self._mean_width())
        for _attempt in range(60):
            if remaining <= 0:
                break
            bundle = self.rng.random() < content.actin_bundle_fraction
            n_filaments = min(remaining, int(self.rng.integers(3, 8))) if bundle else 1
            centre_line = self._random_filament(
                curvature_radius_a=self.rng.uniform(3e3, 2e4),
                elevation_deg=8.0,
                wobble=0.02,
                margin=radius + 1,
            )
            if centre_line is None:
                continue
            axes = _bundle(centre_line, n_filaments, self.voxels(_BUNDLE_SPACING_A))
            if not all(self._filament_clear(axis, radius, gap=self.voxels(30.0)) for axis in axes):
                continue
            for axis in axes:
                phase = self.rng.uniform(0, 2 * np.pi)
                self._paint_tube(
                    axis, radius, lambda r, s, t, vs, p=phase: _actin_profile(r, s, t, vs, p)
                )
                self._remember_filament(axis, radius)
                self.filaments["actin"].append(axis)
            remaining -= len(axes)

    def _mean_width(self) -> float:
        return (self.shape[1] + self.shape[2]) / 2.0

    def _random_filament(
        self,
        *,
        curvature_radius_a: float,
        elevation_deg: float,
        wobble: float,
        margin: float,
        mean_elevation_deg: float = 0.0,
    ) -> np.ndarray | None:
        """A smooth curve through a random point, extended until it leaves the volume.

        Its angle out of the x-y plane is ``mean_elevation_deg`` plus a normal deviate of spread
        ``elevation_deg`` (clipped at 3 spreads).
        """
        depth = self.shape[0]
        low, high = min(margin, depth / 2.0), max(depth - 1 - margin, depth / 2.0)
        start = np.array(
            [
                self.rng.uniform(low, high),
                self.rng.uniform(0, self.shape[1]),
                self.rng.uniform(0, self.shape[2]),
            ]
        )
        azimuth = self.rng.uniform(0, 2 * np.pi)
        elevation = np.radians(
            mean_elevation_deg
            + np.clip(self.rng.normal(0, elevation_deg), -3 * elevation_deg, 3 * elevation_deg)
        )
        tangent = np.array(
            [
                np.sin(elevation),
                np.cos(elevation) * np.sin(azimuth),
                np.cos(elevation) * np.cos(azimuth),
            ]
        )
        bend = np.array([self.rng.normal(0, 0.2), self.rng.normal(), self.rng.normal()])
        bend -= (bend @ tangent) * tangent
        bend /= np.linalg.norm(bend)
        step = max(2.0, self.voxels(_FILAMENT_STEP_A))
        curvature = self.voxel_size / curvature_radius_a
        limit = np.array(self.shape, dtype=float) + margin + step
        halves = []
        for sign in (1.0, -1.0):
            point, direction, normal = start.copy(), sign * tangent, bend.copy()
            points = [point.copy()]
            for _ in range(int(4 * sum(self.shape) / step)):
                direction = direction + curvature * step * normal + wobble * self.rng.normal(size=3)
                direction /= np.linalg.norm(direction)
                normal -= (normal @ direction) * direction
                normal /= np.linalg.norm(normal)
                point = point + step * direction
                points.append(point.copy())
                if np.any(point < -margin - step) or np.any(point > limit):
                    break
            halves.append(points)
        axis = np.array(halves[1][::-1] + halves[0][1:])
        return axis if len(axis) >= 2 else None

    def _filament_clear(self, axis: np.ndarray, radius: float, *, gap: float) -> bool:
        dense = _densify(axis, 1.0)
        for tree, other_radius in self._filament_trees:
            distances, _ = tree.query(dense, distance_upper_bound=radius + other_radius + gap)
            if np.isfinite(distances).any():
                return False
        return True

    def _remember_filament(self, axis: np.ndarray, radius: float) -> None:
        self._filament_trees.append((cKDTree(_densify(axis, 1.0)), radius))

    def _paint_tube(self, axis: np.ndarray, radius: float, profile) -> None:
        for box, r, s, theta, owned in _tube_fields(axis, radius + 1.0, self):
            density, alpha, label_mask, label = profile(r, s, theta, self.voxel_size)
            where = owned & (alpha > 0)
            self.paint(
                box,
                density,
                alpha,
                where,
                label=label,
                label_mask=label_mask,
                clear=True,
                occupy=where,
            )

    # -- particles

    def add_ribosomes(self, content: CellContent) -> None:
        """70S ribosomes at random orientations; a fraction touching membranes, the rest free."""
        template = self._template(_RIBOSOME_MAP)
        total = self.count(
            content.ribosomes_per_um3 * self.volume_um3 * float(np.mean(self.region == 0))
        )
        bound = self.count(total * content.membrane_bound_fraction) if self.membranes else 0
        membrane_voxels = np.flatnonzero(self.labels == _MEMBRANE) if bound else np.array([], int)
        for index in range(total):
            if index < bound and len(membrane_voxels) > 0:
                for _attempt in range(20):
                    rotation = _random_rotation(self.rng)
                    centre = self._membrane_contact(template, rotation, membrane_voxels)
                    if centre is None or self.region[_nearest(centre)] != 0:
                        continue
                    oriented = template.oriented(rotation, centre - np.floor(centre))
                    if self._place(
                        oriented,
                        centre,
                        _RIBOSOME,
                        record="ribosome",
                        contrast=_RIBOSOME_CONTRAST,
                        ignore_membrane=True,
                    ):
                        break
            else:
                self._place_randomly(
                    template,
                    _RIBOSOME,
                    record="ribosome",
                    contrast=_RIBOSOME_CONTRAST,
                    allowed_regions=(0,),
                )

    def _membrane_contact(
        self, template: _Template, rotation: np.ndarray, membrane_voxels: np.ndarray
    ) -> np.ndarray | None:
        """A centre that puts the rotated ribosome's envelope just outside a membrane."""
        flat = membrane_voxels[self.rng.integers(len(membrane_voxels))]
        point = np.array(np.unravel_index(flat, self.shape), dtype=float)
        zz, yy, xx = (np.array([[[v]]], dtype=np.float32) for v in point)
        membrane = min(
            self.membranes, key=lambda m: abs(float(m.signed_distance(zz, yy, xx).ravel()[0]))
        )
        surface, normal = membrane.surface_point(point)
        envelope = np.argwhere(template.density > densities.ENVELOPE_LEVEL) - template.reference
        # how far the rotated envelope reaches from its centre towards the membrane
        reach = float((envelope @ (rotation.T @ -normal)).max())
        centre = surface + normal * (self.voxels(_BILAYER_HALF_A) + reach + 1.0)
        if np.any(centre < 0) or np.any(centre > np.array(self.shape) - 1):
            return None
        return centre

    def add_crowding(self, content: CellContent) -> None:
        """Unlabelled large complexes at random orientations in cytosol and organelle lumen."""
        templates = [self._template(name) for name in _CROWDERS]
        fraction = float(np.mean(self.region != 1))
        for _ in range(self.count(content.crowders_per_um3 * self.volume_um3 * fraction)):
            template = templates[self.rng.integers(len(templates))]
            self._place_randomly(template, 0, record="crowding", allowed_regions=(0, 2))

    def add_fiducials(self, content: CellContent) -> None:
        """Gold beads, 5-10 nm across, near the two slab surfaces."""
        depth = self.shape[0]
        for _ in range(self.count(content.fiducials_per_um2 * self.area_um2)):
            radius = self.voxels(self.rng.uniform(25.0, 50.0))
            for _attempt in range(40):
                offset = radius + self.rng.uniform(0, 0.12 * depth)
                z = offset if self.rng.random() < 0.5 else depth - 1 - offset
                centre = np.array(
                    [
                        z,
                        self.rng.uniform(0, self.shape[1] - 1),
                        self.rng.uniform(0, self.shape[2] - 1),
                    ]
                )
                centre[0] = np.clip(centre[0], 0, depth - 1)
                box = self.box(centre - radius - 2, centre + radius + 2)
                if box is None:
                    continue
                zz, yy, xx = self.grid(box)
                distance = np.sqrt(
                    (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2
                )
                if (self.occupied[box] & (distance <= radius + 1.5)).any():
                    continue
                alpha = np.clip(radius - distance + 0.5, 0, 1).astype(np.float32)
                label_mask = (distance <= max(radius, 0.5)) | (distance == distance.min())
                self.paint(
                    box,
                    _GOLD_DENSITY * alpha,
                    alpha,
                    alpha > 0,
                    label=_FIDUCIAL,
                    label_mask=label_mask,
                    occupy=alpha > 0,
                )
                self.particles["fiducial"].append(centre)
                break

    def _template(self, name: str, *, centre_of_mass: bool = True) -> _Template:
        if name not in self._templates:
            self._templates[name] = _Template.load(
                name, self.voxel_size, centre_of_mass=centre_of_mass
            )
        return self._templates[name]

    def _place_randomly(
        self,
        template: _Template,
        label: int,
        *,
        record: str,
        allowed_regions: tuple[int, ...],
        contrast: float = 1.0,
        attempts: int = 25,
    ) -> bool:
        """One particle at a random orientation, tried at random free positions."""
        fraction = self.rng.random(3)
        oriented = template.oriented(_random_rotation(self.rng), fraction)
        for _attempt in range(attempts):
            centre = np.floor(self.rng.random(3) * (np.array(self.shape) - 1)) + fraction
            centre = np.minimum(centre, np.array(self.shape) - 1)
            if self.region[_nearest(centre)] not in allowed_regions:
                continue
            if self._place(oriented, centre, label, record=record, contrast=contrast):
                return True
        return False

    def _place(
        self,
        oriented: _Oriented,
        centre: np.ndarray,
        label: int,
        *,
        record: str | None = None,
        contrast: float = 1.0,
        check: bool = True,
        ignore_membrane: bool = False,
    ) -> bool:
        """Paint a particle at ``centre`` unless it would overlap something; True if painted.

        ``record`` names the ``particles`` list its centre goes to; ``contrast`` scales its density.
        """
        boxes = self.patch_box(centre, oriented.half, oriented.patch.shape[0])
        if boxes is None:
            return False
        box, inner = boxes
        envelope = oriented.envelope[inner]
        if check:
            blocked = self.occupied[box]
            if ignore_membrane:
                blocked = blocked & (self.labels[box] != _MEMBRANE)
            if (blocked & oriented.keep_clear[inner]).any():
                return False
        patch = oriented.patch[inner]
        alpha = np.clip(patch / (2.0 * densities.ENVELOPE_LEVEL), 0, 1)
        self.paint(
            box,
            contrast * patch,
            alpha,
            patch > 0,
            label=label,
            label_mask=envelope,
            occupy=envelope,
        )
        if record is not None:
            self.particles[record].append(centre)
        return True


def _nearest(point: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in np.round(point))


# ----------------------------------------------------------------------------- profiles


def _bilayer_profile(sd_angstrom: np.ndarray, voxel_size: float) -> np.ndarray:
    """Two head-group layers and a faint core, blurred by the voxel size (no aliasing)."""
    sigma = np.sqrt(5.0**2 + (0.4 * voxel_size) ** 2)
    heads = np.exp(-((sd_angstrom - _BILAYER_HEAD_A) ** 2) / (2 * sigma**2)) + np.exp(
        -((sd_angstrom + _BILAYER_HEAD_A) ** 2) / (2 * sigma**2)
    )
    core = 0.15 * np.exp(-(sd_angstrom**2) / (2 * 12.0**2))
    return (1.1 * heads + core).astype(np.float32)


def _microtubule_profile(
    r: np.ndarray,
    s: np.ndarray,
    theta: np.ndarray,
    voxel_size: float,
    protofilaments: int = 13,
    contrast: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    r_a, s_a = r * voxel_size, s * voxel_size
    edge = max(3.0, 0.5 * voxel_size)
    wall = _smooth_step((r_a - _MT_INNER_A) / edge) * _smooth_step((_MT_OUTER_A - r_a) / edge)
    lattice = 1.0 + 0.3 * np.cos(protofilaments * theta) * (
        0.6 + 0.4 * np.cos(2 * np.pi * s_a / 40.0 + 3 * theta)
    )
    density = (1.1 * contrast * wall * lattice).astype(np.float32)
    alpha = np.clip((_MT_OUTER_A - r_a) / voxel_size + 0.5, 0, 1).astype(np.float32)
    label_mask = (r_a >= _MT_INNER_A) & (r_a <= _MT_OUTER_A)
    return density, alpha, label_mask, _MICROTUBULE


def _actin_profile(
    r: np.ndarray, s: np.ndarray, theta: np.ndarray, voxel_size: float, phase: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    r_a, s_a = r * voxel_size, s * voxel_size
    sigma2 = _ACTIN_SIGMA_A**2 + (0.4 * voxel_size) ** 2
    density = np.zeros_like(r_a)
    for strand in (0, 1):
        angle = phase + np.pi * strand + np.pi * s_a / _ACTIN_CROSSOVER_A
        # squared distance, in the cross-section, to the strand centre at radius _ACTIN_STRAND_A
        d2 = r_a**2 + _ACTIN_STRAND_A**2 - 2 * r_a * _ACTIN_STRAND_A * np.cos(theta - angle)
        subunits = 1.0 + 0.3 * np.cos(
            2 * np.pi * (s_a - strand * _ACTIN_SUBUNIT_A / 2) / _ACTIN_SUBUNIT_A
        )
        density += np.exp(-d2 / (2 * sigma2)) * subunits
    alpha = np.clip((_ACTIN_RADIUS_A - r_a) / voxel_size + 0.5, 0, 1).astype(np.float32)
    return density.astype(np.float32), alpha, r_a <= _ACTIN_RADIUS_A, _ACTIN


def _smooth_step(x: np.ndarray) -> np.ndarray:
    return np.clip(0.5 + 0.5 * x, 0, 1)


# ----------------------------------------------------------------------------- geometry


def _tube_fields(
    axis: np.ndarray, radius: float, cell: _Cell
) -> Iterator[tuple[tuple[slice, ...], np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per axis segment: its box, and per voxel the distance r to the axis, arc length s, angle
    theta (in a parallel-transported frame) and whether this segment is the nearest one.

    Each voxel within ``radius`` of the axis is owned by exactly one segment (ties go to the later
    one), so a tube is painted once everywhere; the tube ends are cut flat.
    """
    starts, ends = axis[:-1], axis[1:]
    vectors = ends - starts
    lengths = np.linalg.norm(vectors, axis=1)
    tangents = vectors / lengths[:, None]
    normals = np.empty_like(tangents)
    reference = (
        np.array([1.0, 0.0, 0.0]) if abs(tangents[0, 0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    )
    normal = reference - (reference @ tangents[0]) * tangents[0]
    for k, tangent in enumerate(tangents):
        normal = normal - (normal @ tangent) * tangent
        normal /= np.linalg.norm(normal)
        normals[k] = normal
    binormals = np.cross(tangents, normals)
    arc = np.concatenate([[0.0], np.cumsum(lengths)])
    count = len(tangents)

    def fields(j: int, zz, yy, xx):
        vz, vy, vx = zz - starts[j, 0], yy - starts[j, 1], xx - starts[j, 2]
        along = vz * tangents[j, 0] + vy * tangents[j, 1] + vx * tangents[j, 2]
        t = np.clip(along, 0, lengths[j])
        wz, wy, wx = vz - t * tangents[j, 0], vy - t * tangents[j, 1], vx - t * tangents[j, 2]
        return along, t, (wz, wy, wx), wz * wz + wy * wy + wx * wx

    for k in range(count):
        box = cell.box(
            np.minimum(starts[k], ends[k]) - radius - 1, np.maximum(starts[k], ends[k]) + radius + 1
        )
        if box is None:
            continue
        zz, yy, xx = cell.grid(box)
        along, t, (wz, wy, wx), d2 = fields(k, zz, yy, xx)
        owned = d2 <= radius * radius
        if k > 0:
            owned &= d2 <= fields(k - 1, zz, yy, xx)[3]
        else:
            owned &= along >= 0
        if k < count - 1:
            owned &= d2 < fields(k + 1, zz, yy, xx)[3]
        else:
            owned &= along <= lengths[k]
        if not owned.any():
            continue
        r = np.sqrt(d2)
        theta = np.arctan2(
            wz * binormals[k, 0] + wy * binormals[k, 1] + wx * binormals[k, 2],
            wz * normals[k, 0] + wy * normals[k, 1] + wx * normals[k, 2],
        )
        yield box, r, (arc[k] + t).astype(np.float32), theta.astype(np.float32), owned


def _bundle(centre_line: np.ndarray, n_filaments: int, spacing: float) -> list[np.ndarray]:
    """``n_filaments`` parallel copies of a curve on a hexagonal lattice around it."""
    if n_filaments == 1:
        return [centre_line]
    lattice = [(0.0, 0.0)] + [
        (spacing * np.cos(a), spacing * np.sin(a)) for a in np.arange(6) * np.pi / 3 + np.pi / 6
    ]
    tangents = np.gradient(centre_line, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    normals = np.empty_like(tangents)
    normal = np.array([1.0, 0.0, 0.0])  # prefer the bundle's 2D lattice to face the beam
    for k, tangent in enumerate(tangents):
        normal = normal - (normal @ tangent) * tangent
        normal /= np.linalg.norm(normal)
        normals[k] = normal
    binormals = np.cross(tangents, normals)
    return [centre_line + a * normals + b * binormals for a, b in lattice[:n_filaments]]


def _densify(axis: np.ndarray, spacing: float) -> np.ndarray:
    """Points along a polyline no more than ``spacing`` apart."""
    pieces = [axis[:1]]
    for a, b in itertools.pairwise(axis):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / spacing)))
        pieces.append(a + (b - a) * (np.arange(1, n + 1)[:, None] / n))
    return np.concatenate(pieces)


def _inside_runs(axis: np.ndarray, shape: tuple[int, int, int]) -> list[np.ndarray]:
    """The parts of a polyline inside the volume, cut exactly at its faces."""
    high = np.array(shape, dtype=float) - 1
    runs: list[np.ndarray] = []
    current: list[np.ndarray] = []
    for a, b in itertools.pairwise(axis):
        t0, t1 = _clip_segment(a, b, high)
        if t0 is None:
            if current:
                runs.append(np.array(current))
                current = []
            continue
        start, stop = a + t0 * (b - a), a + t1 * (b - a)
        if not current:
            current = [start]
        current.append(stop)
        if t1 < 1.0:
            runs.append(np.array(current))
            current = []
    if current:
        runs.append(np.array(current))
    return [run for run in runs if len(run) >= 2 and np.linalg.norm(run[-1] - run[0]) > 1e-6]


def _clip_segment(a: np.ndarray, b: np.ndarray, high: np.ndarray) -> tuple[float | None, float]:
    """Liang-Barsky: the parameter range of segment a->b inside the box [0, high]."""
    t0, t1 = 0.0, 1.0
    for axis in range(3):
        delta = b[axis] - a[axis]
        for p, q in ((-delta, a[axis]), (delta, high[axis] - a[axis])):
            if abs(p) < 1e-12:
                if q < 0:
                    return None, 0.0
                continue
            t = q / p
            if p < 0:
                t0 = max(t0, t)
            else:
                t1 = min(t1, t)
    return (t0, t1) if t0 <= t1 else (None, 0.0)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random proper rotation matrix (zyx)."""
    w, x, y, z = rng.standard_normal(4) / 1.0
    norm = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _frame_rotation(normal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A rotation taking the template's z axis to ``normal``, spun randomly about it."""
    spin = rng.standard_normal(3)
    spin -= (spin @ normal) * normal
    spin /= np.linalg.norm(spin)
    third = np.cross(normal, spin)
    rotation = np.stack([normal, spin, third], axis=1)
    if np.linalg.det(rotation) < 0:
        rotation[:, 2] *= -1
    return rotation


def _deformation(rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A random symmetric, traceless 3x3 matrix: gentle ellipsoidal departure from a sphere."""
    a = rng.normal(0, amplitude, (3, 3))
    a = (a + a.T) / 2
    return a - np.eye(3) * np.trace(a) / 3


def _smooth_noise(shape: tuple[int, ...], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise varying on ``shape / cells`` scale (coarse grid, cubic zoom)."""
    coarse = rng.standard_normal((cells,) * len(shape))
    fine = ndimage.zoom(
        coarse, [n / cells for n in shape], order=3, grid_mode=True, mode="grid-wrap"
    )
    return ((fine - fine.mean()) / (fine.std() + 1e-9)).astype(np.float32)


# ----------------------------------------------------------------------------- writing


def write_tomogram_phantom(
    phantom: TomogramPhantom, folder: str | os.PathLike, *, overwrite: bool = False
) -> dict[str, Path]:
    """Write a phantom as files that the tutorials, the CLI and other tools read.

    Writes ``tomogram.mrc`` (float32) and ``labels.mrc`` (uint8), both with the voxel size;
    ``labels.json`` (feature name -> label id); ``particles.csv`` (columns feature, x, y, z in
    voxels); ``filaments.json`` (feature -> list of polylines ``[[x, y, z], ...]`` in voxels).
    Every file is written atomically, and nothing is written if any of them exists and
    ``overwrite`` is False.

    Returns
    -------
    dict
        "tomogram", "labels", "label_ids", "particles", "filaments" -> path.
    """
    folder = Path(folder)
    paths = {
        key: check_output_path(folder / name, overwrite) for key, name in PHANTOM_FILES.items()
    }
    folder.mkdir(parents=True, exist_ok=True)
    write_volume(
        paths["tomogram"],
        np.asarray(phantom.tomogram, dtype=np.float32),
        voxel_size=phantom.voxel_size,
        overwrite=overwrite,
    )
    write_volume(
        paths["labels"],
        np.asarray(phantom.labels, dtype=np.uint8),
        voxel_size=phantom.voxel_size,
        overwrite=overwrite,
    )
    write_json_atomic(paths["label_ids"], dict(phantom.label_ids), overwrite=overwrite)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["feature", "x", "y", "z"])
    for feature, points in phantom.particles.items():
        for z, y, x in np.asarray(points).reshape(-1, 3):
            writer.writerow([feature, f"{x:.2f}", f"{y:.2f}", f"{z:.2f}"])
    write_text_atomic(paths["particles"], buffer.getvalue(), overwrite=overwrite)
    filaments = {
        feature: [
            [[round(float(x), 2), round(float(y), 2), round(float(z), 2)] for z, y, x in line]
            for line in lines
        ]
        for feature, lines in phantom.filaments.items()
    }
    write_json_atomic(paths["filaments"], filaments, overwrite=overwrite)
    return paths
