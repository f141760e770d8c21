"""Surface meshes of a segmented feature, in Angstrom and the tomogram's frame, for ChimeraX/Blender.

Marching cubes (scikit-image) at the threshold gives the surface; vertices are placed at
``origin + index * voxel_size`` (x, y, z in Angstrom, the MRC header origin included), so a mesh
opened next to its tomogram in ChimeraX lies where the map does - the misalignment Ais users
report comes from dropping that origin. The volume is padded with background first, so surfaces
cut by the volume's faces are closed (printable, and with a meaningful inside). Written as
Wavefront OBJ, binary PLY or binary glTF (GLB) by minimal writers, with outward normals and
counter-clockwise faces seen from outside.
"""

from __future__ import annotations

import json
import math
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .atomic import atomic_output
from .errors import BadInputError, EmptyResultWarning
from .maps import decode_probabilities

MESH_FORMATS = ("obj", "ply", "glb")


@dataclass
class Mesh:
    """A triangle mesh.

    Attributes
    ----------
    vertices : ndarray
        ``(N, 3)`` float32 x, y, z in Angstrom.
    faces : ndarray
        ``(M, 3)`` uint32 vertex indices, counter-clockwise seen from outside.
    normals : ndarray
        ``(N, 3)`` float32 unit outward normals.
    """

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray

    def __len__(self) -> int:
        return len(self.faces)

    @property
    def volume_angstrom3(self) -> float:
        """Enclosed volume (divergence theorem); positive when faces are oriented outward."""
        if len(self.faces) == 0:
            return 0.0
        a, b, c = (self.vertices[self.faces[:, k]].astype(np.float64) for k in range(3))
        return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def mesh_from_map(
    probability_map: np.ndarray,
    *,
    threshold: float,
    voxel_size: float = 1.0,
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    step_size: int = 1,
) -> Mesh:
    """Isosurface of a probability map at ``threshold``, in Angstrom.

    Parameters
    ----------
    probability_map : ndarray
        ``(z, y, x)`` probabilities (as stored: ``maps.decode_probabilities`` reads them).
    threshold : float
        Iso-level: the surface separates voxels above it from those below.
    voxel_size : float
        Angstrom per voxel.
    origin : tuple of float
        MRC header origin ``(x, y, z)`` in Angstrom: the position of voxel ``(0, 0, 0)``.
    step_size : int
        Marching-cubes step in voxels; 2 or more makes coarser, much smaller meshes of big volumes.

    Returns
    -------
    Mesh
        Empty (no faces) when nothing reaches the threshold.

    Examples
    --------
    >>> z, y, x = np.indices((16, 16, 16))
    >>> ball = ((z - 8) ** 2 + (y - 8) ** 2 + (x - 8) ** 2 <= 25).astype(np.float32)
    >>> mesh = mesh_from_map(ball, threshold=0.5, voxel_size=10.0)
    >>> bool(mesh.vertices[:, 0].min() > 20), round(mesh.volume_angstrom3 / (4 / 3 * np.pi * 50**3), 1)
    (True, 1.0)
    """
    from skimage.measure import marching_cubes

    values = decode_probabilities(probability_map)
    if values.ndim != 3:
        raise BadInputError(f"a mesh needs a 3D map (z, y, x), got shape {values.shape}")
    if not (math.isfinite(threshold) and voxel_size > 0 and int(step_size) >= 1):
        raise BadInputError("threshold must be finite, voxel_size > 0 and step_size >= 1")
    if not np.isfinite(values).all():
        raise BadInputError("the map has NaN/Inf voxels; clean it before meshing")
    if not (values > threshold).any():
        return Mesh(
            np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32), np.zeros((0, 3), np.float32)
        )
    floor = min(float(values.min()), float(threshold)) - 1.0
    padded = np.pad(values, 1, mode="constant", constant_values=floor)
    vertices, faces, normals, _ = marching_cubes(
        padded, level=threshold, step_size=int(step_size), allow_degenerate=False
    )
    # (z, y, x) padded indices -> x, y, z Angstrom. Reversing the axes mirrors the mesh, which
    # turns scikit-image's winding (clockwise from outside in z, y, x) counter-clockwise.
    xyz = (vertices[:, ::-1] - 1.0) * voxel_size + np.asarray(origin, dtype=np.float64)
    return Mesh(
        vertices=xyz.astype(np.float32),
        faces=faces.astype(np.uint32),
        normals=normals[:, ::-1].astype(np.float32),
    )


