"""Segmentation accuracy over the phantom suite: mean and worst IoU per feature, for each method.

A user's tomogram is always data the project has never seen, so one phantom says little: this runs
``evaluate`` (the simulated annotator's 10 positive + 100 negative tiles per feature, train, segment
the whole tomogram, score IoU against the truth) on every phantom of a half of
``synthetic.suite`` and reports, per feature, the mean and the worst IoU over the phantoms, with
the mean training seconds per feature. Methods, all on the very same tiles of each phantom:

- ``default``: ``TrainingConfig()`` as it stands (the project's default architecture and recipe);
- ``eman2-arch``: the same with ``arch="eman2"`` (the seed's network, the project's recipe);
- ``rf``: the random-forest pixel classifier baseline;
- ``eman2-recipe``: ``EMAN2_RECIPE``, EMAN2 tomoseg's training recipe followed exactly - the floor;
- ``default-z0``, ``default-z1``: the default with z context 0 or 1 instead of its 2
  (``TrainingConfig.z_context``: 1 or 3 slices as input channels instead of 5). Alternatives, run
  only when named in ``--methods``.

Choose defaults on ``--half development`` only. ``--half held-back`` is for reporting how the
chosen defaults generalise, never for choosing them (see ``synthetic.suite``).

Run from the repository root (the full development half, about 10 CPU-hours on 2 cores)::

    .venv/bin/python benchmarks/bench_accuracy.py --half development --json dev.json

A small first look (smaller phantoms, fewer tiles and epochs: the figures are not comparable with
the full protocol's)::

    .venv/bin/python benchmarks/bench_accuracy.py --shape 48 256 256 --phantoms 2 \\
        --n-negative 40 --epochs 5 --json small.json

The default against single-slice input, on the development half::

    .venv/bin/python benchmarks/bench_accuracy.py --half development \\
        --methods default default-z0 --json dev-z.json
"""

from __future__ import annotations

import argparse
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

from tomoseg_nb.evaluate import evaluate, method_config
from tomoseg_nb.synthetic.suite import PhantomSpec
from tomoseg_nb.training_config import DEFAULT_TRAINING, EMAN2_RECIPE, TrainingConfig
from tomoseg_nb.volume import write_volume

FEATURES = {"membrane": 1, "microtubule": 2, "ribosome": 3}
METHODS: dict[str, tuple[str, TrainingConfig]] = {
    "default": ("cnn", DEFAULT_TRAINING),
    "eman2-arch": ("cnn", DEFAULT_TRAINING.replace(arch="eman2")),
    "rf": ("rf", method_config("rf")),
    "eman2-recipe": ("cnn", EMAN2_RECIPE),
    "default-z0": ("cnn", DEFAULT_TRAINING.replace(z_context=0)),
    "default-z1": ("cnn", DEFAULT_TRAINING.replace(z_context=1)),
}
DEFAULT_METHODS = ("default", "eman2-arch", "rf", "eman2-recipe")
"""What runs without ``--methods``: the issue's table; candidates are asked for by name."""


