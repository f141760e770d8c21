"""``tomoseg-nb boxer train|pick``: the 2D CNN particle picker for micrographs."""

from __future__ import annotations

import argparse

from ._common import add_overwrite, whole_number

FORMATS = ("star", "box", "csv")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "boxer",
        help="2D CNN particle picker for micrographs (train, pick)",
        description="Pick particles in micrographs with two small networks trained from 10-15 boxed "
        "good particles, background and (optionally) bad boxes (contamination, aggregates).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    train = actions.add_parser(
        "train",
        help="train a boxer model from reference coordinates",
        description="Train the picker (good vs background) and, with --bad, the classifier (good vs "
        "bad). Coordinate files (.box, .star, .csv; pixels): one per micrograph in the same order, or "
        "one STAR file with rlnMicrographName. Writes a model folder (boxer.json, picker.keras, "
        "classifier.keras, references.npz).",
    )
    train.add_argument("--micrographs", nargs="+", required=True, metavar="M", help="micrographs")
    train.add_argument("--good", nargs="+", required=True, metavar="G", help="good particle boxes")
    train.add_argument("--background", nargs="+", required=True, metavar="B", help="empty boxes")
    train.add_argument("--bad", nargs="+", metavar="C", help="contamination / aggregate boxes")
    size = train.add_mutually_exclusive_group(required=True)
    size.add_argument("--box", type=float, metavar="N", help="box size in pixels (~1.5 diameters)")
    size.add_argument("--box-angstrom", type=float, metavar="A", help="box size in Angstrom")
    train.add_argument(
        "--pixel-size", type=float, metavar="A", help="A/pixel (default: the files')"
    )
    train.add_argument(
        "--epochs", type=whole_number(1), default=20, metavar="N", help="epochs per network"
    )
    train.add_argument("--seed", type=whole_number(0), default=0, metavar="S", help="random seed")
    train.add_argument("--out", required=True, metavar="MODEL", help="model folder to write")
    add_overwrite(train)
    train.set_defaults(func=run_train)

    pick = actions.add_parser(
        "pick",
        help="autopick micrographs with a boxer model",
        description="Write one coordinate file per micrograph, DIR/<micrograph>.<format>, in pixels.",
    )
    pick.add_argument(
        "micrographs", nargs="+", metavar="M", help="micrographs (MRC, TIFF, PNG/JPEG)"
    )
    pick.add_argument("--model", required=True, metavar="MODEL", help="boxer model folder")
    pick.add_argument("--out", required=True, metavar="DIR", help="folder for the pick files")
    pick.add_argument("--format", choices=FORMATS, default="star", help="pick file format")
    pick.add_argument(
        "--score-threshold",
        type=float,
        metavar="S",
        help="picker threshold as a picker score (about 1 at a particle centre, 0 on background; "
        "default: calibrated at training from the references)",
    )
    pick.add_argument(
        "--threshold",
        type=float,
        metavar="T",
        help="picker threshold in sigmas above the map mean instead (e2boxer's; template matching's "
        "default is 1)",
    )
    pick.add_argument(
        "--min-distance",
        type=float,
        metavar="D",
        help="merge peaks closer than D pixels (default: the particle radius, box / 3)",
    )
    pick.add_argument(
        "--classifier-threshold",
        type=float,
        metavar="C",
        help="veto candidates scoring below C (0-1)",
    )
    pick.add_argument("--method", choices=("cnn", "template"), default="cnn", help="picking method")
    pick.add_argument("--pixel-size", type=float, metavar="A", help="A/pixel (default: the files')")
    add_overwrite(pick)
    pick.set_defaults(func=run_pick)


def run_train(args: argparse.Namespace) -> int:
    from ..atomic import check_output_path
    from ..boxer.files import coordinates_per_micrograph, read_micrograph
    from ..boxer.model import save_boxer
    from ..boxer.references import collect_references
    from ..boxer.train import train_boxer
    from ..errors import BadInputError

    check_output_path(args.out, args.overwrite)  # fail before training, not after
    micrographs = [read_micrograph(path, pixel_size=args.pixel_size) for path in args.micrographs]
    known = [m.pixel_size for m in micrographs if m.pixel_size is not None]
    # Files without a pixel size (PNG, an unset MRC header) are taken to share the others'.
    sizes = [m.pixel_size or (known[0] if known else 1.0) for m in micrographs]
    if args.box_angstrom is not None:
        if not known:
            raise BadInputError(
                f"{micrographs[0].path}: has no pixel size, so --box-angstrom cannot be converted; "
                "give --pixel-size or --box in pixels"
            )
        box_px = args.box_angstrom / sizes[0]
    else:
        box_px = args.box
    coordinates = {
        kind: coordinates_per_micrograph(files, micrographs, kind)
        for kind, files in (("good", args.good), ("background", args.background), ("bad", args.bad))
        if files
    }
    references = collect_references(
        [m.image for m in micrographs],
        coordinates["good"],
        coordinates["background"],
        coordinates.get("bad"),
        box_px=box_px,
        pixel_sizes=sizes,
        names=[str(m.path) for m in micrographs],
    )
    model = train_boxer(references, epochs=args.epochs, seed=args.seed)
    path = save_boxer(model, args.out, overwrite=args.overwrite)
    counts = ", ".join(f"{n} {kind}" for kind, n in model.info.counts.items())
    classifier = "picker + classifier" if model.classifier is not None else "picker only (no --bad)"
    print(
        f"{path}: {classifier} from {counts} references, box {box_px:.0f} px at "
        f"{sizes[0]:g} A/px, {model.info.train_seconds:.0f} s; calibrated picker threshold "
        f"{model.info.score_threshold:.2f}"
    )
    return 0


def run_pick(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..atomic import check_output_path
    from ..boxer.files import pick_path, write_micrograph_picks
    from ..boxer.model import load_boxer
    from ..boxer.pick import autopick_micrographs
    from ..errors import BadInputError

    stems: dict[str, str] = {}
    for path in args.micrographs:  # refuse clashing or existing outputs before any work
        stem = Path(path).stem
        if stem in stems:
            raise BadInputError(
                f"{stems[stem]} and {path} have the same name, so their picks would go to the same "
                f"file; pick them into different --out folders"
            )
        stems[stem] = path
        check_output_path(pick_path(args.out, stem, args.format), args.overwrite)
    model = load_boxer(args.model)
    results = autopick_micrographs(
        model,
        args.micrographs,
        pixel_size=args.pixel_size,
        threshold=args.threshold,
        score_threshold=args.score_threshold,
        classifier_threshold=args.classifier_threshold,
        min_distance_px=args.min_distance,
        method=args.method,
    )
    total = 0
    for result in results:
        picks = result.picks
        out = write_micrograph_picks(
            picks, args.out, args.format, box_px=result.box_px, overwrite=args.overwrite
        )
        vetoed = len(result.candidates) - len(picks)
        print(
            f"{out}: {len(picks)} picks at picker threshold {result.score_threshold:.3g}"
            + (f", {vetoed} vetoed by the classifier" if vetoed else "")
        )
        total += len(picks)
    print(f"{total} picks in {len(args.micrographs)} micrograph(s)")
    return 0
