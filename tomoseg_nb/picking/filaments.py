"""Filaments from one feature's probability map: trace each axis, sample points along it.

For microtubules, actin and other filaments, subtomogram averaging wants points every
``spacing`` Angstrom along the axis with the axis direction as orientation, not one pick per blob.
The map is thresholded, hollow tubes are filled (a microtubule's wall segments as a ring in
cross-section), the mask is thinned to a one-voxel skeleton, side branches shorter than the
pruning length are removed, branches meeting at a junction are joined where they continue
straight (two crossing filaments stay two filaments), and each axis is smoothed by a spline and
extended to the filament's end. Thinning only approximates the axis (it drifts into a tube's
wall where the lumen stayed open, and into the remaining wall where a face cuts the tube), so
every couple of voxels the axis is moved to the centre of a circle fitted to the segmented walls
in the plane across it, and dropped where less than half a circle is in view (the axis has left
the volume). Points are placed every ``spacing`` along the result, with RELION Euler angles that
put a reference's Z axis along the local tangent (helical convention).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

import numpy as np
from scipy import ndimage, sparse
from scipy.interpolate import splev, splprep
from scipy.spatial import cKDTree

from ..coords import Picks
from ..errors import BadInputError, EmptyResultWarning
from .frame import SourceFrame, edge_margins, euler_from_direction, inside_edges
from .particles import _check_number, _probability_volume

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11

_OFFSETS = np.array(
    [(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dz or dy or dx]
)


class TraceOptions(TypedDict, total=False):
    """The keyword options of `trace_filaments` that `pick_filaments` passes on."""

    radius_angstrom: float | None
    fill_lumen: bool
    closing_radius_angstrom: float | None
    prune_length_angstrom: float | None
    min_length_angstrom: float | None
    smoothing_angstrom: float | None
    max_bend_degrees: float


_SHORTEST_PIECE_RADII = 3.0
"""Shortest axis piece kept, in filament radii. Circles of up to 1.5 radii are accepted across an
axis, so a vesicle or blob of up to that radius (a sphere: round in every cross-section) can
pass for a filament along its whole diameter, 3 radii; a filament must be longer to be told apart."""


@dataclass
class Filament:
    """One traced filament axis in map voxels.

    Attributes
    ----------
    axis : ndarray
        ``(M, 3)`` z, y, x points of the smoothed axis, about a voxel apart, end to end.
    """

    axis: np.ndarray

    @property
    def length_px(self) -> float:
        """Axis length in map voxels."""
        return _length(self.axis)

    def sample(self, spacing_px: float) -> tuple[np.ndarray, np.ndarray]:
        """Points every ``spacing_px`` along the axis, centred on it, and unit tangents (z, y, x)."""
        steps = np.linalg.norm(np.diff(self.axis, axis=0), axis=1)
        arc = np.concatenate([[0.0], np.cumsum(steps)])

        def at(positions: np.ndarray) -> np.ndarray:
            return np.column_stack([np.interp(positions, arc, self.axis[:, d]) for d in range(3)])

        n = int(arc[-1] // spacing_px) + 1
        targets = (arc[-1] - (n - 1) * spacing_px) / 2 + spacing_px * np.arange(n)
        # Tangent: the axis direction over one spacing, which the spline has already smoothed.
        half = max(min(spacing_px, arc[-1]) / 2, 1e-6)
        tangents = at(targets + half) - at(targets - half)
        norms = np.linalg.norm(tangents, axis=1, keepdims=True)
        tangents = np.where(norms > 0, tangents / np.where(norms > 0, norms, 1.0), [1.0, 0.0, 0.0])
        return at(targets), tangents


def trace_filaments(
    probability_map: np.ndarray,
    *,
    threshold: float,
    voxel_size: float = 1.0,
    radius_angstrom: float | None = None,
    fill_lumen: bool = True,
    closing_radius_angstrom: float | None = None,
    prune_length_angstrom: float | None = None,
    min_length_angstrom: float | None = None,
    smoothing_angstrom: float | None = None,
    max_bend_degrees: float = 60.0,
) -> list[Filament]:
    """Trace the axes of the filaments in a probability map.

    Parameters
    ----------
    probability_map : ndarray
        ``(z, y, x)`` probabilities of one filament feature (as stored: ``maps.decode_probabilities`` reads them).
    threshold : float
        Voxels at or above it belong to filaments.
    voxel_size : float
        Angstrom per voxel of the map.
    radius_angstrom : float, optional
        Outer radius of the filament (microtubule 125 A, actin 35 A). Default: measured on the
        mask as the distance from the skeleton to the surface along the long filaments, right for
        solid filaments and closed tubes. Give it when a network marks only parts of a tube's wall
        (the missing wedge often hides the walls facing z): the walls are then bridged by a
        closing of 0.75 times the radius before tracing, and circles of this radius centre the axis.
    fill_lumen : bool
        Fill cavities enclosed in any z, y or x slice, so a hollow tube (a microtubule segmented as
        its wall) is thinned to its axis rather than to a ring. Nothing is bridged between
        filaments, so it is safe for solid filaments too.
    closing_radius_angstrom : float, optional
        Morphological closing radius that mends broken walls before filling; default 0.75 times
        ``radius_angstrom`` when that is given, else none. Closing also joins filaments closer than
        twice the radius.
    prune_length_angstrom : float, optional
        Side branches shorter than this are removed; default three times the filament radius
        (a tube's skeleton sprouts spurs up to about one radius long).
    min_length_angstrom : float, optional
        Filaments shorter than this are dropped; default twice the pruning length.
    smoothing_angstrom : float, optional
        Root-mean-square distance the smoothing spline may stray from the skeleton; default one
        voxel (the skeleton's own jitter).
    max_bend_degrees : float
        Largest change of direction at a junction for two branches to count as one filament.

    Returns
    -------
    list of Filament
        Longest first. Each axis is centred on the filament's cross-section (a circle fitted to
        the segmented walls around it, which also finds the axis of a tube cut open by a face of
        the volume) and stops where the axis leaves the volume. Without circles to fit anywhere
        (filaments a few voxels thin) the smoothed skeleton is the axis. Without
        ``radius_angstrom``, a piece with a flat cross-section running inside the segmented walls
        (one wall of a tube whose axis the map misses) is dropped when round pieces are in view.
    """
    values = _probability_volume(probability_map)
    _check_number("threshold", threshold, minimum=0.0)
    _check_number("voxel size", voxel_size, minimum=1e-9)
    if radius_angstrom is not None:
        _check_number("filament radius", radius_angstrom, minimum=1e-9)
    if closing_radius_angstrom is None:
        closing_radius_angstrom = 0.75 * radius_angstrom if radius_angstrom else 0.0
    _check_number("closing radius", closing_radius_angstrom, minimum=0.0)
    walls = values >= threshold
    if closing_radius_angstrom > 0:
        walls = _closing(walls, closing_radius_angstrom / voxel_size)
    mask = _fill_lumens(walls) if fill_lumen else walls
    if not mask.any():
        return []
    from skimage.morphology import skeletonize

    skeleton = skeletonize(mask).astype(bool)
    if not skeleton.any():
        return []
    distance = ndimage.distance_transform_edt(mask)
    if radius_angstrom is None:
        radius_px = _typical_radius(distance[skeleton])
    else:
        radius_px = radius_angstrom / voxel_size
    prune_px = (
        3 * radius_px if prune_length_angstrom is None else prune_length_angstrom / voxel_size
    )
    min_length_px = (
        2 * prune_px if min_length_angstrom is None else min_length_angstrom / voxel_size
    )
    smoothing_px = 1.0 if smoothing_angstrom is None else smoothing_angstrom / voxel_size

    graph = _SkeletonGraph(skeleton)
    graph.prune(prune_px)
    chains = [
        c
        for c in graph.chains(max_bend_degrees, look_px=max(2.0, radius_px))
        if _length(c[0]) >= min_length_px
    ]
    if radius_angstrom is None and chains:
        # The first estimate is pulled down by short spurs; the long chains are the filaments.
        # Where a tube's lumen stayed open its skeleton runs in the wall, so take the upper range.
        voxels = np.concatenate([np.round(c[0]).astype(int) for c in chains])
        radius_px = max(1.0, float(np.percentile(distance[tuple(voxels.T)], 90)))
    # Centre on the walls as segmented: filling may close only part of a lumen (near a face),
    # and the boundary of that fill is no surface of the filament.
    surface = _Surface(walls, outer_radius=None if radius_angstrom is None else radius_px)
    axes = [_extend(_smooth(c, smoothing_px), distance, free0, free1) for c, free0, free1 in chains]
    centred = [
        run
        for axis in axes
        for piece in surface.centre(axis, radius_px=radius_px)
        for run in _split_at_reversals(piece, window_px=radius_px)
    ]
    if centred:
        # Where cross-sections can be measured, an axis with none (a wall or a tube seen from
        # outside the volume) is not a filament in view. Thin filaments fit no circle anywhere:
        # then the skeleton is the axis.
        axes = centred
    if radius_angstrom is None and axes:
        flat = [surface.flat([axis], radius_px) for axis in axes]
        # A flat cross-section around an axis that runs inside the segmented walls is one wall
        # of a tube whose axis the map does not show, traced along that wall: not a filament.
        # (A tube seen only from the side is flat too, but its centred axis runs in the lumen.)
        in_wall = [
            is_flat and _inside(walls, axis) for axis, is_flat in zip(axes, flat, strict=True)
        ]
        if not all(in_wall):
            axes = [axis for axis, wall in zip(axes, in_wall, strict=True) if not wall]
            flat = [f for f, wall in zip(flat, in_wall, strict=True) if not wall]
        if all(flat):
            warnings.warn(
                "the filaments' cross-sections are flat, not round: these may be the side walls "
                "of tubes whose other walls the map misses (the missing wedge); if so, pass the "
                "tube's outer radius (radius_angstrom, --filament-radius) to trace their axes",
                UserWarning,
                stacklevel=2,
            )
    filaments = [Filament(_smooth(axis, smoothing_px)) for axis in axes]
    # Chains were held to the minimum length; what centring cut out of them (at a crossing, where
    # the tube leaves the volume) need only be longer than a vesicle could fake (see below).
    shortest = _SHORTEST_PIECE_RADII * radius_px
    return _without_overlaps([f for f in filaments if f.length_px >= shortest], radius_px)


def _without_overlaps(filaments: list[Filament], radius_px: float) -> list[Filament]:
    """Longest first; parts of an axis within ``radius_px`` of a longer one are the same tube, cut.

    Two skeleton branches can trace one tube (a tube opened by a face thins to two sheets), and
    centring puts both on its axis; particles must not be picked twice.
    """
    kept: list[Filament] = []
    for filament in sorted(filaments, key=lambda f: -f.length_px):
        free = np.ones(len(filament.axis), dtype=bool)
        if kept:
            taken = np.concatenate([f.axis for f in kept])
            directions = np.concatenate([_unit_tangents(f.axis) for f in kept])
            distance, nearest = cKDTree(taken).query(filament.axis)
            # Crossing filaments come close too, but run across each other: only parallel is the same.
            parallel = (
                np.abs(np.sum(_unit_tangents(filament.axis) * directions[nearest], axis=1)) > 0.9
            )
            free = (distance > radius_px) | ~parallel
        runs = np.split(np.arange(len(free)), np.flatnonzero(np.diff(free.astype(int))) + 1)
        for run in runs:
            piece = Filament(filament.axis[run])
            if free[run[0]] and piece.length_px >= _SHORTEST_PIECE_RADII * radius_px:
                kept.append(piece)
    return sorted(kept, key=lambda f: -f.length_px)


def pick_filaments(
    probability_map: np.ndarray,
    *,
    threshold: float,
    spacing_angstrom: float,
    voxel_size: float = 1.0,
    binning: float = 1.0,
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    source_shape: tuple[int, ...] | None = None,
    edge_px: float | Sequence[float] = 0.0,
    tomogram: str = "",
    feature: str = "",
    **trace_options: Unpack[TraceOptions],
) -> Picks:
    """Points every ``spacing_angstrom`` along each filament, oriented along it, in the source frame.

    Parameters
    ----------
    probability_map : ndarray
        ``(z, y, x)`` probabilities of one filament feature.
    threshold : float
        Voxels at or above it belong to filaments.
    spacing_angstrom : float
        Distance between consecutive points along a filament (e.g. 82 A, a tubulin dimer repeat).
    voxel_size, binning, origin, source_shape, tomogram, feature
        As in `tomoseg_nb.picking.pick_particles`.
    edge_px : float or sequence of float
        Points closer than this (map voxels) to a face are dropped; a number applies to y and x.
    **trace_options
        Passed to `trace_filaments` (filament radius, pruning, minimum length, smoothing...).

    Returns
    -------
    Picks
        Coordinates in source voxels, orientations as RELION (rot, tilt, psi) with the tangent as
        the reference Z axis (rot, the spin about the axis, is 0), scores the map's probability at
        each point. Points of one filament are consecutive, longest filament first.

    Warns
    -----
    EmptyResultWarning
        No filament was found; the message says why.
    """
    if not (isinstance(spacing_angstrom, (int, float)) and spacing_angstrom > 0):
        raise BadInputError(
            f"spacing must be a positive number of Angstrom, got {spacing_angstrom!r}"
        )
    values = _probability_volume(probability_map)
    frame = SourceFrame(values.shape, voxel_size, binning, origin, source_shape)
    margins = edge_margins(edge_px, values.ndim)
    filaments = trace_filaments(values, threshold=threshold, voxel_size=voxel_size, **trace_options)
    points, tangents = [np.zeros((0, 3))], [np.zeros((0, 3))]
    for filament in filaments:
        p, t = filament.sample(spacing_angstrom / voxel_size)
        keep = inside_edges(p, values.shape, margins)
        points.append(p[keep])
        tangents.append(t[keep])
    if not filaments:
        warnings.warn(_why_no_filaments(values, threshold), EmptyResultWarning, stacklevel=2)
    coordinates = np.concatenate(points)
    directions = np.concatenate(tangents)
    scores = (
        ndimage.map_coordinates(values, coordinates.T, order=1, mode="nearest")
        if len(coordinates)
        else np.zeros(0)
    )
    orientations = (
        euler_from_direction(directions[:, ::-1]) if len(directions) else np.zeros((0, 3))
    )
    return frame.picks(
        coordinates, scores, orientations=orientations, tomogram=tomogram, feature=feature
    )


class _Surface:
    """The mask's surface voxels (faces of the volume excluded), for centring axes on them."""

    def __init__(self, mask: np.ndarray, outer_radius: float | None = None) -> None:
        # border_value=1: the volume's faces are not surface, so a tube cut open by a face keeps
        # only its real (curved) surface, whose circle still has the tube's axis as centre.
        inner = ndimage.binary_erosion(mask, border_value=1)
        self.shape = mask.shape
        self.outer_radius = outer_radius
        self.points = np.argwhere(mask & ~inner).astype(np.float64)
        self.tree = cKDTree(self.points) if len(self.points) else None

    def centre(
        self, axis: np.ndarray, *, radius_px: float, step_px: float = 2.0
    ) -> list[np.ndarray]:
        """Axis points every ``step_px``, each moved to the centre of the surface circle around it.

        A circle is accepted when it has a radius between half and 1.5 times ``radius_px`` and the
        surface covers at least half of it. A tube whose axis lies outside the volume shows less
        than half its circle, and an end cap or a stray blob fits no such circle: those points are
        dropped, so an axis ends where the filament leaves the volume or ends. Gaps of up to
        three points (a crossing filament in the way) are bridged; the accepted runs of at least
        four points are returned, none when no circle fits anywhere.
        """
        if self.tree is None or len(axis) < 2:
            return []
        steps = np.linalg.norm(np.diff(axis, axis=0), axis=1)
        arc = np.concatenate([[0.0], np.cumsum(steps)])
        n = max(2, int(arc[-1] // step_px) + 1)
        targets = np.linspace(0.0, arc[-1], n)
        points = np.column_stack([np.interp(targets, arc, axis[:, d]) for d in range(3)])
        tangents = np.gradient(points, axis=0)
        fits = [self._fit(p, t, radius_px) for p, t in zip(points, tangents, strict=True)]
        fitted = np.array([f is not None for f in fits])
        bridged = fitted | (ndimage.binary_closing(np.pad(fitted, 2), np.ones(5, bool))[2:-2])
        last = np.asarray(self.shape, dtype=np.float64) - 1
        pieces = []
        for run in np.split(np.arange(n), np.flatnonzero(np.diff(bridged.astype(int))) + 1):
            good = [fits[i] for i in run if fits[i] is not None]
            if bridged[run[0]] and len(good) >= 4:
                pieces.append(np.clip(np.array(good), 0.0, last))
        return pieces

    def flat(self, axes: list[np.ndarray], radius_px: float, samples: int = 24) -> bool:
        """Whether the surface across the axes is mostly flat (elongation above 1.8), not round.

        A tube's side wall seen alone is a long thin arc in cross-section; a filament is round.
        """
        points = np.concatenate(axes)
        tangents = np.concatenate(
            [np.gradient(a, axis=0) if len(a) > 1 else np.zeros_like(a) for a in axes]
        )
        pick = np.linspace(0, len(points) - 1, min(samples, len(points))).round().astype(int)
        elongation = []
        for point, tangent in zip(points[pick], tangents[pick], strict=True):
            norm = np.linalg.norm(tangent)
            if norm == 0 or self.tree is None:
                continue
            near = self.points[self.tree.query_ball_point(point, 3 * radius_px)] - point
            slab = near[np.abs(near @ (tangent / norm)) <= 1.0]
            if len(slab) < 8:
                continue
            spread = np.sort(np.linalg.eigvalsh(np.cov(slab.T)))[::-1]
            # In the plane across the axis, two of the three variances are non-trivial.
            elongation.append(np.sqrt(spread[0] / max(spread[1], 1e-9)))
        return bool(elongation) and float(np.median(elongation)) > 1.8

    def _fit(self, point: np.ndarray, tangent: np.ndarray, radius_px: float) -> np.ndarray | None:
        """Centre of the surface circle in the plane normal to ``tangent`` near ``point``, or None.

        Refitted around each new centre (a point on one wall of a tube first sees only that wall's
        near side), up to four times.
        """
        norm = np.linalg.norm(tangent)
        if norm == 0:
            return None
        t = tangent / norm
        u = np.cross(t, np.eye(3)[int(np.argmin(np.abs(t)))])
        u /= np.linalg.norm(u)
        basis = np.stack([u, np.cross(t, u)])
        centre = point
        for _ in range(4):
            shift = self._circle(centre, t, basis, radius_px)
            if shift is None or np.linalg.norm(centre + shift @ basis - point) > 1.5 * radius_px:
                return None
            centre = centre + shift @ basis
            if np.hypot(*shift) < 0.25:
                break
        return centre

    def _circle(
        self, point: np.ndarray, t: np.ndarray, basis: np.ndarray, radius_px: float
    ) -> np.ndarray | None:
        search = 1.5 * radius_px
        assert self.tree is not None  # only reached through centre(), which needs surface points
        near = self.points[self.tree.query_ball_point(point, np.hypot(search, 1.0))]
        offsets = near - point
        plane = (offsets[np.abs(offsets @ t) <= 1.0]) @ basis.T
        plane = plane[np.hypot(plane[:, 0], plane[:, 1]) <= search]
        if len(plane) < 8:
            return None
        # Algebraic (Kasa) fit x^2 + y^2 + D x + E y + F = 0 as a start, then a geometric fit.
        design = np.column_stack([plane, np.ones(len(plane))])
        (d, e, f), *_ = np.linalg.lstsq(design, -(plane**2).sum(axis=1), rcond=None)
        centre = np.array([-d / 2, -e / 2])
        if not 0 < centre @ centre - f <= search**2:
            return None
        centre, outer = _concentric_circles(plane, centre, outer_radius=self.outer_radius)
        if outer is None or not 0.5 * radius_px <= outer[1] <= search or np.hypot(*centre) > search:
            return None
        rim = plane[outer[0]]
        if len(rim) < 3:
            return None
        angles = np.sort(np.arctan2(rim[:, 1] - centre[1], rim[:, 0] - centre[0]))
        widest_gap = np.max(np.diff(np.concatenate([angles, angles[:1] + 2 * np.pi])))
        if widest_gap > np.pi:  # under half a circle: the axis is not in view
            return None
        return centre


def _concentric_circles(
    points: np.ndarray,
    centre: np.ndarray,
    *,
    outer_radius: float | None = None,
    iterations: int = 6,
) -> tuple[np.ndarray, tuple[np.ndarray, float] | None]:
    """Geometric fit of one circle, or two concentric ones (a hollow tube's inner and outer surface).

    Fitting one circle to both surfaces of a tube seen on one side only drags the centre toward
    that side; fitting the two radii separately around one centre does not. Each point belongs
    to the radius it is nearer to. With ``outer_radius`` known, only the centre (and the inner
    radius) is fitted, which keeps short arcs from bending the circle. Returns the centre and
    ``(outer points mask, outer radius)``.
    """
    distance = np.hypot(*(points - centre).T)
    radii = np.percentile(distance, [20, 80])
    if radii[1] - radii[0] < 2.0:
        radii = np.array([distance.mean()])
    free = np.ones(len(radii), dtype=bool)
    if outer_radius is not None:
        radii[-1], free[-1] = outer_radius, False
    for _ in range(iterations):
        delta = points - centre
        distance = np.maximum(np.hypot(delta[:, 0], delta[:, 1]), 1e-9)
        group = np.argmin(np.abs(distance[:, None] - radii[None, :]), axis=1)
        members = np.eye(len(radii))[group][:, free]
        jacobian = np.column_stack([-delta / distance[:, None], -members])
        step, *_ = np.linalg.lstsq(jacobian, -(distance - radii[group]), rcond=None)
        centre = centre + step[:2]
        radii[free] += step[2:]
        if not np.all(np.isfinite(radii)) or radii.min() <= 0:
            return centre, None
    delta = points - centre
    group = np.argmin(np.abs(np.hypot(delta[:, 0], delta[:, 1])[:, None] - radii[None, :]), axis=1)
    outer = int(np.argmax(radii))
    return centre, (group == outer, float(radii[outer]))


def _inside(mask: np.ndarray, axis: np.ndarray) -> bool:
    """Whether most of ``axis`` runs through voxels of ``mask``."""
    voxels = np.clip(np.round(axis).astype(int), 0, np.asarray(mask.shape) - 1)
    return bool(np.mean(mask[tuple(voxels.T)]) > 0.5)


def _why_no_filaments(values: np.ndarray, threshold: float) -> str:
    peak = float(values.max()) if values.size else 0.0
    if peak <= 0:
        return "the probability map is empty (all zeros): check that the right map was given"
    if peak < threshold:
        return f"no voxel reaches the threshold {threshold:g} (the map's maximum is {peak:.3g}); lower it"
    return (
        "no filament is longer than the minimum length; lower min_length_angstrom or the threshold"
    )


def _typical_radius(skeleton_distances: np.ndarray) -> float:
    """Filament radius: the median distance to the surface along the skeleton, weighted by area.

    Weighting each skeleton voxel by its cross-section (distance squared) keeps the many tiny
    blobs of a noisy map from dragging the estimate down to a voxel or two.
    """
    values = np.sort(skeleton_distances.astype(np.float64))
    weights = np.cumsum(values**2)
    return max(1.0, float(values[np.searchsorted(weights, weights[-1] / 2)]))


def _closing(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """Closing by a ball, via distance transforms (exact radius, cost independent of it)."""
    if not mask.any():
        return mask
    grown = ndimage.distance_transform_edt(~mask) <= radius_px
    return ndimage.distance_transform_edt(grown) > radius_px


def _fill_lumens(mask: np.ndarray) -> np.ndarray:
    """Fill holes enclosed within single z, y or x slices.

    A tube cut across any plane nearly perpendicular to it shows a closed ring, and one of the
    three axis-aligned planes is always within 55 degrees of perpendicular, so every hollow tube
    is filled whatever its direction, while separate filaments are never joined.
    """
    filled = mask.copy()
    for axis in range(3):
        structure = np.zeros((3, 3, 3), dtype=bool)
        index: list[slice | int] = [slice(None)] * 3
        index[axis] = 1
        structure[tuple(index)] = ndimage.generate_binary_structure(2, 1)
        filled |= ndimage.binary_fill_holes(mask, structure=structure)
    return filled


class _SkeletonGraph:
    """A one-voxel skeleton as branches (ordered voxel chains) meeting at junctions.

    Skeleton voxels with three or more 26-neighbours are junction voxels; touching ones form one
    junction. What is left falls apart into simple chains, the branches.
    """

    def __init__(self, skeleton: np.ndarray) -> None:
        self.voxels = np.argwhere(skeleton)
        n = len(self.voxels)
        lookup = np.full(skeleton.shape, -1, dtype=np.int64)
        lookup[tuple(self.voxels.T)] = np.arange(n)
        rows, cols = [], []
        for offset in _OFFSETS:
            target = self.voxels + offset
            inside = ((target >= 0) & (target < np.asarray(skeleton.shape))).all(axis=1)
            j = np.full(n, -1)
            j[inside] = lookup[tuple(target[inside].T)]
            rows.append(np.flatnonzero(j >= 0))
            cols.append(j[j >= 0])
        r, c = np.concatenate(rows), np.concatenate(cols)
        self.adjacency = sparse.csr_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
        junction = np.asarray(self.adjacency.sum(axis=1)).ravel() >= 3
        self.junction_of = np.full(n, -1)
        self.junction_of[junction] = _components(self.adjacency, np.flatnonzero(junction))
        count = int(self.junction_of.max()) + 1
        self.junction_centres = [
            self.voxels[self.junction_of == k].mean(axis=0) for k in range(count)
        ]
        self.branches: list[np.ndarray] = []
        self.ends: list[tuple[int, int]] = []  # junction at each end of a branch, -1 for a free end
        chain_voxels = np.flatnonzero(~junction)
        chain_of = _components(self.adjacency, chain_voxels)
        for k in range(int(chain_of.max()) + 1 if len(chain_of) else 0):
            ordered = self._order(chain_voxels[chain_of == k])
            self.branches.append(ordered)
            self.ends.append(
                (self._junction_next_to(ordered[0]), self._junction_next_to(ordered[-1]))
            )
        self.alive = [True] * len(self.branches)

    def _neighbours(self, i: int) -> np.ndarray:
        return self.adjacency.indices[self.adjacency.indptr[i] : self.adjacency.indptr[i + 1]]

    def _order(self, members: np.ndarray) -> np.ndarray:
        """Members of a chain from one end to the other (a closed loop is opened anywhere)."""
        member = set(members.tolist())
        inner = {i: [j for j in self._neighbours(i) if j in member] for i in members.tolist()}
        start = next((i for i, nb in inner.items() if len(nb) <= 1), int(members[0]))
        order, seen = [start], {start}
        while True:
            step = [j for j in inner[order[-1]] if j not in seen]
            if not step:
                return np.asarray(order)
            order.append(step[0])
            seen.add(step[0])

    def _junction_next_to(self, voxel: int) -> int:
        touching = [
            self.junction_of[j] for j in self._neighbours(voxel) if self.junction_of[j] >= 0
        ]
        return int(touching[0]) if touching else -1

    def _incident(self, junction: int) -> list[tuple[int, int]]:
        """Ends ``(branch, side)`` of live branches at a junction."""
        return [
            (b, side)
            for b, ends in enumerate(self.ends)
            if self.alive[b]
            for side in (0, 1)
            if ends[side] == junction
        ]

    def prune(self, length_px: float) -> None:
        """Remove side branches (one free end) shorter than ``length_px``, shortest first.

        A branch goes only while its junction keeps at least two others, so a filament is never
        shortened from both sides of a fork down to nothing.
        """
        lengths = [_length(self.voxels[branch]) for branch in self.branches]
        for b in sorted(range(len(self.branches)), key=lambda b: lengths[b]):
            start, end = self.ends[b]
            if lengths[b] >= length_px or (start >= 0) == (end >= 0):
                continue
            if len(self._incident(max(start, end))) >= 3:
                self.alive[b] = False

    def chains(
        self, max_bend_degrees: float, look_px: float
    ) -> list[tuple[np.ndarray, bool, bool]]:
        """Polylines (z, y, x) of branches joined through junctions where they continue straight.

        Returns ``(points, starts_free, ends_free)``: whether each end is a filament end rather
        than a junction.
        """
        partner: dict[tuple[int, int], tuple[int, int]] = {}
        limit = math.cos(math.radians(180.0 - max_bend_degrees))
        for junction, centre in enumerate(self.junction_centres):
            incident = self._incident(junction)
            heading = {end: self._heading(end, centre, look_px) for end in incident}
            pairs = sorted(
                (float(np.dot(heading[a], heading[b])), a, b)
                for i, a in enumerate(incident)
                for b in incident[i + 1 :]
                if a[0] != b[0]
            )
            taken: set[tuple[int, int]] = set()
            for cosine, a, b in pairs:  # most opposite headings (straightest continuation) first
                # Two branches only: a bend, not a fork; join whatever the angle.
                if a in taken or b in taken or (cosine > limit and len(incident) > 2):
                    continue
                partner[a], partner[b] = b, a
                taken.update((a, b))
        used = [not alive for alive in self.alive]
        chains = []
        open_ends = [
            (i, s) for i in range(len(self.branches)) for s in (0, 1) if (i, s) not in partner
        ]
        for branch, side in open_ends + [(i, 0) for i in range(len(self.branches))]:
            if not used[branch]:
                chains.append(self._walk(branch, side, partner, used))
        return chains

    def _heading(self, end: tuple[int, int], centre: np.ndarray, look_px: float) -> np.ndarray:
        """Unit vector from a junction into a branch, over about ``look_px`` voxels."""
        branch = self.voxels[self.branches[end[0]]]
        if end[1] == 1:
            branch = branch[::-1]
        vector = branch[min(len(branch) - 1, round(look_px))] - centre
        norm = np.linalg.norm(vector)
        return vector / norm if norm > 0 else vector

    def _walk(
        self,
        branch: int,
        side: int,
        partner: dict[tuple[int, int], tuple[int, int]],
        used: list[bool],
    ) -> tuple[np.ndarray, bool, bool]:
        first = self.ends[branch][side]
        pieces = [self.junction_centres[first][None, :]] if first >= 0 else []
        while True:
            used[branch] = True
            voxels = self.voxels[self.branches[branch]].astype(np.float64)
            pieces.append(voxels if side == 0 else voxels[::-1])
            last = self.ends[branch][1 - side]
            if last >= 0:
                pieces.append(self.junction_centres[last][None, :])
            exit_end = (branch, 1 - side)
            if exit_end not in partner or used[partner[exit_end][0]]:
                break
            branch, side = partner[exit_end]
        return np.concatenate(pieces), first < 0, last < 0


def _components(adjacency: sparse.csr_matrix, members: np.ndarray) -> np.ndarray:
    """Connected-component id of each of ``members`` within the graph restricted to them."""
    if len(members) == 0:
        return np.zeros(0, dtype=np.int64)
    _, labels = sparse.csgraph.connected_components(adjacency[members][:, members], directed=False)
    return labels


def _split_at_reversals(axis: np.ndarray, window_px: float) -> list[np.ndarray]:
    """The axis cut where it turns back on itself (by over 90 degrees within ``window_px``).

    A tube opened by a face can thin to walls joined at its end; centred, they become one axis
    that runs along the tube and back. No filament folds within a few of its radii, so each leg
    is kept as its own piece and the overlap removal keeps one of them.
    """
    if len(axis) < 3:
        return [axis]
    steps = np.linalg.norm(np.diff(axis, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    behind = np.column_stack([np.interp(arc - window_px, arc, axis[:, d]) for d in range(3)])
    ahead = np.column_stack([np.interp(arc + window_px, arc, axis[:, d]) for d in range(3)])
    turn = np.sum((axis - behind) * (ahead - axis), axis=1)
    folded = turn < 0
    if not folded.any():
        return [axis]
    cuts = []
    for run in np.split(np.arange(len(axis)), np.flatnonzero(np.diff(folded.astype(int))) + 1):
        if folded[run[0]]:
            cuts.append(run[np.argmin(turn[run])])
    return [piece for piece in np.split(axis, cuts) if len(piece) >= 2]


def _unit_tangents(points: np.ndarray) -> np.ndarray:
    tangents = np.gradient(points, axis=0) if len(points) > 1 else np.zeros_like(points)
    norms = np.linalg.norm(tangents, axis=1, keepdims=True)
    return tangents / np.where(norms > 0, norms, 1.0)


def _length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum()) if len(points) > 1 else 0.0


def _smooth(chain: np.ndarray, smoothing_px: float) -> np.ndarray:
    """A smoothing spline through the chain, resampled about every 0.5 voxel."""
    steps = np.linalg.norm(np.diff(chain, axis=0), axis=1)
    points = chain[np.concatenate([[True], steps > 1e-9])]
    if len(points) < 3:
        return points
    k = min(3, len(points) - 1)
    tck, _ = splprep(points.T, s=len(points) * smoothing_px**2, k=k)
    n = max(2, math.ceil(_length(points) * 2) + 1)
    return np.column_stack(splev(np.linspace(0.0, 1.0, n), tck))


def _extend(
    axis: np.ndarray, distance: np.ndarray, starts_free: bool, ends_free: bool
) -> np.ndarray:
    """Prolong free ends by the distance to the mask's surface there, staying in the volume.

    Thinning stops about one radius short of a filament's end (the end cap thins to a cone of
    medial surface, not to axis), so the axis is continued straight for that distance.
    """
    if len(axis) < 2:
        return axis
    last = np.asarray(distance.shape) - 1
    pieces = [axis]
    for free, tip, inner, at_start in (
        (starts_free, axis[0], axis[min(len(axis) - 1, 6)], True),
        (ends_free, axis[-1], axis[max(0, len(axis) - 7)], False),
    ):
        direction = tip - inner
        norm = np.linalg.norm(direction)
        reach = float(distance[tuple(np.clip(np.round(tip).astype(int), 0, last))])
        if not free or norm == 0 or reach <= 0:
            continue
        extension = np.clip(
            tip + np.outer(np.arange(0.5, reach + 1e-9, 0.5), direction / norm), 0, last
        )
        pieces = [extension[::-1], *pieces] if at_start else [*pieces, extension]
    return np.concatenate(pieces)