def run_phantom(
    spec: PhantomSpec,
    methods: Sequence[str],
    *,
    shape: tuple[int, int, int],
    n_positive: int,
    n_negative: int,
    epochs: int | None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every method on one phantom, the tomogram read from an MRC file as a user's would be;
    ``settings`` change every network's config (not the forest's)."""
    phantom = spec.build(shape)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as scratch:
        path = write_volume(
            Path(scratch) / "tomogram.mrc", phantom.tomogram, voxel_size=phantom.voxel_size
        )
        for name in methods:
            method, config = METHODS[name]
            if epochs is not None:
                config = config.replace(epochs=epochs)
            if settings and method == "cnn":
                config = apply_settings(config, settings)
            report = evaluate(
                path,
                phantom.labels,
                FEATURES,
                method=method,
                config=config,
                n_positive=n_positive,
                n_negative=n_negative,
                skip_absent=True,
            )
            results[name] = {
                "features": {
                    feature: {
                        key: scores[key]
                        for key in (
                            "iou",
                            "precision",
                            "recall",
                            "threshold",
                            "train_seconds",
                            "iou_by_threshold",
                            "validation_threshold",
                            "iou_at_validation_threshold",
                            "tiles_threshold",
                            "iou_at_tiles_threshold",
                            "tiles_counts",
                            "volume_counts",
                        )
                        if key in scores
                    }
                    for feature, scores in report["features"].items()
                },
                "skipped": report["skipped"],
                "config": report["config"],
            }
            ious = " ".join(
                f"{feature} {scores['iou']:.3f}" for feature, scores in report["features"].items()
            )
            print(f"  {name:13s} {ious}", flush=True)
            print(f"  {'':13s} {threshold_diagnostics(report['features'])}", flush=True)
    return {"spec": spec.to_dict(), "shape": list(phantom.labels.shape), "methods": results}


CHOSEN_THRESHOLDS = {"validation_threshold": "held-out tiles", "tiles_threshold": "all tiles"}
"""``evaluate.TILE_THRESHOLDS``: what a user could choose from the painted tiles, no truth."""


def threshold_diagnostics(features: dict[str, Any]) -> str:
    """Per feature: the best IoU over the threshold sweep (and where), and the IoU at the
    thresholds chosen on the painted tiles: is the map wrong, or only the threshold?"""
    parts = []
    for feature, scores in features.items():
        sweep = scores.get("iou_by_threshold")
        if not sweep:
            continue
        best = max(sweep, key=sweep.get)
        text = f"{feature} best {sweep[best]:.3f} @ {best}"
        for key, label in CHOSEN_THRESHOLDS.items():
            if scores.get(f"iou_at_{key}") is not None:
                text += f", {label}' {scores[key]:.2f}: {scores[f'iou_at_{key}']:.3f}"
        parts.append(text)
    return "; ".join(parts)


def summarise(phantoms: list[dict[str, Any]], methods: Sequence[str]) -> dict[str, Any]:
    """Per method and feature: mean and worst IoU over the phantoms that had the feature."""
    summary: dict[str, Any] = {}
    for name in methods:
        per_feature = {}
        for feature in FEATURES:
            scores = [
                p["methods"][name]["features"][feature]
                for p in phantoms
                if feature in p["methods"][name]["features"]
            ]
            if not scores:
                continue
            ious = [s["iou"] for s in scores]
            per_feature[feature] = {
                "mean_iou": float(np.mean(ious)),
                "worst_iou": float(np.min(ious)),
                "n_phantoms": len(ious),
                "mean_train_seconds": float(np.mean([s["train_seconds"] for s in scores])),
            }
            for key in CHOSEN_THRESHOLDS:
                chosen = [s.get(f"iou_at_{key}") for s in scores]
                if all(iou is not None for iou in chosen):
                    per_feature[feature][f"at_{key}"] = {
                        "mean_iou": float(np.mean(chosen)),
                        "worst_iou": float(np.min(chosen)),
                    }
        summary[name] = per_feature
    return summary


def format_table(summary: dict[str, Any]) -> str:
    """One row per method: per feature ``mean / worst (n)``, then train seconds per feature."""
    header = f"{'method':13s}" + "".join(f" {f + ' mean/worst (n)':>26s}" for f in FEATURES)
    lines = [header + f" {'train s/feature':>16s}"]
    for name, per_feature in summary.items():
        cells = []
        for feature in FEATURES:
            if feature in per_feature:
                s = per_feature[feature]
                cells.append(f"{s['mean_iou']:.3f} / {s['worst_iou']:.3f} ({s['n_phantoms']})")
            else:
                cells.append("-")
        seconds = [s["mean_train_seconds"] for s in per_feature.values()]
        train = f"{np.mean(seconds):.1f}" if seconds else "-"
        lines.append(f"{name:13s}" + "".join(f" {c:>26s}" for c in cells) + f" {train:>16s}")
        for key, label in CHOSEN_THRESHOLDS.items():  # diagnostics: thresholds from the tiles
            chosen = [
                per_feature[f].get(f"at_{key}") if f in per_feature else None for f in FEATURES
            ]
            if any(c is not None for c in chosen):
                row = [f"{c['mean_iou']:.3f} / {c['worst_iou']:.3f}" if c else "-" for c in chosen]
                cells_at = "".join(f" {c:>26s}" for c in row)
                lines.append(f"{'':13s}{cells_at}  at the {label}' threshold")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_suite_arguments(parser)
    parser.add_argument(
        "--methods", nargs="+", choices=list(METHODS), default=list(DEFAULT_METHODS)
    )
    parser.add_argument(
        "--epochs", type=int, help="override every network's epochs (a quick look only)"
    )
    add_settings_argument(parser)
    args = parser.parse_args(argv)
    settings = training_settings(args)
    setup = {**suite_setup(args), "epochs_override": args.epochs, "methods": args.methods}
    if settings:
        setup["settings"] = settings
    phantoms, _ = run_over_suite(
        "bench_accuracy",
        args,
        setup,
        lambda spec, shape: run_phantom(
            spec,
            args.methods,
            shape=shape,
            n_positive=args.n_positive,
            n_negative=args.n_negative,
            epochs=args.epochs,
            settings=settings,
        ),
        lambda done: summarise(done, args.methods),
    )
    print(format_table(summarise(phantoms, args.methods)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
