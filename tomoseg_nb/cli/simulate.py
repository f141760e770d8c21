"""``tomoseg-nb simulate``: write a phantom tomogram and/or micrograph with its ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_overwrite, whole_number


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="write a phantom tomogram / micrograph with ground truth",
        description=(
            "Simulate a cellular tomogram (membranes, microtubules, ribosomes, actin, gold, ice, "
            "crowding; CTF, missing wedge, noise) and write tomogram.mrc, labels.mrc, labels.json, "
            "particles.csv and filaments.json into DIR; with --kind micrograph or both, also a "
            "particle micrograph into DIR/micrograph/."
        ),
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument(
        "--shape",
        nargs=3,
        type=int,
        default=(64, 256, 256),
        metavar=("Z", "Y", "X"),
        help="tomogram size in voxels (default 64 256 256)",
    )
    parser.add_argument(
        "--micrograph-shape",
        nargs=2,
        type=int,
        default=None,
        metavar=("Y", "X"),
        help="micrograph size in pixels (default 1024 1024)",
    )
    parser.add_argument("--seed", type=whole_number(0), default=0, help="random seed (default 0)")
    parser.add_argument(
        "--voxel-size",
        type=float,
        default=None,
        metavar="A",
        help="Angstrom per voxel/pixel (default: 10 for the tomogram, 5 for the micrograph)",
    )
    parser.add_argument(
        "--snr",
        type=float,
        default=None,
        help="signal-to-noise variance ratio (default: 0.5 for the tomogram, 0.3 for the micrograph)",
    )
    parser.add_argument(
        "--kind",
        choices=("tomogram", "micrograph", "both"),
        default="both",
        help="what to simulate (default both)",
    )
    add_overwrite(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_path
    from ..errors import OutputExistsError
    from ..synthetic import tomogram

    out = Path(args.out)
    micrograph_dir = out / "micrograph"
    want_tomogram = args.kind in ("tomogram", "both")
    want_micrograph = args.kind in ("micrograph", "both")
    # Refuse before simulating anything, so a refused run costs nothing and writes nothing.
    if want_tomogram:
        for name in tomogram.PHANTOM_FILES.values():
            check_output_path(out / name, args.overwrite)
    if (
        want_micrograph
        and not args.overwrite
        and micrograph_dir.exists()
        and any(micrograph_dir.iterdir())
    ):
        raise OutputExistsError(f"{micrograph_dir}: output exists; pass --overwrite to replace it")
    options = {}
    if args.voxel_size is not None:
        options["voxel_size"] = args.voxel_size
    if args.snr is not None:
        options["snr"] = args.snr
    # Simulate everything first: a mistake in any option then leaves nothing half-written.
    phantom = image = None
    if want_tomogram:
        phantom = tomogram.simulate_tomogram(tuple(args.shape), seed=args.seed, **options)
    if want_micrograph:
        from ..synthetic import micrograph

        if "voxel_size" in options:
            options["pixel_size"] = options.pop("voxel_size")
        if args.micrograph_shape:
            options["shape"] = tuple(args.micrograph_shape)
        image = micrograph.simulate_micrograph(seed=args.seed, **options)
    if phantom is not None:
        tomogram.write_tomogram_phantom(phantom, out, overwrite=args.overwrite)
        counts = ", ".join(
            [f"{len(v)} {k}" for k, v in phantom.particles.items()]
            + [f"{len(v)} {k} axes" for k, v in phantom.filaments.items()]
        )
        print(
            f"tomogram {phantom.labels.shape} at {phantom.voxel_size:g} A/voxel -> {out} ({counts})"
        )
    if image is not None:
        micrograph.write_micrograph_phantom(image, micrograph_dir, overwrite=args.overwrite)
        print(
            f"micrograph {image.image.shape} at {image.pixel_size:g} A/pixel -> {micrograph_dir} "
            f"({len(image.particles)} particles, {len(image.aggregate_particles)} in aggregates)"
        )
    return 0
