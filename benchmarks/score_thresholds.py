"""Score rules for choosing a feature's threshold from its painted tiles, without training again.

``bench_accuracy.py`` records, per phantom and feature, the painted tiles' pixel counts at every
threshold of the ladder (``tiles_counts``: all a user has) and the whole map's counts against
the truth (``volume_counts``). A rule maps the first to a threshold; its score is the map's IoU
there. So rules compare on the very same maps, paired, and a rule chosen on the development
half's JSON can then be read off the held-back half's JSON once, never tuned on it::

    .venv/bin/python benchmarks/score_thresholds.py dev.json
    .venv/bin/python benchmarks/score_thresholds.py held-back.json --rules best-iou f2

The rules (all choose on ``thresholds.THRESHOLDS``):

- ``best-iou``: the highest IoU over the tiles (F1's best: the default before 2026-12-06);
- ``f2``: the highest F2 over the tiles (recall weighted four times precision; the default since,
  ``training_config.DEFAULT_THRESHOLD_BETA``): the network was trained on these tiles and is
  surer of them than of unseen voxels, so their best threshold sits above the tomogram's;
- ``plateau-90``, ``plateau-95``: the lowest threshold whose tile IoU is within 10 % / 5 % of
  the best: the same bias, only where it costs the tiles little;
- ``oracle``: the map's own best (needs the truth: the ceiling, not a rule).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tomoseg_nb.thresholds import ThresholdCounts, best_f_threshold

Rule = Callable[[ThresholdCounts], float | None]


def plateau_threshold(counts: ThresholdCounts, fraction: float) -> float | None:
    """The lowest threshold whose IoU is at least ``fraction`` of the best."""
    if counts.painted == 0:
        return None
    iou = counts.iou()
    return counts.thresholds[int(np.flatnonzero(iou >= fraction * iou.max())[0])]


RULES: dict[str, Rule] = {
    "best-iou": lambda counts: best_f_threshold(counts, 1.0),
    "f2": lambda counts: best_f_threshold(counts, 2.0),
    "plateau-90": lambda counts: plateau_threshold(counts, 0.90),
    "plateau-95": lambda counts: plateau_threshold(counts, 0.95),
}
ORACLE = "oracle"


def score_rules(
    phantoms: Sequence[dict[str, Any]], method: str, rules: Sequence[str]
) -> dict[str, dict[str, list[tuple[str, float, float]]]]:
    """Per rule and feature: (phantom, threshold, IoU of the map there) for every phantom."""
    scored: dict[str, dict[str, list[tuple[str, float, float]]]] = {r: {} for r in rules}
    for phantom in phantoms:
        name = phantom["spec"]["name"].split("-")[0]
        for feature, scores in phantom["methods"][method]["features"].items():
            if scores.get("tiles_counts") is None or scores.get("volume_counts") is None:
                raise SystemExit(
                    f"{name} {feature}: no threshold counts in this JSON (bench_accuracy.py "
                    "records them since 2026-12-06); run it again"
                )
            tiles = ThresholdCounts.from_dict(scores["tiles_counts"])
            volume = ThresholdCounts.from_dict(scores["volume_counts"])
            volume_iou = volume.iou()
            for rule in rules:
                if rule == ORACLE:
                    at = int(np.argmax(volume_iou))
                else:
                    chosen = RULES[rule](tiles)
                    if chosen is None:  # nothing painted: the network keeps its own threshold
                        chosen = scores["threshold"]
                    at = volume.thresholds.index(chosen)
                scored[rule].setdefault(feature, []).append(
                    (name, volume.thresholds[at], float(volume_iou[at]))
                )
    return scored


def format_report(scored: dict[str, dict[str, list[tuple[str, float, float]]]]) -> str:
    """A mean / worst table per rule, then each phantom's threshold and IoU."""
    features = sorted({f for per_feature in scored.values() for f in per_feature})
    lines = [f"{'rule':11s}" + "".join(f" {f + ' mean / worst':>26s}" for f in features)]
    for rule, per_feature in scored.items():
        cells = []
        for feature in features:
            ious = [iou for _, _, iou in per_feature.get(feature, [])]
            cells.append(f"{np.mean(ious):.3f} / {np.min(ious):.3f} ({len(ious)})" if ious else "-")
        lines.append(f"{rule:11s}" + "".join(f" {c:>26s}" for c in cells))
    lines.append("")
    for rule, per_feature in scored.items():
        for feature in features:
            picks = ", ".join(f"{p} {t:.2f}:{iou:.3f}" for p, t, iou in per_feature[feature])
            lines.append(f"{rule:11s} {feature:12s} {picks}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("json", type=Path, nargs="+", help="bench_accuracy.py --json outputs")
    parser.add_argument("--method", default="default", help="the bench_accuracy method to score")
    parser.add_argument("--rules", nargs="+", choices=[*RULES, ORACLE], default=[*RULES, ORACLE])
    args = parser.parse_args(argv)
    phantoms = [p for path in args.json for p in json.loads(path.read_text())["phantoms"]]
    print(format_report(score_rules(phantoms, args.method, args.rules)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
