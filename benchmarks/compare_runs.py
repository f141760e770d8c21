"""Compare a candidate setting with the default over ``bench_accuracy.py`` runs, seed-averaged.

How the project decides a default (``benchmarks/README.md``): run the development half with the
candidate for two training seeds (``--set seed=0``, ``--set seed=1``), then compare with the
default's runs of the same seeds. Each phantom-feature's IoU is averaged over the seeds first;
the candidate becomes the default if, per feature, its worst case over the phantoms is at least
the default's and its mean is within ``--tolerance`` (0.02) of it. Write the rule down before
reading the runs; this script only applies it, the same way every time::

    .venv/bin/python benchmarks/compare_runs.py \\
        --baseline dev-seed0.json dev-seed1.json --candidate cand-seed0.json cand-seed1.json

Only phantom-features present in every file are compared (paired); the others are listed.
Several files per seed (e.g. a run cut off and finished with ``--only``) are merged first when
given as ``a.json+b.json``.

``--candidate-beta B`` compares a ``threshold_beta`` without training again: the candidate runs'
maps are scored at the threshold of highest F-B over their painted tiles, read off the pixel
counts the runs recorded (``tiles_counts``, ``volume_counts``), instead of at the threshold their
training stored. Baseline and candidate may then be the very same JSONs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tomoseg_nb.thresholds import ThresholdCounts, best_f_threshold

Scores = dict[tuple[str, str], float]
"""IoU per (phantom, feature), the phantom named by its seed part (``s1101``)."""


def read_scores(spec: str, method: str = "default", beta: float | None = None) -> Scores:
    """One seed's IoU per phantom-feature from a JSON, or from several joined with ``+``; with
    ``beta``, the IoU at the painted tiles' F-beta threshold (``rescored_iou``)."""
    scores: Scores = {}
    for path in spec.split("+"):
        for phantom in json.loads(Path(path).read_text())["phantoms"]:
            name = phantom["spec"]["name"].split("-")[0]
            features = phantom["methods"][method]["features"]
            for feature, result in features.items():
                key = (name, feature)
                if key in scores:
                    raise SystemExit(f"{path}: {name} {feature} is in two of the joined files")
                scores[key] = float(result["iou"]) if beta is None else rescored_iou(result, beta)
    return scores


def rescored_iou(result: dict, beta: float) -> float:
    """The map's IoU at the threshold of highest F-beta over its painted tiles."""
    if result.get("tiles_counts") is None or result.get("volume_counts") is None:
        raise SystemExit(
            "--candidate-beta needs the threshold counts that bench_accuracy.py records since "
            "2026-12-06; this JSON has none"
        )
    tiles = ThresholdCounts.from_dict(result["tiles_counts"])
    volume = ThresholdCounts.from_dict(result["volume_counts"])
    chosen = best_f_threshold(tiles, beta)
    if chosen is None:  # nothing painted: the network kept the threshold it stored
        return float(result["iou"])
    return float(volume.iou()[volume.thresholds.index(chosen)])


def seed_mean(runs: Sequence[Scores], keys: Sequence[tuple[str, str]]) -> Scores:
    """Each key's IoU averaged over the runs (the seeds)."""
    return {key: float(np.mean([run[key] for run in runs])) for key in keys}


def verdict(
    baseline: Scores, candidate: Scores, tolerance: float
) -> dict[str, tuple[float, float, float, float, bool]]:
    """Per feature: baseline mean and worst, candidate mean and worst, and whether the rule holds."""
    out = {}
    for feature in sorted({f for _, f in baseline}):
        keys = [k for k in baseline if k[1] == feature]
        base = np.array([baseline[k] for k in keys])
        cand = np.array([candidate[k] for k in keys])
        holds = cand.min() >= base.min() and cand.mean() >= base.mean() - tolerance
        out[feature] = (base.mean(), base.min(), cand.mean(), cand.min(), bool(holds))
    return out


def report(
    baseline_runs: Sequence[Scores], candidate_runs: Sequence[Scores], tolerance: float
) -> str:
    """The per phantom-feature table, the per-feature rule and the verdict, as text."""
    runs = [*baseline_runs, *candidate_runs]
    keys = sorted(set.intersection(*(set(run) for run in runs)), key=lambda k: (k[1], k[0]))
    if not keys:
        raise SystemExit("no phantom-feature is in every file: nothing to compare")
    left_out = sorted(set.union(*(set(run) for run in runs)) - set(keys))
    baseline = seed_mean(baseline_runs, keys)
    candidate = seed_mean(candidate_runs, keys)
    head = " ".join(f"b{i}" for i in range(len(baseline_runs)))
    head += " " + " ".join(f"c{i}" for i in range(len(candidate_runs)))
    lines = [f"phantom feature      {head}   (b: baseline, c: candidate, per seed)  c-b"]
    for key in keys:
        values = " ".join(f"{run[key]:.3f}" for run in runs)
        lines.append(f"{key[0]} {key[1]:13s} {values}  {candidate[key] - baseline[key]:+.3f}")
    lines.append("")
    lines.append("feature       baseline mean / worst  candidate mean / worst  rule")
    results = verdict(baseline, candidate, tolerance)
    for feature, (b_mean, b_worst, c_mean, c_worst, holds) in results.items():
        lines.append(
            f"{feature:13s} {b_mean:.3f} / {b_worst:.3f}          {c_mean:.3f} / {c_worst:.3f}"
            f"          {'holds' if holds else 'fails'}"
        )
    passed = all(r[-1] for r in results.values())
    lines.append("")
    lines.append(
        f"seed-averaged worst case >= the baseline's and mean within {tolerance} on every feature: "
        + ("yes, the candidate may become the default" if passed else "no, the default stays")
    )
    if left_out:
        lines.append("not in every file, left out: " + ", ".join(f"{p} {f}" for p, f in left_out))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", nargs="+", required=True, help="one JSON per seed")
    parser.add_argument("--candidate", nargs="+", required=True, help="one JSON per seed")
    parser.add_argument("--method", default="default", help="the bench_accuracy method to read")
    parser.add_argument("--tolerance", type=float, default=0.02, help="allowed loss of a mean")
    parser.add_argument(
        "--candidate-beta",
        type=float,
        metavar="B",
        help="score the candidate runs at their painted tiles' F-B threshold (from the recorded "
        "counts) instead of the threshold their training stored",
    )
    args = parser.parse_args(argv)
    baseline_runs = [read_scores(spec, args.method) for spec in args.baseline]
    candidate_runs = [
        read_scores(spec, args.method, args.candidate_beta) for spec in args.candidate
    ]
    print(report(baseline_runs, candidate_runs, args.tolerance))
    return 0


if __name__ == "__main__":
    sys.exit(main())
