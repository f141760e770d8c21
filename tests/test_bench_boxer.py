"""The annotation-completeness readout of ``benchmarks/bench_boxer.py --real`` on hand-made picks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

_FOLDER = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(_FOLDER))  # bench_boxer imports its sibling _suite_runs
_SPEC = importlib.util.spec_from_file_location("bench_boxer", _FOLDER / "bench_boxer.py")
assert _SPEC is not None and _SPEC.loader is not None
bench_boxer = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_boxer"] = bench_boxer  # its dataclasses look their module up there
_SPEC.loader.exec_module(bench_boxer)

SHAPE = (1000, 1000)
TRUTH = np.array([[300.0, 300.0], [300.0, 600.0], [600.0, 300.0], [600.0, 600.0]])


def test_confident_precision_scores_only_the_most_confident_picks() -> None:
    picks = np.array([[305.0, 300.0], [300.0, 590.0], [450.0, 450.0], [800.0, 800.0]])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert bench_boxer.confident_precision(picks, scores, TRUTH, SHAPE, 2) == 1.0
    assert bench_boxer.confident_precision(picks, scores, TRUTH, SHAPE, 4) == 0.5
    # The order of the arrays does not matter, only the scores.
    reverse = slice(None, None, -1)
    assert bench_boxer.confident_precision(picks[reverse], scores[reverse], TRUTH, SHAPE, 2) == 1.0


def test_confident_precision_ignores_picks_outside_the_annotated_margin() -> None:
    # The strongest pick lies in the unannotated border: it neither counts nor takes a place.
    picks = np.array([[20.0, 500.0], [600.0, 605.0], [450.0, 450.0]])
    scores = np.array([5.0, 0.9, 0.1])
    assert bench_boxer.confident_precision(picks, scores, TRUTH, SHAPE, 1) == 1.0
    assert bench_boxer.confident_precision(picks, scores, TRUTH, SHAPE, 2) == 0.5
