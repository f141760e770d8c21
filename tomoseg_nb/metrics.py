"""Scores of a segmentation or a set of picks against ground truth.

Empty cases are defined, not NaN, so that averages over tomograms and benchmark tables never break:
when both prediction and truth are empty every score is 1 (nothing to find, nothing claimed), when
only one of them is empty every score is 0. Precision with no predictions and recall with no truth
follow the same rule (1 if the other side is empty too, else 0); F1 is 0 when precision and recall
are both 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import BadInputError


def _masks(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred), np.asarray(truth)
    for name, mask in (("prediction", pred), ("truth", truth)):
        if mask.dtype != bool:
            raise BadInputError(
                f"{name} must be a boolean mask, got dtype {mask.dtype}; threshold it first, "
                "e.g. probability >= 0.5 or labels == 3"
            )
    if pred.shape != truth.shape:
        raise BadInputError(f"prediction shape {pred.shape} differs from truth shape {truth.shape}")
    return pred, truth


def _counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of two boolean masks."""
    pred, truth = _masks(pred, truth)
    tp = int(np.count_nonzero(pred & truth))
    return tp, int(np.count_nonzero(pred)) - tp, int(np.count_nonzero(truth)) - tp


def _ratio(numerator: int, denominator: int, other_empty: bool) -> float:
    if denominator == 0:
        return 1.0 if other_empty else 0.0
    return numerator / denominator


def _scores(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = _ratio(tp, tp + fp, fn == 0)
    recall = _ratio(tp, tp + fn, fp == 0)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union (Jaccard index) of two boolean masks; 1.0 when both are empty.

    >>> iou(np.array([1, 1, 0, 0], bool), np.array([0, 1, 1, 0], bool))
    0.3333333333333333
    """
    tp, fp, fn = _counts(pred, truth)
    return _ratio(tp, tp + fp + fn, True)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient (F1 of the voxels) of two boolean masks; 1.0 when both are empty.

    >>> dice(np.array([1, 1, 0, 0], bool), np.array([0, 1, 1, 0], bool))
    0.5
    """
    tp, fp, fn = _counts(pred, truth)
    return _ratio(2 * tp, 2 * tp + fp + fn, True)


def precision_recall_f1(
    pred_mask: np.ndarray, truth_mask: np.ndarray
) -> tuple[float, float, float]:
    """Voxel precision, recall and F1 of a predicted mask (empty cases: see the module docstring).

    >>> precision_recall_f1(np.array([1, 1, 0, 0], bool), np.array([0, 1, 1, 1], bool))
    (0.5, 0.3333333333333333, 0.4)
    """
    return _scores(*_counts(pred_mask, truth_mask))


@dataclass(frozen=True)
class PointMatch:
    """One-to-one matching of predicted points to true points.

    Attributes
    ----------
    true_positives, false_positives, false_negatives : int
        Matched predictions, unmatched predictions, unmatched truths.
    precision, recall, f1 : float
        From the counts (empty cases: see the module docstring).
    pairs : ndarray
        ``(K, 2)`` int: ``(prediction index, truth index)`` of each match, sorted by prediction.
    distances : ndarray
        ``(K,)`` distance of each pair, in the units of the coordinates.
    """

    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float
    recall: float
    f1: float
    pairs: np.ndarray
    distances: np.ndarray


def _points(points: np.ndarray, name: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise BadInputError(f"{name} points must be an (N, d) array, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise BadInputError(f"{name} points contain NaN or Inf")
    return points


def match_points(pred: np.ndarray, truth: np.ndarray, max_distance: float) -> PointMatch:
    """Match predicted to true points one to one, each pair at most ``max_distance`` apart.

    The matching has the most pairs possible, and among those the smallest total distance
    (Hungarian assignment), so a prediction between two particles cannot be counted twice and a
    close prediction is never left unmatched in favour of a far one. Only pairs within
    ``max_distance`` are candidates (found with a KD-tree); each connected group of candidates is
    assigned separately, so thousands of sparse points cost little more than their neighbours.

    Parameters
    ----------
    pred, truth : array-like
        ``(N, d)`` and ``(M, d)`` coordinates in the same units (e.g. voxels, z, y, x).
    max_distance : float
        Largest distance of a match, same units; inclusive.

    Examples
    --------
    >>> m = match_points([[0, 0], [0, 10]], [[0, 1], [0, 3], [0, 50]], max_distance=4)
    >>> m.true_positives, m.false_positives, m.false_negatives
    (1, 1, 2)
    >>> m.pairs.tolist(), m.distances.tolist()
    ([[0, 0]], [1.0])
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pred, truth = _points(pred, "predicted"), _points(truth, "true")
    if len(pred) and len(truth) and pred.shape[1] != truth.shape[1]:
        raise BadInputError(
            f"predicted points are {pred.shape[1]}D but true points are {truth.shape[1]}D"
        )
    if not (np.isfinite(max_distance) and max_distance >= 0):
        raise BadInputError(f"max_distance must be a non-negative distance, got {max_distance}")
    n, m = len(pred), len(truth)
    pairs = np.empty((0, 2), dtype=np.int64)
    distances = np.empty(0)
    if n and m:
        candidates = cKDTree(pred).sparse_distance_matrix(
            cKDTree(truth), max_distance, output_type="ndarray"
        )
        rows, cols, dist = candidates["i"], candidates["j"], candidates["v"]
        # one graph over predictions (0..n-1) and truths (n..n+m-1); each component is assigned alone
        graph = coo_matrix((np.ones(len(rows)), (rows, cols + n)), shape=(n + m, n + m))
        _, component = connected_components(graph, directed=False)
        found_pairs, found_distances = [], []
        order = np.argsort(component[rows], kind="stable")
        rows, cols, dist = rows[order], cols[order], dist[order]
        bounds = np.flatnonzero(np.diff(component[rows])) + 1
        for r, c, d in zip(
            np.split(rows, bounds), np.split(cols, bounds), np.split(dist, bounds), strict=True
        ):
            if len(r) == 0:
                continue
            pred_ids, r_local = np.unique(r, return_inverse=True)
            truth_ids, c_local = np.unique(c, return_inverse=True)
            # a non-candidate costs more than any set of real pairs: most pairs first, then shortest
            forbidden = max_distance * (min(len(pred_ids), len(truth_ids)) + 1) + 1.0
            cost = np.full((len(pred_ids), len(truth_ids)), forbidden)
            cost[r_local, c_local] = d
            assigned_r, assigned_c = linear_sum_assignment(cost)
            keep = cost[assigned_r, assigned_c] < forbidden
            found_pairs.append(
                np.column_stack([pred_ids[assigned_r[keep]], truth_ids[assigned_c[keep]]])
            )
            found_distances.append(cost[assigned_r[keep], assigned_c[keep]])
        if found_pairs:
            pairs = np.concatenate(found_pairs).astype(np.int64)
            distances = np.concatenate(found_distances)
            order = np.argsort(pairs[:, 0], kind="stable")
            pairs, distances = pairs[order], distances[order]
    tp = len(pairs)
    precision, recall, f1 = _scores(tp, n - tp, m - tp)
    return PointMatch(tp, n - tp, m - tp, precision, recall, f1, pairs, distances)
