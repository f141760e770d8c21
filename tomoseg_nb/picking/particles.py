"""Particles from one feature's probability map: blobs above a threshold, one pick per blob.

The default follows EMAN2's ``e2spt_extractfromseg``: zero the map below the threshold, find 3D
6-connected components, take each component's peak and its mass (sum of probabilities), keep
components heavier than ``min_mass`` (20), drop picks closer than ``min_distance_px`` to a pick
already kept, drop picks near the x/y edges, and score each pick by its mass over the largest
mass. Two departures, both deliberate: candidates are visited from the heaviest down (EMAN2 visits
them in raster order, so which of two close blobs survives depended on where it lay), and every
component is considered (EMAN2 skips the last label).

Options beyond EMAN2: the probability-weighted centroid instead of the peak (steadier on noisy
maps), size limits in voxels or cubic Angstrom, and a distance-transform mode that splits touching
particles (Ais): local maxima of the distance to the blob surface seed a watershed, and each basin
is one candidate, placed at its maximum.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..coords import Picks
from ..errors import BadInputError, EmptyResultWarning
from ..maps import decode_probabilities
from .frame import SourceFrame, edge_margins, inside_edges

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11

MODES = ("peak", "centroid", "distance")
DROP_REASONS = ("", "mass", "size", "distance", "edge")

MIN_MASS = 20.0
"""EMAN2's default: a component must sum to this much probability to be a particle."""


class ParticleRules(TypedDict, total=False):
    """The keyword rules of `find_particle_candidates` that `pick_particles` passes on."""

    min_mass: float
    min_size_voxels: float | None
    max_size_voxels: float | None
    min_size_angstrom3: float | None
    max_size_angstrom3: float | None
    edge_px: float | Sequence[float]
    min_radius_px: float | None


class DiameterRules(TypedDict):
    """What `diameter_rules` returns: keywords for `pick_particles`."""

    min_distance_px: float
    min_size_angstrom3: float


@dataclass
class ParticleCandidates:
    """Every blob found in a map, its measurements, and whether it became a pick (and if not, why).

    Coordinates are voxels of the probability map. Kept for diagnostics: the size and mass
    histograms in `tomoseg_nb.plots.picks` show where ``min_mass`` and the size limits cut.

    Attributes
    ----------
    coordinates : ndarray
        ``(N, 3)`` z, y, x of each candidate's pick position.
    mass : ndarray
        ``(N,)`` sum of probabilities over the candidate's voxels.
    size_voxels : ndarray
        ``(N,)`` number of voxels.
    peak : ndarray
        ``(N,)`` highest probability.
    score : ndarray
        ``(N,)`` mass over the largest mass among candidates passing the mass, size and distance
        rules (EMAN2's score); 0 for candidates dropped by those rules.
    dropped : ndarray of str
        ``(N,)`` why a candidate is not a pick: "" (kept), "mass", "size", "distance" or "edge".
    threshold : float
        The threshold the candidates were found at.
    map_max : float
        The map's highest probability, to tell "nothing reached the threshold" from "everything
        was filtered out".
    """

    coordinates: np.ndarray
    mass: np.ndarray
    size_voxels: np.ndarray
    peak: np.ndarray
    score: np.ndarray
    dropped: np.ndarray
    threshold: float = 0.0
    map_max: float = 0.0

    @property
    def kept(self) -> np.ndarray:
        """Boolean mask of the candidates that are picks."""
        return self.dropped == ""

    def __len__(self) -> int:
        return len(self.mass)

    def to_picks(self, frame: SourceFrame, *, tomogram: str = "", feature: str = "") -> Picks:
        """The kept candidates, heaviest first, as `Picks` in the source frame of ``frame``.

        Warns with `EmptyResultWarning`, saying why, when no candidate was kept.
        """
        kept = np.flatnonzero(self.kept)
        kept = kept[np.argsort(-self.mass[kept], kind="stable")]
        if len(kept) == 0:
            warnings.warn(self.why_empty(), EmptyResultWarning, stacklevel=3)
        return frame.picks(
            self.coordinates[kept], self.score[kept], tomogram=tomogram, feature=feature
        )

    def why_empty(self) -> str:
        """A sentence saying why there are no picks and which setting to change."""
        if self.map_max <= 0:
            return "the probability map is empty (all zeros): check that the right map was given"
        if len(self) == 0:
            return (
                f"no voxel reaches the threshold {self.threshold:g} (the map's maximum is "
                f"{self.map_max:.3g}); lower the threshold"
            )
        reasons, counts = np.unique(self.dropped, return_counts=True)
        listing = ", ".join(f"{n} by {r}" for r, n in zip(reasons, counts, strict=True) if r)
        return (
            f"all {len(self)} candidates were dropped ({listing}); relax those limits "
            "(min_mass, size limits, edge) or lower the threshold"
        )


