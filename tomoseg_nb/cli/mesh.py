"""``tomoseg-nb mesh``: a surface mesh of a segmented feature for ChimeraX or Blender."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_overwrite


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mesh",
        help="surface mesh (OBJ, PLY, GLB) of a probability map or a merged label",
        description=(
            "Marching cubes at the threshold; vertices in Angstrom with the map's MRC origin, so the "
            "mesh overlays the tomogram in ChimeraX."
        ),
    )
    parser.add_argument("map", metavar="SEG", help="probability map, or label volume with --label")
    parser.add_argument("--threshold", type=float, default=0.5, metavar="T", help="iso-level (0.5)")
    parser.add_argument(
        "--label",
        metavar="NAME|ID",
        help="mesh one label of a merged volume (name from LABELS.json, or its number)",
    )
    parser.add_argument("--out", required=True, metavar="MESH.obj", help=".obj, .ply or .glb")
    parser.add_argument(
        "--step", type=int, default=1, metavar="N", help="marching-cubes step, voxels (1)"
    )
    add_overwrite(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..atomic import check_output_path
    from ..mesh import mesh_from_map, write_mesh
    from ..volume import open_volume

    check_output_path(args.out, args.overwrite)
    with open_volume(args.map, ndim=3) as volume:
        data = np.asarray(volume.data[...])
        voxel_size, origin, name = volume.voxel_size, volume.origin, volume.name
    threshold = args.threshold
    if args.label is not None:
        value, name = _label_value(Path(args.map), args.label)
        data, threshold = (data == value).astype(np.float32), 0.5
    mesh = mesh_from_map(
        data, threshold=threshold, voxel_size=voxel_size, origin=origin, step_size=args.step
    )
    path = write_mesh(args.out, mesh, name=name, overwrite=args.overwrite)
    print(f"{len(mesh.faces)} triangles, {mesh.volume_angstrom3 / 1e3:.4g} nm^3 -> {path}")
    return 0


def _label_value(labels_path: Path, label: str) -> tuple[int, str]:
    from ..errors import BadInputError
    from ..merge import label_names_path, read_label_names

    if label.isdigit():
        return int(label), label
    names = read_label_names(label_names_path(labels_path))
    for value, name in names.items():
        if name == label:
            return value, name
    raise BadInputError(
        f"{labels_path}: no label {label!r}; the labels are {sorted(names.values())}"
    )
