"""``tomoseg-nb segment``: apply trained feature networks to whole tomograms."""

from __future__ import annotations

import argparse
import sys

from ._common import add_overwrite


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="apply trained networks to tomograms",
        description="Write one probability map per tomogram and model: "
        "DIR/<tomogram>__<feature>.mrc. A model trained with --z-context is given its "
        "neighbouring slices as it was trained (read from its sidecar).",
    )
    parser.add_argument(
        "tomograms", nargs="+", metavar="TOMO", help="tomogram files (MRC, TIFF, OME-Zarr)"
    )
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="MODEL.keras",
        help="trained network (repeat for several features)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--engine",
        choices=("auto", "keras", "fft"),
        default="auto",
        help="convolution engine (default: auto)",
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "float16", "uint8"),
        default="float32",
        help="stored type of the maps",
    )
    parser.add_argument(
        "--slab",
        type=int,
        default=4,
        metavar="N",
        help="slices processed together (memory grows with N)",
    )
    parser.add_argument(
        "--cluster",
        metavar="SPEC",
        help="run on Dask, resumably: local:N (N worker processes), tcp://HOST:PORT (a scheduler), "
        "slurm[:N] / pbs[:N] (N batch jobs via dask-jobqueue), gateway[:N|ADDRESS] (Dask Gateway); "
        "default: in this process",
    )
    add_overwrite(parser)
    parser.set_defaults(func=run)


def check_inputs(
    models: list[str], tomograms: list[str], out: str | None = None, overwrite: bool = True
) -> None:
    """Every model file and tomogram is there and readable, and (unless ``overwrite``) no map
    in ``out`` would be replaced: checked before Keras starts, which takes seconds."""
    from ..atomic import check_output_path
    from ..maps import map_path
    from ..model_files import check_model_file, sidecar_feature
    from ..volume import open_volume

    features = [sidecar_feature(check_model_file(path)) for path in models]
    for path in tomograms:
        with open_volume(path) as volume:
            name = volume.name
        if out is not None and not overwrite:
            for feature in filter(None, features):
                check_output_path(map_path(out, name, feature), overwrite)


def run(args: argparse.Namespace) -> int:
    # a Dask run resumes into existing outputs; it checks them itself
    check_inputs(args.model, args.tomograms, None if args.cluster else args.out, args.overwrite)
    if args.cluster:
        return _run_on_cluster(args)
    from ..segment import FeatureNetwork, segment_volume

    networks = [FeatureNetwork.load(path) for path in args.model]
    for tomogram in args.tomograms:
        paths = segment_volume(
            networks,
            tomogram,
            args.out,
            engine=args.engine,
            dtype=args.dtype,
            slab_size=args.slab,
            overwrite=args.overwrite,
        )
        for path in paths:
            print(path)
    return 0


def _run_on_cluster(args: argparse.Namespace) -> int:
    from ..distributed import open_cluster, segment_volumes

    with open_cluster(args.cluster) as client:
        print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr)
        result = segment_volumes(
            args.model,
            args.tomograms,
            args.out,
            client=client,
            engine=args.engine,
            dtype=args.dtype,
            slab_size=args.slab,
            overwrite=args.overwrite,
        )
    for paths in result.outputs:
        for path in paths:
            print(path)
    print(
        f"{result.units_computed} work units computed, {result.units_skipped} already done; "
        f"per-unit timing in {', '.join(p.name for p in result.manifests)}",
        file=sys.stderr,
    )
    return 0
