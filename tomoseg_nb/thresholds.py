"""Pixel counts over a ladder of probability thresholds, and the threshold chosen from them.

One record serves both sides of the threshold question: training counts the painted tiles' pixels
(all a user has), evaluation counts the whole tomogram against its truth (what a benchmark
scores). With both recorded, a rule for choosing the threshold from the tiles can be scored on the
tomogram without training again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

THRESHOLDS: tuple[float, ...] = tuple(float(t) for t in np.round(np.arange(0.1, 0.91, 0.05), 2))
"""The ladder a threshold is chosen on: below 0.1 a map's noise floor is everywhere, above 0.9
nothing but the most confident pixels remains."""


@dataclass(frozen=True)
class ThresholdCounts:
    """True-positive, false-positive and false-negative pixel counts at each threshold."""

    thresholds: tuple[float, ...]
    true_positive: tuple[int, ...]
    false_positive: tuple[int, ...]
    false_negative: tuple[int, ...]

    @classmethod
    def from_maps(
        cls,
        probabilities: np.ndarray,
        truth: np.ndarray,
        thresholds: tuple[float, ...] = THRESHOLDS,
    ) -> ThresholdCounts:
        """Counts of ``probabilities >= t`` against the boolean ``truth``, for each ``t``."""
        probabilities = np.asarray(probabilities)
        truth = np.asarray(truth, dtype=bool)
        if probabilities.shape != truth.shape:
            raise ValueError(f"shapes differ: {probabilities.shape} and {truth.shape}")
        inside = np.sort(probabilities[truth], axis=None)
        outside = np.sort(probabilities[~truth], axis=None)
        # compared in the map's own precision, as ``probabilities >= t`` is everywhere else
        # (a float32 map: 0.35 is float32's 0.349999994, not float64's 0.35)
        dtype = probabilities.dtype if probabilities.dtype.kind == "f" else np.float64
        ladder = np.asarray(thresholds, dtype=dtype)
        # Pixels at or above t = count minus those strictly below it.
        tp = inside.size - np.searchsorted(inside, ladder, side="left")
        fp = outside.size - np.searchsorted(outside, ladder, side="left")
        return cls(
            thresholds=tuple(float(t) for t in thresholds),
            true_positive=tuple(int(v) for v in tp),
            false_positive=tuple(int(v) for v in fp),
            false_negative=tuple(int(inside.size - v) for v in tp),
        )

    def iou(self) -> np.ndarray:
        """IoU at each threshold (0 where prediction and truth are both empty)."""
        return self._ratio(1.0, 1.0, 1.0)

    def precision(self) -> np.ndarray:
        """Precision at each threshold (0 where nothing is predicted)."""
        return self._ratio(1.0, 1.0, 0.0)

    def recall(self) -> np.ndarray:
        """Recall at each threshold (0 where the truth is empty)."""
        return self._ratio(1.0, 0.0, 1.0)

    def f_score(self, beta: float = 1.0) -> np.ndarray:
        """F-beta at each threshold: 1 is Dice; a larger ``beta`` weighs recall ``beta**2``-fold."""
        b2 = beta * beta
        return self._ratio(1 + b2, 1.0, b2)

    def _ratio(self, tp_weight: float, fp_weight: float, fn_weight: float) -> np.ndarray:
        """``tp_weight tp / (tp_weight tp + fp_weight fp + fn_weight fn)``, 0 where that is 0/0."""
        tp = tp_weight * np.asarray(self.true_positive, dtype=float)
        denominator = (
            tp
            + fp_weight * np.asarray(self.false_positive)
            + fn_weight * np.asarray(self.false_negative)
        )
        return np.divide(tp, denominator, out=np.zeros_like(tp), where=denominator > 0)

    @property
    def painted(self) -> int:
        """Pixels of the truth (the same at every threshold)."""
        return self.true_positive[0] + self.false_negative[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "thresholds": list(self.thresholds),
            "true_positive": list(self.true_positive),
            "false_positive": list(self.false_positive),
            "false_negative": list(self.false_negative),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThresholdCounts:
        return cls(**{key: tuple(data[key]) for key in cls.__dataclass_fields__})


def best_f_threshold(counts: ThresholdCounts, beta: float = 1.0) -> float | None:
    """The threshold of highest F-beta (the lowest of ties); None when the truth is empty.

    ``beta`` 1 is the Dice score, whose best threshold is also IoU's (one grows with the other);
    a larger ``beta`` weighs recall ``beta**2`` times precision.
    """
    if counts.painted == 0:
        return None
    return counts.thresholds[int(np.argmax(counts.f_score(beta)))]
