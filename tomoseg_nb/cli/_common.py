"""Argument helpers shared by the sub-commands."""

from __future__ import annotations

import argparse

from ..errors import BadInputError


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that exist")


def parse_feature_ids(items: list[str]) -> dict[str, int]:
    """``["membrane=1", "ribosome=3"]`` -> ``{"membrane": 1, "ribosome": 3}``."""
    features: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.strip().isdigit():
            raise BadInputError(f"--feature {item!r}: expected NAME=ID, e.g. --feature ribosome=3")
        features[name.strip()] = int(value)
    return features
