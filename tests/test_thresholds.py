"""Pixel counts over the threshold ladder, against counting by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tomoseg_nb.thresholds import THRESHOLDS, ThresholdCounts, best_f_threshold


def test_counts_match_thresholding_each_step_by_hand():
    rng = np.random.default_rng(0)
    truth = rng.random((20, 30)) < 0.3
    # values exactly on the ladder must count as predicted (``>=``)
    probabilities = np.where(truth, rng.choice(THRESHOLDS, truth.shape), rng.random(truth.shape))
    counts = ThresholdCounts.from_maps(probabilities, truth)
    for i, t in enumerate(THRESHOLDS):
        predicted = probabilities >= t
        assert counts.true_positive[i] == np.sum(predicted & truth)
        assert counts.false_positive[i] == np.sum(predicted & ~truth)
        assert counts.false_negative[i] == np.sum(~predicted & truth)
        tp = np.sum(predicted & truth)
        assert counts.iou()[i] == pytest.approx(tp / np.sum(predicted | truth))
        assert counts.precision()[i] == pytest.approx(tp / predicted.sum())
        assert counts.recall()[i] == pytest.approx(tp / truth.sum())
        p, r = tp / predicted.sum(), tp / truth.sum()
        assert counts.f_score(2.0)[i] == pytest.approx(5 * p * r / (4 * p + r))
    assert counts.painted == truth.sum()
    assert ThresholdCounts.from_dict(counts.to_dict()) == counts


def test_a_float32_map_is_cut_as_float32_compares():
    """A pixel stored at float32's 0.35 (just below 0.35) is at the threshold, as ``>=`` says."""
    probabilities = np.full(4, 0.35, dtype=np.float32)
    truth = np.array([True, True, False, False])
    counts = ThresholdCounts.from_maps(probabilities, truth)
    at = counts.thresholds.index(0.35)
    assert counts.true_positive[at] == np.sum((probabilities >= 0.35) & truth) == 2
    assert counts.false_positive[at] == 2


def test_best_f_threshold_takes_the_lowest_of_ties_and_none_without_truth():
    truth = np.zeros(100, bool)
    truth[:20] = True
    # every threshold in (0.1, 0.35] separates the classes exactly: the lowest of them wins
    probabilities = np.where(truth, 0.35, 0.1)
    assert best_f_threshold(ThresholdCounts.from_maps(probabilities, truth)) == 0.15
    assert best_f_threshold(ThresholdCounts.from_maps(probabilities, np.zeros(100, bool))) is None


def test_beta_1_is_the_iou_best_and_a_larger_beta_trades_precision_for_recall():
    """A feature whose pixels score 0.2-0.6 over a background of 0-0.4: IoU peaks in between;
    F2, weighing recall, cuts lower and keeps more of the feature."""
    rng = np.random.default_rng(1)
    truth = np.zeros(4000, bool)
    truth[:800] = True
    probabilities = np.where(truth, rng.uniform(0.2, 0.6, 4000), rng.uniform(0.0, 0.4, 4000))
    counts = ThresholdCounts.from_maps(probabilities, truth)
    iou_best = counts.thresholds[int(np.argmax(counts.iou()))]
    assert best_f_threshold(counts, 1.0) == iou_best
    f2 = best_f_threshold(counts, 2.0)
    assert f2 < iou_best
    at = counts.thresholds.index
    assert counts.true_positive[at(f2)] > counts.true_positive[at(iou_best)]


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="shapes differ"):
        ThresholdCounts.from_maps(np.zeros((4, 4)), np.zeros((4, 5), bool))
