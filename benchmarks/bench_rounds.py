"""Correction rounds over the phantom suite: suggested tiles against random ones, round by round.

Per phantom of a half of ``synthetic.suite``: the simulated annotator's first tiles and the first
training (``evaluate``, kept in a scratch folder), then two branches from that same start - rounds
of ``--round-tiles`` tiles per feature chosen by ``suggest.suggest_tiles`` ("suggested") or by
``suggest.random_tiles`` ("random", the control), each painted from the truth and followed by
fine-tuning every network (``evaluate.correction_round``). Sharing the first training keeps the
comparison paired and halves its cost. Prints, per branch and round, the mean IoU per feature
over the phantoms, the worst feature's mean, and the mean seconds of a round per feature
(suggest + paint + fine-tune + segment the whole tomogram).

Choose settings on ``--half development`` only; ``--half held-back`` reports, never tunes.
``--branches`` names the branches grown from the shared start: ``random``, ``suggested`` (the
tile score's default power, ``suggest.TILE_SCORE_POWER``), ``suggested:P`` (power ``P`` of
``suggest_tiles``: a larger power favours tiles where a few pixels - a thin feature - are unsure
over tiles of faint haze), ``mixed`` (``k - k // 2`` suggested, the rest random) or
``unchanged`` (the same fine-tuning with no tile added: what a
round's own retraining moves, the floor a difference between branches must clear). Every round
also records the IoU at each threshold of ``evaluate.THRESHOLD_SWEEP`` (``iou_by_threshold``), so
a change that comes from the chosen threshold can be told from one in the map.
Comparing two powers side by side, without the random control::

    .venv/bin/python benchmarks/bench_rounds.py --branches suggested:1 suggested:4 --json p.json

The issue's measurement (two rounds of 5 tiles, the protocol's first round, default network)::

    .venv/bin/python benchmarks/bench_rounds.py --half held-back --json rounds.json

A small first look (smaller phantoms, fewer tiles and epochs; not comparable with the above)::

    .venv/bin/python benchmarks/bench_rounds.py --shape 32 192 192 --phantoms 2 --n-negative 30 \\
        --epochs 4 --round-epochs 2 --json small-rounds.json
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _suite_runs import (
    add_settings_argument,
    add_suite_arguments,
    apply_settings,
    run_over_suite,
    suite_setup,
    training_settings,
)

from tomoseg_nb.annotations import Project
from tomoseg_nb.evaluate import PROJECT_NAME, correction_round, evaluate
from tomoseg_nb.suggest import ROUND_SELECTIONS, TILE_SCORE_POWER
from tomoseg_nb.synthetic.suite import PhantomSpec
from tomoseg_nb.training_config import DEFAULT_TRAINING, TrainingConfig
from tomoseg_nb.volume import open_volume, write_volume

FEATURES = {"membrane": 1, "microtubule": 2, "ribosome": 3}
UNCHANGED = "unchanged"
"""The branch that fine-tunes every round on the tiles it already has (none added)."""
RECORDED = ("iou", "threshold", "iou_by_threshold")
"""What the JSON keeps of each training's scores (rounds add their seconds and tiles)."""


