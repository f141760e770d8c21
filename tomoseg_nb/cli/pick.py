"""``tomoseg-nb pick``: particle or filament coordinates from a probability map, for RELION, copick..."""

from __future__ import annotations

import argparse

from ._common import add_overwrite

MODES = ("peak", "centroid", "distance", "filament")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pick",
        help="pick particles or filament points from a probability map",
        description=(
            "Threshold a feature's probability map and write one pick per particle (EMAN2 rules: "
            "3D components, peak, mass, minimum distance) or points along filaments, in the source "
            "tomogram's voxels, as RELION 5/4 STAR, copick, EMAN2, IMOD or CSV."
        ),
    )
    parser.add_argument(
        "map", metavar="SEG", help="probability map of one feature (MRC, TIFF, OME-Zarr)"
    )
    parser.add_argument(
        "--threshold", type=float, required=True, metavar="T", help="probability threshold"
    )
    parser.add_argument(
        "--min-distance",
        type=float,
        metavar="D",
        help="minimum distance between particles, in map voxels (about a particle radius)",
    )
    parser.add_argument("--out", required=True, metavar="PICKS", help="output file")
    parser.add_argument(
        "--format",
        metavar="FORMAT",
        help="relion5, relion4, copick, eman2, imod, csv or cryoet-ndjson (default: from the suffix)",
    )
    parser.add_argument(
        "--mode",
        default="peak",
        metavar="MODE",
        help="peak (EMAN2), centroid, distance (splits touching particles) or filament (default peak)",
    )
    frame = parser.add_argument_group("frame of the picks")
    frame.add_argument(
        "--tomogram",
        metavar="TOMO",
        help="tomogram the picks refer to: its shape, voxel size and origin are used, and the "
        "binning is the ratio of voxel sizes",
    )
    frame.add_argument(
        "--binning",
        type=float,
        metavar="B",
        help="tomogram voxels per map voxel (default 1, or from --tomogram)",
    )
    frame.add_argument(
        "--voxel-size", type=float, metavar="A", help="Angstrom per map voxel, overriding the file"
    )
    frame.add_argument(
        "--tomo-name", metavar="NAME", help="tomogram name in the output (default: from SEG)"
    )
    frame.add_argument(
        "--feature", metavar="NAME", help="feature name in the output (default: from SEG)"
    )
    rules = parser.add_argument_group("particle rules")
    rules.add_argument(
        "--diameter",
        type=float,
        metavar="A",
        help="particle diameter, Angstrom: unless given, --min-distance becomes its radius and "
        "--min-volume a quarter of its ball (keeps smaller complexes out)",
    )
    rules.add_argument(
        "--min-mass", type=float, default=20.0, metavar="M", help="minimum summed probability (20)"
    )
    rules.add_argument("--min-size", type=float, metavar="N", help="minimum particle size, voxels")
    rules.add_argument("--max-size", type=float, metavar="N", help="maximum particle size, voxels")
    rules.add_argument(
        "--min-volume", type=float, metavar="A3", help="minimum particle volume, cubic Angstrom"
    )
    rules.add_argument(
        "--max-volume", type=float, metavar="A3", help="maximum particle volume, cubic Angstrom"
    )
    rules.add_argument(
        "--edge",
        type=float,
        default=0.0,
        metavar="PX",
        help="drop picks this close to the x/y edges, map voxels",
    )
    filaments = parser.add_argument_group("filament mode")
    filaments.add_argument(
        "--spacing", type=float, metavar="A", help="distance between points, Angstrom"
    )
    filaments.add_argument(
        "--filament-radius",
        type=float,
        metavar="A",
        help="outer radius, Angstrom (microtubule 125, actin 35): bridges tube walls the map misses",
    )
    filaments.add_argument(
        "--prune-length",
        type=float,
        metavar="A",
        help="side branches shorter are removed, Angstrom",
    )
    filaments.add_argument(
        "--min-length", type=float, metavar="A", help="shorter filaments are dropped, Angstrom"
    )
    add_overwrite(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    import numpy as np

    from ..atomic import check_output_path
    from ..coords import FORMATS, write_picks
    from ..errors import BadInputError
    from ..picking import SourceFrame, find_particle_candidates, pick_filaments
    from ..volume import open_volume

    if args.mode not in MODES:
        raise BadInputError(f"unknown --mode {args.mode!r}; choose one of {', '.join(MODES)}")
    if args.format is not None and args.format not in FORMATS:
        raise BadInputError(f"unknown --format {args.format!r}; choose one of {', '.join(FORMATS)}")
    if args.mode == "filament" and args.spacing is None:
        raise BadInputError("filament mode needs --spacing (Angstrom between points, e.g. 82)")
    if args.mode != "filament" and args.min_distance is None and args.diameter is None:
        raise BadInputError(
            "particle picking needs --min-distance (map voxels, about a particle radius) or "
            "--diameter (Angstrom)"
        )
    if args.diameter is not None and not args.diameter > 0:
        raise BadInputError(
            f"--diameter must be a positive number of Angstrom, got {args.diameter}"
        )
    check_output_path(args.out, args.overwrite)

    with open_volume(args.map, ndim=3, voxel_size=args.voxel_size) as volume:
        probability = np.asarray(volume.data[...])
        voxel_size, origin, shape, map_path = (
            volume.voxel_size,
            volume.origin,
            volume.shape,
            volume.path,
        )
    tomogram_name, feature = _names(map_path.stem)
    # 0 is a mistake to report (SourceFrame does), not a missing value to default
    binning = args.binning if args.binning is not None else 1.0
    source_shape = None
    if args.tomogram:
        with open_volume(args.tomogram, ndim=3) as tomogram:
            source_shape, origin = tomogram.shape, tomogram.origin
            if args.binning is None:
                binning = voxel_size / tomogram.voxel_size
            tomogram_name = tomogram.name
    frame = SourceFrame(shape, voxel_size, binning, origin, source_shape)
    names = {"tomogram": args.tomo_name or tomogram_name, "feature": args.feature or feature}

    if args.mode == "filament":
        picks = pick_filaments(
            probability,
            threshold=args.threshold,
            spacing_angstrom=args.spacing,
            voxel_size=voxel_size,
            binning=binning,
            origin=origin,
            source_shape=source_shape,
            edge_px=args.edge,
            radius_angstrom=args.filament_radius,
            prune_length_angstrom=args.prune_length,
            min_length_angstrom=args.min_length,
            **names,
        )
        summary = f"{len(picks)} filament points"
    else:
        _apply_diameter(args, voxel_size)
        candidates = find_particle_candidates(
            probability,
            threshold=args.threshold,
            min_distance_px=args.min_distance,
            mode=args.mode,
            min_mass=args.min_mass,
            min_size_voxels=args.min_size,
            max_size_voxels=args.max_size,
            min_size_angstrom3=args.min_volume,
            max_size_angstrom3=args.max_volume,
            voxel_size=voxel_size,
            edge_px=args.edge,
        )
        picks = candidates.to_picks(frame, **names)
        reasons, counts = np.unique(candidates.dropped[~candidates.kept], return_counts=True)
        dropped = ", ".join(f"{n} by {r}" for r, n in zip(reasons, counts, strict=True))
        summary = f"{len(picks)} particles from {len(candidates)} candidates" + (
            f" (dropped {dropped})" if dropped else ""
        )
    path = write_picks(args.out, picks, format=args.format, overwrite=args.overwrite)
    print(f"{summary} -> {path}")
    return 0


def _names(stem: str) -> tuple[str, str]:
    """``TS_01__ribosome`` (segment's naming) -> ("TS_01", "ribosome"); otherwise (stem, "")."""
    tomogram, separator, feature = stem.rpartition("__")
    return (tomogram, feature) if separator else (stem, "")


def _apply_diameter(args: argparse.Namespace, voxel_size: float) -> None:
    """Fill the distance and size rules a particle diameter implies, where not given."""
    from ..picking import diameter_rules

    if args.diameter is None:
        return
    rules = diameter_rules(args.diameter, voxel_size)
    if args.min_distance is None:
        args.min_distance = rules["min_distance_px"]
    if args.min_size is None and args.min_volume is None:
        args.min_volume = rules["min_size_angstrom3"]
