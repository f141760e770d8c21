"""``tomoseg-nb evaluate``: the simulated annotator's protocol, scored against ground-truth labels."""

from __future__ import annotations

import argparse

from ..suggest import ROUND_SELECTIONS
from ..training_config import DEFAULT_TRAINING
from ._common import (
    add_network_options,
    add_other_features_switch,
    add_overwrite,
    add_threshold,
    add_z_context,
    parse_feature_ids,
    whole_number,
    with_given_options,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score the protocol on a tomogram with ground truth",
        description=(
            "Per feature: choose N positive and M negative tiles from the truth as a person would, train "
            "(or fit the random-forest baseline on the same tiles), segment the whole tomogram and "
            "report IoU, Dice, precision, recall and timings as JSON."
        ),
    )
    parser.add_argument("--tomogram", required=True, help="tomogram file")
    parser.add_argument("--truth", required=True, metavar="LABELS.mrc", help="integer label volume")
    parser.add_argument(
        "--feature",
        action="append",
        required=True,
        metavar="NAME=ID",
        help="feature and its label id (repeat)",
    )
    parser.add_argument(
        "--n-pos", type=whole_number(1), default=10, help="positive tiles per feature (default 10)"
    )
    parser.add_argument(
        "--n-neg",
        type=whole_number(0),
        default=100,
        help="negative tiles per feature (default 100)",
    )
    parser.add_argument(
        "--tile-size", type=whole_number(8), default=64, help="tile size in pixels (default 64)"
    )
    parser.add_argument(
        "--method", choices=("cnn", "rf"), default="cnn", help="network or random-forest baseline"
    )
    add_network_options(parser)
    parser.add_argument(
        "--seed",
        type=whole_number(0),
        default=DEFAULT_TRAINING.seed,
        help="random seed (tiles, initialisation, augmentation)",
    )
    parser.add_argument(
        "--rounds",
        type=whole_number(0),
        default=0,
        help="correction rounds after the first training: add tiles, retrain (default 0)",
    )
    parser.add_argument(
        "--round-tiles",
        type=whole_number(1),
        default=5,
        help="tiles added per feature in each round (default 5)",
    )
    parser.add_argument(
        "--round-selection",
        choices=ROUND_SELECTIONS,
        default="suggested",
        help="how a round's tiles are chosen: the suggestion score, at random (the control), or "
        "mixed (half suggested, rounded up, the rest random)",
    )
    parser.add_argument(
        "--round-epochs",
        type=whole_number(1),
        default=None,
        help=f"epochs of each round's retraining (default: {DEFAULT_TRAINING.fine_tune_epochs} "
        "when fine-tuning, --epochs with --retrain-from-scratch)",
    )
    parser.add_argument(
        "--retrain-from-scratch",
        action="store_true",
        help="retrain each round from new random weights instead of fine-tuning",
    )
    parser.add_argument(
        "--keep", metavar="DIR", help="keep models, probability maps and projects here"
    )
    parser.add_argument(
        "--json", required=True, metavar="OUT.json", help="where to write the scores"
    )
    add_z_context(parser)
    add_threshold(parser)
    add_other_features_switch(parser)
    add_overwrite(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_path, write_json_atomic
    from ..evaluate import evaluate, method_config

    config = method_config(args.method).replace(
        epochs=args.epochs,
        engine=args.engine,
        seed=args.seed,
        other_features_as_negatives=not args.ignore_other_features,
    )
    config = with_given_options(config, args)
    check_output_path(args.json, args.overwrite)  # fail before the work, not after
    report = evaluate(
        args.tomogram,
        args.truth,
        parse_feature_ids(args.feature),
        keep=args.keep,
        overwrite=args.overwrite,
        method=args.method,
        config=config,
        n_positive=args.n_pos,
        n_negative=args.n_neg,
        tile_size=args.tile_size,
        rounds=args.rounds,
        round_tiles=args.round_tiles,
        round_selection=args.round_selection,
        round_epochs=args.round_epochs,
        fine_tune=not args.retrain_from_scratch,
    )
    write_json_atomic(args.json, report, overwrite=args.overwrite)
    print(
        f"{'feature':<14}{'IoU':>7}{'Dice':>7}{'prec':>7}{'recall':>7}{'train s':>9}{'Mvox/s':>8}"
    )
    for name, row in report["features"].items():
        print(
            f"{name:<14}{row['iou']:7.3f}{row['dice']:7.3f}{row['precision']:7.3f}{row['recall']:7.3f}"
            f"{row['train_seconds']:9.1f}{row['voxels_per_second'] / 1e6:8.2f}"
        )
    if args.rounds:
        print(f"\nIoU per round ({args.round_selection} tiles, {args.round_tiles} per round)")
        print(f"{'feature':<14}" + "".join(f"{r:>7}" for r in range(args.rounds + 1)) + "  round s")
        for name, row in report["features"].items():
            seconds = [r["round_seconds"] for r in row["rounds"]]
            print(
                f"{name:<14}" + "".join(f"{v:7.3f}" for v in row["iou_per_round"])
                + f"{sum(seconds) / len(seconds):9.1f}"
            )  # fmt: skip
    return 0
