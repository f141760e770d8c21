"""The seed-averaged default rule of ``benchmarks/compare_runs.py`` on hand-made runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_runs.py"
_SPEC = importlib.util.spec_from_file_location("compare_runs", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
compare_runs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(compare_runs)


def _run(path: Path, ious: dict[str, dict[str, float]]) -> str:
    phantoms = [
        {
            "spec": {"name": f"{name}-10A-snr0.1"},
            "methods": {"default": {"features": {f: {"iou": v} for f, v in feats.items()}}},
        }
        for name, feats in ious.items()
    ]
    path.write_text(json.dumps({"phantoms": phantoms}))
    return str(path)


def test_the_rule_averages_seeds_before_taking_the_worst_case() -> None:
    base = [{("s1", "mt"): 0.30, ("s2", "mt"): 0.60}, {("s1", "mt"): 0.20, ("s2", "mt"): 0.60}]
    # seed 0 worse on s1, seed 1 better: the seed mean (0.26) is above the baseline's 0.25
    better = [{("s1", "mt"): 0.22, ("s2", "mt"): 0.60}, {("s1", "mt"): 0.30, ("s2", "mt"): 0.59}]
    worse = [{("s1", "mt"): 0.22, ("s2", "mt"): 0.60}, {("s1", "mt"): 0.26, ("s2", "mt"): 0.60}]
    keys = [("s1", "mt"), ("s2", "mt")]
    mean_base = compare_runs.seed_mean(base, keys)
    assert mean_base[("s1", "mt")] == pytest.approx(0.25)
    assert compare_runs.verdict(mean_base, compare_runs.seed_mean(better, keys), 0.02)["mt"][-1]
    assert not compare_runs.verdict(mean_base, compare_runs.seed_mean(worse, keys), 0.02)["mt"][-1]


def test_a_better_worst_case_does_not_excuse_a_mean_lost_beyond_the_tolerance() -> None:
    base = {("s1", "mt"): 0.20, ("s2", "mt"): 0.80}
    cand = {("s1", "mt"): 0.25, ("s2", "mt"): 0.70}  # mean 0.475 vs 0.50
    assert not compare_runs.verdict(base, cand, 0.02)["mt"][-1]
    assert compare_runs.verdict(base, cand, 0.03)["mt"][-1]


def test_report_pairs_phantoms_joins_split_runs_and_lists_what_it_left_out(tmp_path: Path) -> None:
    b0 = _run(tmp_path / "b0.json", {"s1": {"mt": 0.3}, "s2": {"mt": 0.5}, "s3": {"mt": 0.1}})
    c0 = _run(tmp_path / "c0a.json", {"s1": {"mt": 0.4}})
    c0 += "+" + _run(tmp_path / "c0b.json", {"s2": {"mt": 0.5}})
    text = compare_runs.report([compare_runs.read_scores(b0)], [compare_runs.read_scores(c0)], 0.02)
    assert "s1 mt" in text and "s2 mt" in text
    assert "left out: s3 mt" in text
    assert "may become the default" in text


def test_a_phantom_in_two_joined_files_is_refused(tmp_path: Path) -> None:
    a = _run(tmp_path / "a.json", {"s1": {"mt": 0.3}})
    b = _run(tmp_path / "b.json", {"s1": {"mt": 0.4}})
    with pytest.raises(SystemExit, match="in two of the joined files"):
        compare_runs.read_scores(f"{a}+{b}")


def test_a_candidate_beta_rescores_the_maps_from_their_recorded_counts(tmp_path: Path) -> None:
    # The tiles' F1 peaks at 0.5, their F3 at 0.1 (recall weighs 9-fold); the map's IoU is
    # 0.40 at 0.1 and 0.25 at 0.5, so beta 3 scores the same map higher than its stored 0.25.
    tiles = {"thresholds": [0.1, 0.5], "true_positive": [90, 80]}
    tiles |= {"false_positive": [60, 5], "false_negative": [10, 20]}
    volume = {"thresholds": [0.1, 0.5], "true_positive": [40, 25]}
    volume |= {"false_positive": [50, 50], "false_negative": [10, 25]}
    result = {"iou": 0.25, "tiles_counts": tiles, "volume_counts": volume}
    assert compare_runs.rescored_iou(result, 1.0) == pytest.approx(0.25)
    assert compare_runs.rescored_iou(result, 3.0) == pytest.approx(0.40)
    path = tmp_path / "run.json"
    phantoms = [{"spec": {"name": "s1-10A"}, "methods": {"default": {"features": {"mt": result}}}}]
    path.write_text(json.dumps({"phantoms": phantoms}))
    assert compare_runs.read_scores(str(path)) == {("s1", "mt"): 0.25}
    assert compare_runs.read_scores(str(path), beta=3.0)[("s1", "mt")] == pytest.approx(0.40)
    without_counts = _run(tmp_path / "old.json", {"s1": {"mt": 0.3}})
    with pytest.raises(SystemExit, match="needs the threshold counts"):
        compare_runs.read_scores(without_counts, beta=3.0)
