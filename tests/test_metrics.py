"""Segmentation and picking scores against hand-computed cases, including the empty ones."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tomoseg_nb.errors import BadInputError
from tomoseg_nb.metrics import PointMatch, dice, iou, match_points, precision_recall_f1


def mask(*values):
    return np.array(values, dtype=bool)


# ----------------------------------------------------------------------------------- masks


def test_hand_computed_masks():
    pred = mask(1, 1, 1, 0, 0, 0)
    truth = mask(0, 1, 1, 1, 1, 0)
    # tp = 2, fp = 1, fn = 2
    assert iou(pred, truth) == pytest.approx(2 / 5)
    assert dice(pred, truth) == pytest.approx(4 / 7)
    assert precision_recall_f1(pred, truth) == pytest.approx((2 / 3, 1 / 2, 4 / 7))


def test_masks_of_any_shape():
    pred = np.zeros((4, 5, 6), bool)
    truth = np.zeros((4, 5, 6), bool)
    pred[1:3, 1:3, 1:3] = True  # 8 voxels
    truth[2:4, 1:3, 1:3] = True  # 8 voxels, 4 shared
    assert iou(pred, truth) == pytest.approx(4 / 12)
    assert dice(pred, truth) == pytest.approx(0.5)


def test_identical_and_disjoint():
    a = mask(1, 0, 1, 0)
    assert iou(a, a) == dice(a, a) == 1.0
    assert precision_recall_f1(a, a) == (1.0, 1.0, 1.0)
    assert iou(a, ~a) == dice(a, ~a) == 0.0
    assert precision_recall_f1(a, ~a) == (0.0, 0.0, 0.0)


def test_empty_cases_are_defined():
    empty, some = mask(0, 0, 0), mask(0, 1, 0)
    # nothing to find and nothing claimed: perfect
    assert iou(empty, empty) == dice(empty, empty) == 1.0
    assert precision_recall_f1(empty, empty) == (1.0, 1.0, 1.0)
    # missed everything / claimed something that is not there: zero, not NaN
    assert iou(empty, some) == dice(empty, some) == 0.0
    assert precision_recall_f1(empty, some) == (0.0, 0.0, 0.0)
    assert iou(some, empty) == dice(some, empty) == 0.0
    assert precision_recall_f1(some, empty) == (0.0, 0.0, 0.0)


def test_mask_errors():
    with pytest.raises(BadInputError, match=r"boolean mask.*threshold"):
        iou(np.array([0.2, 0.9]), mask(0, 1))
    with pytest.raises(BadInputError, match=r"shape \(3,\) differs"):
        dice(mask(0, 1, 1), mask(0, 1))


@settings(max_examples=100, deadline=None)
@given(
    pred=arrays(bool, 30),
    truth=arrays(bool, 30),
)
def test_dice_and_iou_agree_and_are_bounded(pred, truth):
    j, d = iou(pred, truth), dice(pred, truth)
    assert 0.0 <= j <= d <= 1.0
    assert d == pytest.approx(2 * j / (1 + j))
    precision, recall, f1 = precision_recall_f1(pred, truth)
    assert f1 == pytest.approx(d)
    if precision + recall:
        assert f1 == pytest.approx(2 * precision * recall / (precision + recall))
    assert iou(pred, truth) == iou(truth, pred)


# ---------------------------------------------------------------------------------- points


def test_hand_computed_matching():
    pred = np.array([[0.0, 0.0], [0.0, 10.0], [20.0, 20.0]])
    truth = np.array([[0.0, 1.0], [0.0, 12.0], [50.0, 50.0], [20.0, 23.0]])
    m = match_points(pred, truth, max_distance=3.0)
    assert isinstance(m, PointMatch)
    assert (m.true_positives, m.false_positives, m.false_negatives) == (3, 0, 1)
    assert m.pairs.tolist() == [[0, 0], [1, 1], [2, 3]]
    np.testing.assert_allclose(m.distances, [1.0, 2.0, 3.0])  # 3.0 == max_distance counts
    assert (m.precision, m.recall) == (1.0, 0.75)
    assert m.f1 == pytest.approx(2 * 0.75 / 1.75)


def test_one_prediction_cannot_match_two_particles():
    m = match_points([[0.0, 5.0]], [[0.0, 4.0], [0.0, 6.0]], max_distance=2.0)
    assert (m.true_positives, m.false_positives, m.false_negatives) == (1, 0, 1)


def test_matching_maximises_pairs_not_greedy_nearest():
    # greedy nearest-first pairs pred 1 with truth 0 (distance 1) and leaves pred 0 unmatched;
    # the one-to-one optimum matches both
    pred = np.array([[0.0], [3.0]])
    truth = np.array([[2.0], [5.0]])
    m = match_points(pred, truth, max_distance=2.0)
    assert m.true_positives == 2
    assert m.pairs.tolist() == [[0, 0], [1, 1]]
    np.testing.assert_allclose(m.distances, [2.0, 2.0])


def test_among_full_matchings_the_shortest_is_chosen():
    pred = np.array([[0.0], [10.0]])
    truth = np.array([[9.0], [1.0]])
    m = match_points(pred, truth, max_distance=20.0)
    assert m.pairs.tolist() == [[0, 1], [1, 0]]
    np.testing.assert_allclose(m.distances, [1.0, 1.0])


def test_coincident_points_and_zero_distance():
    m = match_points([[1.0, 2.0, 3.0]] * 2, [[1.0, 2.0, 3.0]] * 3, max_distance=0.0)
    assert (m.true_positives, m.false_positives, m.false_negatives) == (2, 0, 1)
    np.testing.assert_array_equal(m.distances, [0.0, 0.0])


def test_empty_point_sets():
    none = np.empty((0, 3))
    some = np.zeros((2, 3))
    both_empty = match_points(none, none, 5.0)
    assert (both_empty.precision, both_empty.recall, both_empty.f1) == (1.0, 1.0, 1.0)
    assert both_empty.pairs.shape == (0, 2) and both_empty.distances.shape == (0,)
    missed = match_points(none, some, 5.0)
    assert (missed.true_positives, missed.false_negatives, missed.f1) == (0, 2, 0.0)
    invented = match_points(some, none, 5.0)
    assert (invented.false_positives, invented.precision, invented.recall) == (2, 0.0, 0.0)


def test_point_errors():
    with pytest.raises(BadInputError, match="2D but true points are 3D"):
        match_points(np.zeros((1, 2)), np.zeros((1, 3)), 1.0)
    with pytest.raises(BadInputError, match=r"\(N, d\)"):
        match_points(np.zeros(3), np.zeros((1, 3)), 1.0)
    with pytest.raises(BadInputError, match="max_distance"):
        match_points(np.zeros((1, 3)), np.zeros((1, 3)), -1.0)
    with pytest.raises(BadInputError, match="NaN"):
        match_points(np.array([[np.nan, 0, 0]]), np.zeros((1, 3)), 1.0)


def brute_force_matches(pred, truth, max_distance):
    """Largest number of pairs within max_distance, by exhaustive assignment (small sets only)."""
    from scipy.optimize import linear_sum_assignment

    distance = np.linalg.norm(pred[:, None] - truth[None], axis=-1)
    # maximum-cardinality matching = assignment maximising the count of allowed pairs
    rows, cols = linear_sum_assignment(-(distance <= max_distance).astype(float))
    return int((distance[rows, cols] <= max_distance).sum())


@settings(max_examples=60, deadline=None)
@given(
    pred=arrays(
        np.float64, st.tuples(st.integers(0, 8), st.just(2)), elements=st.integers(0, 20).map(float)
    ),
    truth=arrays(
        np.float64, st.tuples(st.integers(0, 8), st.just(2)), elements=st.integers(0, 20).map(float)
    ),
    max_distance=st.sampled_from([0.0, 1.0, 2.5, 6.0]),
)
def test_matching_is_one_to_one_within_distance_and_maximal(pred, truth, max_distance):
    m = match_points(pred, truth, max_distance)
    assert m.true_positives + m.false_positives == len(pred)
    assert m.true_positives + m.false_negatives == len(truth)
    assert len(set(m.pairs[:, 0])) == len(set(m.pairs[:, 1])) == m.true_positives
    np.testing.assert_allclose(
        m.distances, np.linalg.norm(pred[m.pairs[:, 0]] - truth[m.pairs[:, 1]], axis=1)
    )
    assert (m.distances <= max_distance).all()
    if len(pred) and len(truth):
        assert m.true_positives == brute_force_matches(pred, truth, max_distance)


def test_thousands_of_points_match_exactly():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 2000, (4000, 3))
    pred = np.concatenate(
        [truth[:3000] + rng.normal(0, 1.0, (3000, 3)), rng.uniform(0, 2000, (500, 3))]
    )
    m = match_points(pred, truth, max_distance=6.0)
    # the 3000 jittered copies find their particles; random extras rarely land within 6 voxels
    assert m.true_positives >= 3000
    assert m.false_positives == len(pred) - m.true_positives
    first = m.pairs[m.pairs[:, 0] < 3000]
    assert (first[:, 0] == first[:, 1]).mean() > 0.999
