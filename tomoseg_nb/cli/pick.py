"""``tomoseg-nb pick``: particle or filament coordinates from a probability map, for RELION, copick..."""

from __future__ import annotations

import argparse

from ._common import add_overwrite

NAMED_FORMATS = ("relion5", "relion4")
"""Formats that need the tomogram's name (``rlnTomoName``) with every pick."""


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
        help="relion5, relion4, copick, eman2, imod, csv or cryoet-ndjson (default: from the suffix; "
        ".star is relion5)",
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
        "--tomo-name",
        metavar="NAME",
        help="tomogram name in the output (default: from --tomogram, or from SEG when segment "
        "named it <tomogram>__<feature>.mrc)",
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
        "--min-mass",
        type=float,
        metavar="M",
        help="minimum summed probability (default 20, as EMAN2)",
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
    from ..atomic import check_output_path
    from ..coords import picks_format, write_picks
    from ..errors import BadInputError
    from ..picking import locate_map, pick_map_file
    from ..picking.particles import MIN_MASS

    # everything that can be wrong is refused here, before the map's voxels are read
    output_format = picks_format(args.out, ndim=3, format=args.format)
    check_output_path(args.out, args.overwrite)
    located = locate_map(
        args.map,
        tomogram=args.tomogram,
        binning=args.binning,
        voxel_size=args.voxel_size,
        tomogram_name=args.tomo_name,
        feature=args.feature,
    )
    if not located.tomogram and output_format in NAMED_FORMATS:
        raise BadInputError(
            f"{located.path.name} does not say which tomogram it belongs to (segment names maps "
            f"<tomogram>__<feature>.mrc) and {output_format} records it; pass --tomogram TOMO "
            "or --tomo-name NAME"
        )
    result = pick_map_file(
        located,
        threshold=args.threshold,
        mode=args.mode,
        min_distance_px=args.min_distance,
        diameter_angstrom=args.diameter,
        min_mass=MIN_MASS if args.min_mass is None else args.min_mass,
        min_size_voxels=args.min_size,
        max_size_voxels=args.max_size,
        min_size_angstrom3=args.min_volume,
        max_size_angstrom3=args.max_volume,
        edge_px=args.edge,
        spacing_angstrom=args.spacing,
        filament_radius_angstrom=args.filament_radius,
        prune_length_angstrom=args.prune_length,
        min_length_angstrom=args.min_length,
    )
    path = write_picks(args.out, result.picks, format=output_format, overwrite=args.overwrite)
    print(f"{result.summary} -> {path}")
    return 0
