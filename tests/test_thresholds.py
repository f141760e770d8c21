"""Pixel counts over the threshold ladder, against counting by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tomoseg_nb.thresholds import THRESHOLDS, ThresholdCounts, best_iou_threshold


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
        union = np.sum(predicted | truth)
        assert counts.iou()[i] == pytest.approx(np.sum(predicted & truth) / union)
    assert counts.painted == truth.sum()
    assert ThresholdCounts.from_dict(counts.to_dict()) == counts


def test_best_iou_threshold_takes_the_lowest_of_ties_and_none_without_truth():
    truth = np.zeros(100, bool)
    truth[:20] = True
    # every threshold in (0.1, 0.35] separates the classes exactly: the lowest of them wins
    probabilities = np.where(truth, 0.35, 0.1)
    assert best_iou_threshold(ThresholdCounts.from_maps(probabilities, truth)) == 0.15
    assert best_iou_threshold(ThresholdCounts.from_maps(probabilities, np.zeros(100, bool))) is None


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="shapes differ"):
        ThresholdCounts.from_maps(np.zeros((4, 4)), np.zeros((4, 5), bool))