def write_mesh(
    path: str | os.PathLike,
    mesh: Mesh,
    *,
    format: str | None = None,
    name: str = "feature",
    overwrite: bool = False,
) -> Path:
    """Write a mesh as OBJ, PLY or GLB (chosen by suffix unless ``format`` is given), atomically.

    An empty mesh gives a valid empty file and an `EmptyResultWarning`.
    """
    path = Path(path)
    chosen = (format or path.suffix.lstrip(".")).lower()
    if chosen not in MESH_FORMATS:
        raise BadInputError(
            f"{path}: unknown mesh format {chosen!r}; use one of {', '.join(MESH_FORMATS)} "
            "(.obj for ChimeraX and Blender, .glb for web viewers)"
        )
    if len(mesh.faces) == 0:
        warnings.warn(
            f"{path}: the mesh is empty (nothing above the threshold)",
            EmptyResultWarning,
            stacklevel=2,
        )
    writer = {"obj": _write_obj, "ply": _write_ply, "glb": _write_glb}[chosen]
    with atomic_output(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as handle:
            writer(handle, mesh, name)
    return path


def _write_obj(handle: BinaryIO, mesh: Mesh, name: str) -> None:
    handle.write(f"# tomoseg_nb mesh of {name}; units Angstrom\no {name}\n".encode())
    if len(mesh.faces) == 0:
        return
    handle.write(_rows("v", mesh.vertices, "%.3f"))
    handle.write(_rows("vn", mesh.normals, "%.4f"))
    one_based = mesh.faces.astype(np.int64) + 1
    handle.write(_rows("f", np.repeat(one_based, 2, axis=1), "%d", separators=("//", " ")))


def _rows(
    tag: str, values: np.ndarray, fmt: str, separators: tuple[str, str] | None = None
) -> bytes:
    if separators is None:
        line = f"{tag} " + " ".join([fmt] * values.shape[1]) + "\n"
    else:  # "f a//a b//b c//c"
        inner, outer = separators
        line = f"{tag} " + outer.join([f"{fmt}{inner}{fmt}"] * (values.shape[1] // 2)) + "\n"
    return "".join(line % tuple(row) for row in values.tolist()).encode()


def _write_ply(handle: BinaryIO, mesh: Mesh, name: str) -> None:
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"comment tomoseg_nb mesh of {name}; units Angstrom\n"
        f"element vertex {len(mesh.vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\n"
        f"element face {len(mesh.faces)}\nproperty list uchar uint vertex_indices\nend_header\n"
    )
    handle.write(header.encode("ascii"))
    vertex = np.empty(len(mesh.vertices), dtype=[("p", "<f4", 3), ("n", "<f4", 3)])
    vertex["p"], vertex["n"] = mesh.vertices, mesh.normals
    handle.write(vertex.tobytes())
    face = np.empty(len(mesh.faces), dtype=[("count", "u1"), ("index", "<u4", 3)])
    face["count"], face["index"] = 3, mesh.faces
    handle.write(face.tobytes())


def _write_glb(handle: BinaryIO, mesh: Mesh, name: str) -> None:
    """glTF 2.0 binary: a JSON chunk describing one mesh, then one buffer of indices, positions, normals."""
    document: dict[str, object] = {
        "asset": {"version": "2.0", "generator": "tomoseg_nb"},
        "scene": 0,
        "scenes": [{"nodes": [0] if len(mesh.faces) else []}],
    }
    binary = b""
    if len(mesh.faces):
        indices = mesh.faces.astype("<u4").tobytes()
        positions = mesh.vertices.astype("<f4").tobytes()
        normals = mesh.normals.astype("<f4").tobytes()
        binary = indices + positions + normals
        offsets = np.cumsum([0, len(indices), len(positions)]).tolist()
        views = [
            (offsets[0], len(indices), 34963),
            (offsets[1], len(positions), 34962),
            (offsets[2], len(normals), 34962),
        ]
        document.update(
            nodes=[{"mesh": 0, "name": name}],
            meshes=[
                {
                    "name": name,
                    "primitives": [{"attributes": {"POSITION": 1, "NORMAL": 2}, "indices": 0}],
                }
            ],
            buffers=[{"byteLength": len(binary)}],
            bufferViews=[
                {"buffer": 0, "byteOffset": o, "byteLength": n, "target": t} for o, n, t in views
            ],
            accessors=[
                {
                    "bufferView": 0,
                    "componentType": 5125,
                    "count": mesh.faces.size,
                    "type": "SCALAR",
                },
                {
                    "bufferView": 1,
                    "componentType": 5126,
                    "count": len(mesh.vertices),
                    "type": "VEC3",
                    "min": mesh.vertices.min(axis=0).tolist(),
                    "max": mesh.vertices.max(axis=0).tolist(),
                },
                {
                    "bufferView": 2,
                    "componentType": 5126,
                    "count": len(mesh.normals),
                    "type": "VEC3",
                },
            ],
        )
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    chunks = struct.pack("<I4s", len(text), b"JSON") + text
    if binary:
        chunks += struct.pack("<I4s", len(binary), b"BIN\0") + binary
    handle.write(struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks)
