"""Argument helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import BadInputError

if TYPE_CHECKING:
    from ..training_config import TrainingConfig


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that exist")


def add_other_features_switch(parser: argparse.ArgumentParser) -> None:
    """``--ignore-other-features``: train only on a feature's own tiles."""
    parser.add_argument(
        "--ignore-other-features",
        action="store_true",
        help="do not train on the pixels painted for the project's other features as 'not this "
        "feature' (by default they are: it teaches touching features apart)",
    )


def add_network_options(parser: argparse.ArgumentParser) -> None:
    """``--arch --epochs --engine``: the network settings every training command takes.

    ``--arch`` stays None unless given, so the command's config keeps its own default.
    """
    from ..training_config import DEFAULT_TRAINING

    parser.add_argument(
        "--arch",
        default=None,
        help=f"network architecture (default {DEFAULT_TRAINING.arch}; eman2: the seed's)",
    )
    parser.add_argument(
        "--epochs",
        type=whole_number(1),
        default=DEFAULT_TRAINING.epochs,
        metavar="N",
        help=f"training epochs per network (default {DEFAULT_TRAINING.epochs}, as EMAN2)",
    )
    parser.add_argument(
        "--engine",
        choices=("auto", "keras", "fft"),
        default=DEFAULT_TRAINING.engine,
        help=f"convolution engine for training (default {DEFAULT_TRAINING.engine}: the faster "
        "one for the network on this machine)",
    )


def with_given_options(config: TrainingConfig, args: argparse.Namespace) -> TrainingConfig:
    """``config`` with ``--arch``, ``--z-context``, ``--threshold-beta`` and ``--threshold`` where
    given (None keeps its default); a given threshold is fixed (``threshold_from="fixed"``)."""
    for name in ("arch", "z_context", "threshold_beta"):
        if getattr(args, name, None) is not None:
            config = config.replace(**{name: getattr(args, name)})
    if getattr(args, "threshold", None) is not None:
        config = config.replace(threshold_from="fixed", threshold=args.threshold)
    return config


def add_threshold(parser: argparse.ArgumentParser) -> None:
    """``--threshold T``: store a fixed threshold with the network instead of choosing one;
    ``--threshold-beta B``: how the painted tiles choose it."""
    from ..training_config import DEFAULT_TRAINING

    parser.add_argument(
        "--threshold-beta",
        type=float,
        default=None,
        metavar="B",
        help="choose the network's threshold where F-beta over the painted tiles peaks (default "
        f"{DEFAULT_TRAINING.threshold_beta:g}: recall weighs B^2 times precision; 1: the IoU-best)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="T",
        help="store this probability (0-1) as the network's threshold (default: the one that "
        "best reproduces the painted masks over all tiles, chosen after training, see "
        "--threshold-beta; EMAN2: 0.8)",
    )


def add_z_context(parser: argparse.ArgumentParser) -> None:
    """``--z-context K``: neighbouring slices on each side as extra network input channels."""
    from ..training_config import DEFAULT_TRAINING

    parser.add_argument(
        "--z-context",
        type=whole_number(0),
        metavar="K",
        help="give the network K neighbouring slices on each side of a slice as extra input "
        f"channels (2.5D; default {DEFAULT_TRAINING.z_context}; 0: single slices, as EMAN2 and "
        "the random forest); saved with the model, so 'segment' applies it without being told",
    )


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: a whole number in ``minimum..maximum`` (seeds, epochs, counts, ports).

    Out-of-range values are refused by argparse with one line, before any work, instead of failing
    deep inside numpy (a negative seed) or Keras (zero epochs) with a traceback.
    """
    limits = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number {limits}, got {text!r}"
            ) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be a whole number {limits}, got {value}")
        return value

    return parse


def parse_feature_ids(items: list[str]) -> dict[str, int]:
    """``["membrane=1", "ribosome=3"]`` -> ``{"membrane": 1, "ribosome": 3}``."""
    features: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.strip().isdigit():
            raise BadInputError(f"--feature {item!r}: expected NAME=ID, e.g. --feature ribosome=3")
        features[name.strip()] = int(value)
    return features