def find_particle_candidates(
    probability_map: np.ndarray,
    *,
    threshold: float,
    min_distance_px: float,
    mode: str = "peak",
    min_mass: float = MIN_MASS,
    min_size_voxels: float | None = None,
    max_size_voxels: float | None = None,
    min_size_angstrom3: float | None = None,
    max_size_angstrom3: float | None = None,
    voxel_size: float = 1.0,
    edge_px: float | Sequence[float] = 0.0,
    min_radius_px: float | None = None,
) -> ParticleCandidates:
    """Find and judge every particle candidate in a probability map.

    Parameters
    ----------
    probability_map : ndarray
        ``(z, y, x)`` probabilities of one feature (as stored: ``maps.decode_probabilities`` reads them).
    threshold : float
        Voxels below it are background (EMAN2: ``img[img < thresh] = 0``).
    min_distance_px : float
        Picks closer than this (map voxels) to a heavier kept pick are dropped; EMAN2 uses a
        quarter of the box size, about half a particle diameter is a good start.
    mode : {"peak", "centroid", "distance"}
        "peak": one candidate per connected component, at its most probable voxel (EMAN2; the
        centre of the voxels sharing the maximum where a saturated map has a plateau).
        "centroid": the same components, at their probability-weighted centre.
        "distance": components split into touching particles by a watershed seeded at maxima of
        the distance to the blob surface, each placed at its maximum (Ais).
    min_mass : float
        Candidates whose mass (sum of probabilities, map voxels) is not above it are dropped.
    min_size_voxels, max_size_voxels : float, optional
        Limits on a candidate's voxel count.
    min_size_angstrom3, max_size_angstrom3 : float, optional
        The same limits as volumes in cubic Angstrom (give either these or the voxel ones).
    voxel_size : float
        Angstrom per voxel of the map, for the Angstrom limits.
    edge_px : float or sequence of float
        Candidates closer than this to a face are dropped: a number applies to y and x (EMAN2),
        three numbers to z, y, x.
    min_radius_px : float, optional
        "distance" mode only: ignore distance maxima shallower than this (blob radius in voxels);
        default a quarter of ``min_distance_px``.

    Returns
    -------
    ParticleCandidates
    """
    values = _probability_volume(probability_map)
    _check_number("threshold", threshold, minimum=0.0)
    _check_number("minimum distance", min_distance_px, minimum=0.0)
    _check_number("minimum mass", min_mass, minimum=0.0)
    if mode not in MODES:
        raise BadInputError(f"unknown picking mode {mode!r}; choose one of {', '.join(MODES)}")
    size_range = _size_range(
        min_size_voxels, max_size_voxels, min_size_angstrom3, max_size_angstrom3, voxel_size
    )
    margins = edge_margins(edge_px, values.ndim)

    mask = values >= threshold
    components, count = ndimage.label(mask)  # 6-connected in 3D, as EMAN2
    blobs = _measure(components, count, values)
    if mode == "distance":
        # Split only blobs heavy enough to hold a particle; the rest stay whole (and fail on mass).
        heavy = np.concatenate([[False], blobs.mass > min_mass])
        radius = min_distance_px / 4 if min_radius_px is None else min_radius_px
        basins, seeds = _distance_regions(heavy[components], min_distance_px, radius)
        split = _measure(basins, len(seeds), values)
        light = ~heavy[1:]
        size = np.concatenate([split.size, blobs.size[light]])
        mass = np.concatenate([split.mass, blobs.mass[light]])
        peak = np.concatenate([split.peak, blobs.peak[light]])
        positions = np.concatenate([seeds, blobs.peak_position[light]])
    else:
        size, mass, peak = blobs.size, blobs.mass, blobs.peak
        positions = blobs.peak_position if mode == "peak" else blobs.centroid
    n = len(mass)

    dropped = np.full(n, "", dtype=object)
    dropped[~(mass > min_mass)] = "mass"
    too_small = size < size_range[0]
    too_big = size > size_range[1]
    dropped[(dropped == "") & (too_small | too_big)] = "size"
    dropped[_crowded(positions, mass, dropped == "", min_distance_px)] = "distance"
    passing = dropped == ""
    score = np.zeros(n)
    if passing.any():
        score[passing] = mass[passing] / mass[passing].max()
    dropped[passing & ~inside_edges(positions, values.shape, margins)] = "edge"
    return ParticleCandidates(
        coordinates=positions,
        mass=mass,
        size_voxels=size,
        peak=peak,
        score=score,
        dropped=dropped.astype(str),
        threshold=float(threshold),
        map_max=float(values.max()),
    )


