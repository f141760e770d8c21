"""``tomoseg-nb demo``: the whole workflow on the built-in phantom, headless, with a report."""

from __future__ import annotations

import argparse

from ..training_config import DEFAULT_TRAINING
from ._common import add_network_options, add_overwrite, whole_number


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="whole pipeline on the built-in phantom, headless",
        description=(
            "Simulate a cellular tomogram, annotate it with the simulated annotator, train one network "
            "per feature (membrane, microtubule, ribosome), segment, merge, pick ribosomes, export them "
            "for RELION 5 and score everything against the ground truth in DIR/report.md."
        ),
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--shape",
        type=int,
        nargs=3,
        default=None,
        metavar=("Z", "Y", "X"),
        help="phantom shape (default 48 256 256)",
    )
    parser.add_argument("--seed", type=whole_number(0), default=0, help="random seed (default 0)")
    add_network_options(parser)
    add_overwrite(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import DEFAULT_SHAPE, run_demo

    config = DEFAULT_TRAINING.replace(seed=args.seed, epochs=args.epochs, engine=args.engine)
    if args.arch is not None:
        config = config.replace(arch=args.arch)
    report = run_demo(
        args.out,
        shape=tuple(args.shape) if args.shape else DEFAULT_SHAPE,
        config=config,
        overwrite=args.overwrite,
    )
    for name, row in report["features"].items():
        print(
            f"{name:<12} IoU {row['iou']:.3f} (random forest {report['baseline'][name]['iou']:.3f})  "
            f"Dice {row['dice']:.3f}  merged IoU {report['merged'][name]:.3f}"
        )
    for name, reason in report["skipped"].items():
        print(f"{name:<12} skipped: {reason}")
    picking = report["ribosome_picking"]
    if picking is not None:
        print(
            f"ribosome picks: {picking['picks']}, F1 {picking['f1']:.3f} (P {picking['precision']:.3f}, R {picking['recall']:.3f})"
        )
    print(f"report: {args.out}/report.md ({report['seconds']:.0f} s)")
    return 0
