"""``tomoseg-nb train``: train one feature's network from an annotation project."""

from __future__ import annotations

import argparse

from ..training_config import DEFAULT_TRAINING
from ._common import (
    add_network_options,
    add_other_features_switch,
    add_overwrite,
    add_threshold,
    add_z_context,
    whole_number,
    with_given_options,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a feature's network from an annotation project",
        description="Train the network of one feature from the project's painted tiles; writes "
        "MODEL.keras and its MODEL.json sidecar (feature, voxel size, preprocessing, threshold).",
    )
    parser.add_argument("--project", required=True, metavar="P", help="annotation project folder")
    parser.add_argument("--feature", required=True, metavar="NAME", help="feature to train")
    parser.add_argument("--out", required=True, metavar="MODEL.keras", help="model file to write")
    parser.add_argument(
        "--tomogram", metavar="T", help="tomogram to cut tiles from (default: the project's)"
    )
    add_network_options(parser)
    parser.add_argument(
        "--patience",
        type=whole_number(1),
        default=None,
        metavar="N",
        help="stop when the validation loss has not improved for N epochs (default: train all "
        "epochs, as EMAN2; with ~10 positive tiles the validation loss is too noisy to stop on)",
    )
    parser.add_argument(
        "--validation-fraction",
        type=float,
        default=DEFAULT_TRAINING.validation_fraction,
        metavar="F",
        help="hold this fraction (0-1) of the tiles out of training to measure a validation loss "
        f"(default {DEFAULT_TRAINING.validation_fraction:g}: every tile trains, as EMAN2; worth "
        "it with many tiles, e.g. with --patience)",
    )
    parser.add_argument(
        "--seed",
        type=whole_number(0),
        default=DEFAULT_TRAINING.seed,
        metavar="S",
        help="random seed",
    )
    parser.add_argument(
        "--binning", type=int, default=1, metavar="B", help="bin slices by B in y and x first"
    )
    add_z_context(parser)
    add_threshold(parser)
    add_other_features_switch(parser)
    add_overwrite(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..annotations import Project
    from ..atomic import check_output_path
    from ..errors import BadInputError
    from ..model_files import sidecar_path
    from ..training_config import DEFAULT_TRAINING, TrainingConfig

    if not args.out.endswith(".keras"):
        raise BadInputError(f"--out {args.out}: a model file must end in .keras")
    config = TrainingConfig(
        epochs=args.epochs,
        patience=args.patience,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        engine=args.engine,
        other_features_as_negatives=not args.ignore_other_features,
        recipe=replace(DEFAULT_TRAINING.recipe, binning=args.binning),
    )
    config = with_given_options(config, args)
    check_output_path(args.out, args.overwrite)  # fail before training, not after
    check_output_path(sidecar_path(args.out), args.overwrite)
    project = Project.open(args.project, read_only=True)
    # Keras loads only now: a mistake above is reported in a fraction of a second, not seconds.
    from ..models import save_model
    from ..train import train_feature

    model, info = train_feature(project, args.feature, config, volume=args.tomogram)
    path = save_model(model, info, args.out, overwrite=args.overwrite)
    history = info.history
    validation = (
        f", validation loss {min(history['val_loss']):.3f}" if "val_loss" in history else ""
    )
    z_note = f", z context {info.z_context}" if info.z_context else ""
    print(
        f"{path}: '{info.feature}' ({info.arch}{z_note}), {len(history['loss'])} epochs, "
        f"training loss {history['loss'][-1]:.3f}{validation}, threshold {info.threshold:g}"
    )
    return 0