def diameter_rules(diameter_angstrom: float, voxel_size: float) -> DiameterRules:
    """Picking rules a particle's diameter implies, for ``pick_particles(**rules)``.

    Picks at least a radius apart, and blobs of at least a quarter of the particle's volume (a
    smaller blob is noise or a fragment, not a particle seen through the missing wedge).

    >>> diameter_rules(250.0, 10.0)["min_distance_px"]
    12.5
    """
    _check_number("particle diameter", diameter_angstrom, 0.0)
    radius = diameter_angstrom / 2
    return {
        "min_distance_px": radius / voxel_size,
        "min_size_angstrom3": 0.25 * 4 / 3 * math.pi * radius**3,
    }


def pick_particles(
    probability_map: np.ndarray,
    *,
    threshold: float,
    min_distance_px: float,
    mode: str = "peak",
    voxel_size: float = 1.0,
    binning: float = 1.0,
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    source_shape: tuple[int, ...] | None = None,
    tomogram: str = "",
    feature: str = "",
    **rules: Unpack[ParticleRules],
) -> Picks:
    """Pick particles from a probability map, in the source tomogram's frame.

    Parameters
    ----------
    probability_map : ndarray
        ``(z, y, x)`` probabilities of one feature.
    threshold, min_distance_px, mode
        See `find_particle_candidates`; distances are in map voxels.
    voxel_size : float
        Angstrom per voxel of the map.
    binning : float
        Source-tomogram voxels per map voxel, when the map was made from a binned tomogram.
    origin : tuple of float
        MRC origin ``(x, y, z)`` in Angstrom of the source tomogram (copied to the picks).
    source_shape : tuple of int, optional
        Shape of the source tomogram; ``map shape * binning`` when None.
    tomogram, feature : str
        Names carried by the picks (RELION ``rlnTomoName``, copick object name).
    **rules
        ``min_mass``, size limits, ``edge_px``, ``min_radius_px``: see `find_particle_candidates`.

    Returns
    -------
    Picks
        Source-voxel coordinates, heaviest first, scored by relative mass.

    Warns
    -----
    EmptyResultWarning
        Nothing was picked; the message says why (empty map, threshold too high, limits).

    Examples
    --------
    >>> probability = np.zeros((20, 20, 20))
    >>> probability[5:8, 5:8, 5:8] = 0.9
    >>> probability[12:15, 12:15, 12:15] = 0.9
    >>> probability[6, 6, 6] = probability[13, 13, 13] = 1.0
    >>> pick_particles(probability, threshold=0.5, min_distance_px=4).coordinates
    array([[ 6.,  6.,  6.],
           [13., 13., 13.]])
    """
    frame = SourceFrame(np.shape(probability_map), voxel_size, binning, origin, source_shape)
    candidates = find_particle_candidates(
        probability_map,
        threshold=threshold,
        min_distance_px=min_distance_px,
        mode=mode,
        voxel_size=voxel_size,
        **rules,
    )
    return candidates.to_picks(frame, tomogram=tomogram, feature=feature)


