"""How good picks are against phantom truth: particle F1, filament accuracy and coverage.

Kept apart from the pickers so benchmarks and tests can score any picks (from CNN maps, from
ground truth, from another tool) with the same rules.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..coords import Picks
from ..errors import BadInputError
from ..metrics import PointMatch, match_points


def score_particles(
    picks: Picks | np.ndarray, truth: np.ndarray, max_distance_px: float
) -> PointMatch:
    """Match picks to true particle centres one to one within ``max_distance_px`` voxels.

    Both are in voxels of the same tomogram (``Picks.coordinates`` are source voxels). The usual
    tolerance is half a particle diameter.
    """
    coordinates = (
        picks.coordinates if isinstance(picks, Picks) else np.asarray(picks, dtype=np.float64)
    )
    truth = np.asarray(truth, dtype=np.float64).reshape(
        -1, coordinates.shape[1] if coordinates.ndim == 2 else 3
    )
    return match_points(coordinates.reshape(-1, truth.shape[1]), truth, max_distance_px)


@dataclass(frozen=True)
class FilamentScore:
    """Filament picks against true axes.

    Attributes
    ----------
    n_points : int
        Picked points scored.
    within : float
        Fraction of picked points within ``max_distance_px`` of a true axis.
    coverage : float
        Fraction of the true axes' length (inside the volume) that has a picked point within
        ``max_distance_px + spacing_px / 2``: each point vouches for the stretch of axis around it.
    axis_length_px : float
        Total true axis length inside the volume, voxels.
    median_distance_px : float
        Median distance of picked points to the nearest true axis.
    """

    n_points: int
    within: float
    coverage: float
    axis_length_px: float
    median_distance_px: float


def densify(polyline: np.ndarray, step_px: float = 0.25) -> np.ndarray:
    """Points every ``step_px`` or closer along a polyline ``(M, d)``, its vertices included."""
    polyline = np.asarray(polyline, dtype=np.float64)
    if len(polyline) < 2:
        return polyline
    pieces = []
    for a, b in itertools.pairwise(polyline):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / step_px)))
        pieces.append(a + np.outer(np.arange(n) / n, b - a))
    pieces.append(polyline[-1:])
    return np.concatenate(pieces)


def score_filaments(
    points: Picks | np.ndarray,
    axes: Sequence[np.ndarray],
    *,
    max_distance_px: float,
    spacing_px: float,
    shape: Sequence[int] | None = None,
) -> FilamentScore:
    """Score filament picks by their distance to the true axes and the axis length they cover.

    Parameters
    ----------
    points : Picks or ndarray
        ``(N, 3)`` picked points, voxels (z, y, x).
    axes : sequence of ndarray
        True axis polylines ``(M, 3)`` in the same voxels.
    max_distance_px : float
        Tolerance from the axis (e.g. 3 nm in voxels).
    spacing_px : float
        Spacing the points were picked at, voxels.
    shape : sequence of int, optional
        Volume shape: parts of the true axes outside it cannot be picked and are not counted.
    """
    if max_distance_px < 0 or spacing_px <= 0:
        raise BadInputError("max_distance_px must be >= 0 and spacing_px > 0")
    points = (
        points.coordinates if isinstance(points, Picks) else np.asarray(points, dtype=np.float64)
    )
    points = points.reshape(-1, 3)
    samples = [densify(a) for a in axes if len(a)]
    truth = np.concatenate(samples) if samples else np.zeros((0, 3))
    step_lengths = (
        np.concatenate([np.r_[np.linalg.norm(np.diff(s, axis=0), axis=1), 0.0] for s in samples])
        if samples
        else np.zeros(0)
    )
    if shape is not None and len(truth):
        inside = ((truth >= 0) & (truth <= np.asarray(shape) - 1)).all(axis=1)
        truth, step_lengths = truth[inside], step_lengths[inside]
    if len(points) == 0 or len(truth) == 0:
        return FilamentScore(len(points), 0.0, 0.0, float(step_lengths.sum()), float("inf"))
    to_axis, _ = cKDTree(truth).query(points)
    to_pick, _ = cKDTree(points).query(truth)
    covered = to_pick <= max_distance_px + spacing_px / 2
    return FilamentScore(
        n_points=len(points),
        within=float(np.mean(to_axis <= max_distance_px)),
        coverage=float(step_lengths[covered].sum() / step_lengths.sum()),
        axis_length_px=float(step_lengths.sum()),
        median_distance_px=float(np.median(to_axis)),
    )
