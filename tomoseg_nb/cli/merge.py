"""``tomoseg-nb merge``: competitive merging of feature probability maps into one label volume."""

from __future__ import annotations

import argparse

from ._common import add_overwrite


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="merge feature probability maps into one label volume",
        description=(
            "EMAN2 competitive merge: each voxel gets the most probable feature above its threshold, "
            "or 0 (background). Writes LABELS.mrc and the name map LABELS.json next to it."
        ),
    )
    parser.add_argument("maps", nargs="+", metavar="SEG", help="probability maps of one tomogram")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.8,
        metavar="T",
        help="'nothing' level for every map (0.8)",
    )
    parser.add_argument(
        "--thresholds",
        metavar="T1,T2,...",
        help="one threshold per map, in order (overrides --threshold)",
    )
    parser.add_argument(
        "--names",
        metavar="A,B,...",
        help="feature names, in order (default: from TOMO__FEATURE.mrc)",
    )
    parser.add_argument("--out", required=True, metavar="LABELS.mrc", help="label volume to write")
    parser.add_argument(
        "--emit", default="", metavar="A,B", help="features that win competitions (Ais emit)"
    )
    parser.add_argument(
        "--absorb",
        default="",
        metavar="A,B",
        help="features zeroed wherever an emitting feature is more probable (Ais absorb)",
    )
    parser.add_argument(
        "--colocalize",
        action="append",
        default=[],
        metavar="TARGET:PARTNER:RADIUS",
        help="keep TARGET only within RADIUS Angstrom of PARTNER (repeatable)",
    )
    parser.add_argument(
        "--avoid",
        action="append",
        default=[],
        metavar="TARGET:PARTNER:RADIUS",
        help="drop TARGET within RADIUS Angstrom of PARTNER (repeatable)",
    )
    parser.add_argument(
        "--slab", type=int, default=16, metavar="N", help="slices merged at a time (16)"
    )
    add_overwrite(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..merge import merge_files

    thresholds = _floats(args.thresholds, "--thresholds") if args.thresholds else args.threshold
    result = merge_files(
        args.maps,
        args.out,
        threshold=thresholds,
        names=_names(args.names) if args.names else None,
        emit=_names(args.emit),
        absorb=_names(args.absorb),
        colocalize=[_rule(text, "--colocalize") for text in args.colocalize],
        avoid=[_rule(text, "--avoid") for text in args.avoid],
        slab_size=args.slab,
        overwrite=args.overwrite,
    )
    total = sum(result.voxel_counts.values())
    for value, name in result.names.items():
        share = 100.0 * result.voxel_counts.get(name, 0) / max(total, 1)
        print(f"{value:3d} {name:<20s} {share:6.2f}% of voxels")
    print(result.labels_path)
    print(result.names_path)
    return 0


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _floats(text: str, option: str) -> list[float]:
    from ..errors import BadInputError

    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise BadInputError(
            f"{option} {text!r}: expected numbers separated by commas, e.g. 0.8,0.6"
        ) from None


def _rule(text: str, option: str) -> tuple[str, str, float]:
    from ..errors import BadInputError

    parts = text.split(":")
    try:
        target, partner, radius = parts
        return target.strip(), partner.strip(), float(radius)
    except ValueError:
        raise BadInputError(
            f"{option} {text!r}: expected TARGET:PARTNER:RADIUS with RADIUS in Angstrom, "
            "e.g. ribosome:membrane:100"
        ) from None