def run_phantom(
    spec: PhantomSpec,
    *,
    shape: tuple[int, int, int],
    n_positive: int,
    n_negative: int,
    config: TrainingConfig,
    round_config: TrainingConfig,
    rounds: int,
    round_tiles: int,
    branches: Sequence[str],
) -> dict[str, Any]:
    """First training once, then ``rounds`` rounds of each branch from that same start."""
    phantom = spec.build(shape)
    with tempfile.TemporaryDirectory(prefix="bench-rounds-") as scratch:
        path = write_volume(
            Path(scratch) / "tomogram.mrc", phantom.tomogram, voxel_size=phantom.voxel_size
        )
        start = Path(scratch) / "start"
        first = evaluate(
            path,
            phantom.labels,
            FEATURES,
            keep=start,
            config=config,
            n_positive=n_positive,
            n_negative=n_negative,
            skip_absent=True,
        )
        scores = first["features"]
        print("  first   " + _ious({name: s["iou"] for name, s in scores.items()}), flush=True)
        volume = open_volume(path, ndim=3)
        selections: dict[str, list[dict[str, Any]]] = {}
        for label in branches:
            selection, suggest_power = parse_branch(label)
            branch = Path(scratch) / label.replace(":", "-")
            shutil.copytree(start, branch)
            project = Project.open(branch / PROJECT_NAME)
            thresholds = {name: s["threshold"] for name, s in scores.items()}
            done = []
            try:
                for number in range(1, rounds + 1):
                    result = correction_round(
                        project,
                        volume,
                        phantom.labels,
                        {name: FEATURES[name] for name in scores},
                        branch,
                        thresholds=thresholds,
                        tiles=0 if label == UNCHANGED else round_tiles,
                        selection=selection,
                        config=round_config,
                        seed=config.seed + number,
                        suggest_power=suggest_power,
                    )
                    done.append(
                        {
                            name: {
                                key: r[key]
                                for key in (
                                    *RECORDED,
                                    "round_seconds",
                                    "added",
                                    "added_positive",
                                    "tiles",
                                )
                            }
                            for name, r in result.items()
                        }
                    )
                    # the next round suggests on these networks' maps, at their own thresholds
                    thresholds = {name: r["threshold"] for name, r in result.items()}
                    ious = {name: r["iou"] for name, r in result.items()}
                    added = " ".join(f"{r['added']}" for r in result.values())
                    print(f"  {label:12s}{number} " + _ious(ious) + f" (tiles {added})", flush=True)
            finally:
                project.close()
            selections[label] = done
    return {
        "spec": spec.to_dict(),
        "shape": list(phantom.labels.shape),
        "first": {
            name: {key: s[key] for key in (*RECORDED, "train_seconds")}
            for name, s in scores.items()
        },
        "rounds": selections,
        "skipped": first["skipped"],
    }


def parse_branch(label: str) -> tuple[str, float]:
    """``"random"``, ``"suggested"``, ``"suggested:P"``, ``"mixed"`` or ``"unchanged"`` ->
    (selection, tile-score power); ``unchanged`` chooses no tile, so its selection does not
    matter."""
    if label == UNCHANGED:
        return "random", TILE_SCORE_POWER
    selection, _, power = label.partition(":")
    if selection not in ROUND_SELECTIONS or (power and selection != "suggested"):
        raise argparse.ArgumentTypeError(
            f"unknown branch {label!r}: give random, suggested, suggested:POWER, mixed or "
            f"{UNCHANGED}"
        )
    try:
        value = float(power) if power else TILE_SCORE_POWER
    except ValueError:
        raise argparse.ArgumentTypeError(f"branch {label!r}: {power!r} is not a number") from None
    if not (math.isfinite(value) and value >= 1):  # suggest_tiles refuses it too, but only
        # after the first training: minutes later
        raise argparse.ArgumentTypeError(f"branch {label!r}: the power must be a number >= 1")
    return selection, value


def _branch(label: str) -> str:
    parse_branch(label)
    return label


def _ious(ious: dict[str, float]) -> str:
    return " ".join(f"{name} {iou:.3f}" for name, iou in ious.items())