def _probability_volume(probability_map: np.ndarray) -> np.ndarray:
    values = decode_probabilities(probability_map)
    if values.ndim != 3:
        raise BadInputError(f"a probability map must be 3D (z, y, x), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise BadInputError("the probability map has NaN/Inf voxels; recompute or clean it first")
    return values


def _check_number(what: str, value: float, minimum: float | None = None) -> None:
    if not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
        raise BadInputError(f"{what} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise BadInputError(f"{what} must be >= {minimum:g}, got {value:g}")


def _size_range(
    min_voxels: float | None,
    max_voxels: float | None,
    min_angstrom3: float | None,
    max_angstrom3: float | None,
    voxel_size: float,
) -> tuple[float, float]:
    if (min_voxels is not None and min_angstrom3 is not None) or (
        max_voxels is not None and max_angstrom3 is not None
    ):
        raise BadInputError("give size limits in voxels or in cubic Angstrom, not both")
    if not voxel_size > 0:
        raise BadInputError(f"voxel size must be positive, got {voxel_size}")
    cube = float(voxel_size) ** 3
    low = min_voxels if min_voxels is not None else (min_angstrom3 / cube if min_angstrom3 else 0.0)
    high = (
        max_voxels
        if max_voxels is not None
        else (max_angstrom3 / cube if max_angstrom3 else math.inf)
    )
    if low < 0 or high < low:
        raise BadInputError(
            f"size limits must satisfy 0 <= minimum <= maximum, got {low:g}..{high:g} voxels"
        )
    return float(low), float(high)


def _crowded(
    positions: np.ndarray, mass: np.ndarray, eligible: np.ndarray, distance: float
) -> np.ndarray:
    """Eligible candidates closer than ``distance`` to a heavier eligible one that is kept."""
    crowded = np.zeros(len(mass), dtype=bool)
    order = np.flatnonzero(eligible)
    if distance <= 0 or len(order) < 2:
        return crowded
    order = order[np.argsort(-mass[order], kind="stable")]
    tree = cKDTree(positions[order])
    suppressed = np.zeros(len(order), dtype=bool)
    for rank in range(len(order)):
        if suppressed[rank]:
            continue
        neighbours = np.asarray(
            tree.query_ball_point(positions[order[rank]], distance), dtype=np.int64
        )
        neighbours = neighbours[neighbours > rank]
        close = (
            np.linalg.norm(positions[order[neighbours]] - positions[order[rank]], axis=1) < distance
        )
        suppressed[neighbours[close]] = True
    crowded[order[suppressed]] = True
    return crowded


@dataclass
class _Regions:
    """Size, mass, peak value, peak position and weighted centroid of labelled regions 1..n."""

    size: np.ndarray
    mass: np.ndarray
    peak: np.ndarray
    peak_position: np.ndarray
    centroid: np.ndarray


def _measure(regions: np.ndarray, count: int, values: np.ndarray) -> _Regions:
    """Measure regions from their voxels only (scipy's per-label maximum sorts the whole volume).

    The peak position is the centre of the voxels sharing the region's highest value: a single
    voxel usually, but saturated maps (probabilities clipped at 1, or at the top of an 8-bit map) have
    plateaus, whose first voxel would sit at the particle's edge.
    """
    flat = regions.ravel()
    inside = np.flatnonzero(flat)
    label = flat[inside].astype(np.int64) - 1
    weight = values.ravel()[inside].astype(np.float64)
    coordinates = np.unravel_index(inside, regions.shape)
    size = np.bincount(label, minlength=count).astype(np.float64)
    mass = np.bincount(label, weights=weight, minlength=count)
    peak = np.full(count, -np.inf)
    np.maximum.at(peak, label, weight)
    top = weight >= peak[label] - 1e-6 * np.maximum(np.abs(peak[label]), 1.0)
    plateau = np.maximum(np.bincount(label[top], minlength=count), 1)[:, None]

    def centre(mask: np.ndarray, weights: np.ndarray, total: np.ndarray) -> np.ndarray:
        sums = [
            np.bincount(label[mask], weights=weights[mask] * c[mask], minlength=count)
            for c in coordinates
        ]
        return np.column_stack(sums).reshape(count, regions.ndim) / total

    peak_position = centre(top, np.ones_like(weight), plateau)
    # A plateau that is not convex may have its centre outside the region: take its first voxel.
    rounded = np.clip(np.round(peak_position).astype(np.int64), 0, np.asarray(regions.shape) - 1)
    outside = regions[tuple(rounded.T)] != np.arange(1, count + 1)
    if outside.any():
        first = np.full(count, np.iinfo(np.int64).max)
        np.minimum.at(first, label[top], inside[top])
        peak_position[outside] = np.column_stack(np.unravel_index(first[outside], regions.shape))
    centroid = centre(np.ones_like(top), weight, np.maximum(mass, 1e-12)[:, None])
    return _Regions(size, mass, np.where(np.isfinite(peak), peak, 0.0), peak_position, centroid)


def _distance_regions(
    mask: np.ndarray, min_distance_px: float, min_radius_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Watershed basins of the inverted distance map, one per distance maximum, and the maxima."""
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    if not mask.any():
        return np.zeros(mask.shape, dtype=np.int32), np.zeros((0, mask.ndim))
    components, count = ndimage.label(mask)
    distance = ndimage.distance_transform_edt(mask)
    peaks = peak_local_max(
        distance,
        min_distance=max(1, int(min_distance_px)),
        threshold_abs=max(min_radius_px, 1e-6),
        labels=components,
        exclude_border=False,
    )
    # Every component keeps at least its deepest point, so no blob is lost for want of a maximum.
    deepest = np.round(_measure(components, count, distance).peak_position).astype(np.int64)
    seeded = np.zeros(count + 1, dtype=bool)
    seeded[components[tuple(peaks.T)]] = True
    deep = (distance[tuple(deepest.T)] >= min_radius_px) & mask[tuple(deepest.T)]
    missing = deepest[~seeded[1:] & deep]
    peaks = np.concatenate([peaks, missing]) if len(missing) else peaks
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    regions = watershed(-distance, markers, mask=mask)
    return regions.astype(np.int32), peaks.astype(np.float64)
