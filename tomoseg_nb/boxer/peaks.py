"""Peaks of a score map: threshold at mean + t * sigma, then greedy maxima with a minimum separation.

Shared by the CNN picker and the template-matching baseline, so the two differ only in their maps.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree


def map_threshold(score_map: np.ndarray, threshold_sigma: float) -> float:
    """``mean + threshold_sigma * std`` of ``score_map``: the e2boxer threshold a user tunes."""
    return float(score_map.mean() + threshold_sigma * score_map.std())


def find_peaks(
    score_map: np.ndarray,
    *,
    threshold_sigma: float | None = None,
    min_distance_px: float,
    min_score: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima above ``mean + threshold_sigma * std``, strongest first, at least ``min_distance_px`` apart.

    Greedy: the strongest peak is kept, everything closer than ``min_distance_px`` to it is dropped,
    and so on, so a particle gives one pick even when its map bump has several maxima. Positions are
    refined to sub-pixel precision by fitting a parabola through each peak and its neighbours.

    Parameters
    ----------
    score_map : numpy.ndarray
        ``(y, x)`` scores, higher = more particle-like.
    threshold_sigma : float, optional
        Threshold in standard deviations of the map above its mean.
    min_score : float, optional
        Threshold as a map value instead (give one of the two).
    min_distance_px : float
        Smallest distance between two peaks, map pixels.

    Returns
    -------
    coordinates : numpy.ndarray
        ``(N, 2)`` float y, x in map pixels.
    values : numpy.ndarray
        ``(N,)`` map values at the peaks, descending.

    Examples
    --------
    >>> score = np.zeros((32, 32)); score[8, 8] = 2.0; score[9, 9] = 1.5; score[20, 24] = 1.0
    >>> coordinates, values = find_peaks(score, threshold_sigma=1.0, min_distance_px=4)
    >>> np.round(coordinates).astype(int).tolist(), values.tolist()
    ([[8, 8], [20, 24]], [2.0, 1.0])
    """
    score_map = np.asarray(score_map, dtype=np.float32)
    if (threshold_sigma is None) == (min_score is None):
        raise ValueError("give threshold_sigma or min_score, not both")
    if min_score is None:
        assert threshold_sigma is not None  # exactly one of them was given (checked above)
        threshold = map_threshold(score_map, threshold_sigma)
    else:
        threshold = min_score
    radius = max(1, int(np.floor(min_distance_px)))
    window = ndimage.maximum_filter(score_map, size=2 * radius + 1, mode="nearest")
    candidates = np.argwhere((score_map == window) & (score_map > threshold))
    values = score_map[candidates[:, 0], candidates[:, 1]]
    order = np.argsort(-values, kind="stable")
    candidates, values = candidates[order], values[order]
    keep = _greedy(candidates.astype(np.float64), min_distance_px)
    candidates, values = candidates[keep], values[keep]
    return _refine(score_map, candidates), values


def _greedy(points: np.ndarray, min_distance: float) -> np.ndarray:
    """Indices of points (sorted strongest first) kept by greedy non-maximum suppression."""
    if len(points) == 0:
        return np.zeros(0, dtype=int)
    tree = cKDTree(points)
    suppressed = np.zeros(len(points), bool)
    keep = []
    for i in range(len(points)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed[tree.query_ball_point(points[i], min_distance - 1e-9)] = True
    return np.asarray(keep, dtype=int)


def _refine(score_map: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Sub-pixel peak positions from a parabola through each peak and its two neighbours per axis."""
    refined = peaks.astype(np.float64)
    for axis in (0, 1):
        inner = (peaks[:, axis] > 0) & (peaks[:, axis] < score_map.shape[axis] - 1)
        p = peaks[inner]
        step = np.zeros(2, dtype=int)
        step[axis] = 1
        before = score_map[p[:, 0] - step[0], p[:, 1] - step[1]]
        centre = score_map[p[:, 0], p[:, 1]]
        after = score_map[p[:, 0] + step[0], p[:, 1] + step[1]]
        curvature = before - 2 * centre + after
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(curvature < 0, 0.5 * (before - after) / curvature, 0.0)
        refined[inner, axis] += np.clip(delta, -0.5, 0.5)
    return refined