def summarise(phantoms: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    """Per branch and round (0 = the shared first training): mean IoU per feature, seconds, and
    how many tiles a round really added per feature (fewer than asked when no more fit)."""
    summary: dict[str, Any] = {}
    for branch in phantoms[0]["rounds"] if phantoms else ():
        rows = []
        for number in range(rounds + 1):
            per_feature: dict[str, float] = {}
            seconds, added = [], []
            for feature in FEATURES:
                ious = []
                for p in phantoms:
                    if feature not in p["first"]:
                        continue
                    if number == 0:
                        ious.append(p["first"][feature]["iou"])
                    else:
                        entry = p["rounds"][branch][number - 1][feature]
                        ious.append(entry["iou"])
                        seconds.append(entry["round_seconds"])
                        added.append(len(entry["tiles"]))
                if ious:
                    per_feature[feature] = float(np.mean(ious))
            rows.append(
                {
                    "round": number,
                    "mean_iou": per_feature,
                    "worst_feature_iou": min(per_feature.values()) if per_feature else None,
                    "seconds_per_feature": float(np.mean(seconds)) if seconds else None,
                    "tiles_per_feature": float(np.mean(added)) if added else None,
                }
            )
        summary[branch] = rows
    return summary


def format_table(summary: dict[str, Any]) -> str:
    """One row per branch and round: mean IoU per feature, worst feature, round seconds, tiles
    added per feature."""
    header = f"{'branch':12s}{'round':>6s}" + "".join(f"{f:>13s}" for f in FEATURES)
    lines = [header + f"{'worst':>8s}{'s/round/feature':>17s}{'tiles/feature':>15s}"]
    for branch, rows in summary.items():
        for row in rows:
            cells = [
                f"{row['mean_iou'][f]:13.3f}" if f in row["mean_iou"] else f"{'-':>13s}"
                for f in FEATURES
            ]
            worst = row["worst_feature_iou"]
            seconds = row["seconds_per_feature"]
            tiles = row.get("tiles_per_feature")
            lines.append(
                f"{branch:12s}{row['round']:6d}" + "".join(cells)
                + (f"{worst:8.3f}" if worst is not None else f"{'-':>8s}")
                + (f"{seconds:17.1f}" if seconds is not None else f"{'-':>17s}")
                + (f"{tiles:15.1f}" if tiles is not None else f"{'-':>15s}")
            )  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_suite_arguments(parser)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--round-tiles", type=int, default=5)
    parser.add_argument("--epochs", type=int, help="first training's epochs (a quick look only)")
    parser.add_argument(
        "--round-epochs",
        type=int,
        help="fine-tuning epochs per round (default: the config's fine_tune_epochs)",
    )
    parser.add_argument("--arch", help="network architecture (default: the project's)")
    parser.add_argument(
        "--branches",
        type=_branch,
        nargs="+",
        default=["suggested", "random"],  # the comparison
        help="branches from the shared start: random, suggested, suggested:POWER (suggest_tiles' "
        f"power of the tile score; suggested alone uses {TILE_SCORE_POWER}), mixed (half "
        f"suggested, rounded up, the rest random), {UNCHANGED} "
        "(fine-tuning with no tile added: the control for the retraining itself)",
    )
    add_settings_argument(parser)
    args = parser.parse_args(argv)
    settings = training_settings(args)
    if len(set(args.branches)) < len(args.branches):  # one label, one branch in the JSON
        parser.error(f"--branches {' '.join(args.branches)}: a branch is named twice")
    config = apply_settings(DEFAULT_TRAINING, settings)
    if args.arch is not None:
        config = config.replace(arch=args.arch)
    if args.epochs is not None:
        config = config.replace(epochs=args.epochs)
    round_config = config
    if args.round_epochs is not None:
        round_config = config.replace(fine_tune_epochs=args.round_epochs)
    setup = {
        **suite_setup(args),
        "rounds": args.rounds,
        "round_tiles": args.round_tiles,
        "config": config.to_dict(),
        "round_epochs": round_config.fine_tune_epochs,
        "branches": args.branches,
    }
    phantoms, _ = run_over_suite(
        "bench_rounds",
        args,
        setup,
        lambda spec, shape: run_phantom(
            spec,
            shape=shape,
            n_positive=args.n_positive,
            n_negative=args.n_negative,
            config=config,
            round_config=round_config,
            rounds=args.rounds,
            round_tiles=args.round_tiles,
            branches=args.branches,
        ),
        lambda done: summarise(done, args.rounds),
    )
    print(format_table(summarise(phantoms, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
