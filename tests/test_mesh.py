"""Meshes: placed in Angstrom with the MRC origin, closed, outward, readable as OBJ, PLY and GLB."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from tomoseg_nb.errors import BadInputError, EmptyResultWarning, OutputExistsError
from tomoseg_nb.mesh import Mesh, mesh_from_map, write_mesh


@pytest.fixture(scope="module")
def ball() -> Mesh:
    """A ball of radius 6 voxels centred at voxel (z, y, x) = (10, 12, 3), cut by the x = 0 face."""
    z, y, x = np.indices((20, 24, 16))
    inside = (z - 10) ** 2 + (y - 12) ** 2 + (x - 3) ** 2 <= 36
    return mesh_from_map(
        inside.astype(np.float32), threshold=0.5, voxel_size=10.0, origin=(100.0, 200.0, 300.0)
    )


def test_vertices_are_in_angstrom_with_the_origin(ball: Mesh) -> None:
    low, high = ball.vertices.min(axis=0), ball.vertices.max(axis=0)
    # y spans voxels 6..18 -> 200 + 60 .. 200 + 180 A, z 4..16 (give or take the interpolation).
    np.testing.assert_allclose([low[1], high[1]], [255.0, 385.0], atol=6.0)
    np.testing.assert_allclose([low[2], high[2]], [335.0, 465.0], atol=6.0)
    # x is cut by the volume's face at voxel 0 (100 A): the padding closes the surface there.
    assert 94.0 <= low[0] <= 100.0 and high[0] == pytest.approx(190.0, abs=6.0)


def test_the_surface_is_closed_and_faces_outward(ball: Mesh) -> None:
    edges = np.sort(
        np.concatenate([ball.faces[:, [0, 1]], ball.faces[:, [1, 2]], ball.faces[:, [2, 0]]]),
        axis=1,
    )
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()  # every edge shared by two triangles: watertight
    inside_voxels = (np.indices((20, 24, 16)) - np.array([10, 12, 3])[:, None, None, None]) ** 2
    expected = np.count_nonzero(inside_voxels.sum(axis=0) <= 36) * 1000.0
    assert ball.volume_angstrom3 == pytest.approx(expected, rel=0.1)
    v, f = ball.vertices, ball.faces
    face_normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    assert np.mean(np.einsum("ij,ij->i", face_normals, ball.normals[f[:, 0]]) > 0) > 0.99


def test_obj_round_trips(tmp_path, ball: Mesh) -> None:
    path = write_mesh(tmp_path / "ball.obj", ball, name="ribosome")
    lines = path.read_text().splitlines()
    vertices = np.array(
        [[float(t) for t in line.split()[1:]] for line in lines if line.startswith("v ")]
    )
    faces = np.array(
        [
            [int(t.split("//")[0]) for t in line.split()[1:]]
            for line in lines
            if line.startswith("f ")
        ]
    )
    np.testing.assert_allclose(vertices, ball.vertices, atol=1e-3)
    np.testing.assert_array_equal(faces - 1, ball.faces)
    assert "o ribosome" in lines and sum(line.startswith("vn ") for line in lines) == len(
        ball.vertices
    )
    with pytest.raises(OutputExistsError):
        write_mesh(path, ball)


def test_ply_round_trips(tmp_path, ball: Mesh) -> None:
    data = write_mesh(tmp_path / "ball.ply", ball).read_bytes()
    header, body = data.split(b"end_header\n", 1)
    assert f"element vertex {len(ball.vertices)}".encode() in header
    vertex = np.frombuffer(body[: 24 * len(ball.vertices)], dtype="<f4").reshape(-1, 6)
    np.testing.assert_array_equal(vertex[:, :3], ball.vertices)
    faces = np.frombuffer(body[24 * len(ball.vertices) :], dtype=[("n", "u1"), ("i", "<u4", 3)])
    assert (faces["n"] == 3).all()
    np.testing.assert_array_equal(faces["i"], ball.faces)


def _read_glb(data: bytes) -> tuple[dict, bytes]:
    magic, version, length = struct.unpack_from("<4sII", data)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    json_length, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON" and json_length % 4 == 0
    document = json.loads(data[20 : 20 + json_length])
    rest = data[20 + json_length :]
    if not rest:
        return document, b""
    bin_length, kind = struct.unpack_from("<I4s", rest)
    assert kind == b"BIN\0" and bin_length % 4 == 0
    return document, rest[8 : 8 + bin_length]


def test_glb_round_trips(tmp_path, ball: Mesh) -> None:
    document, binary = _read_glb(write_mesh(tmp_path / "ball.glb", ball).read_bytes())
    indices, positions = document["accessors"][0], document["accessors"][1]
    assert indices["count"] == ball.faces.size and positions["count"] == len(ball.vertices)
    views = document["bufferViews"]
    start, size = views[1]["byteOffset"], views[1]["byteLength"]
    np.testing.assert_array_equal(
        np.frombuffer(binary[start : start + size], "<f4").reshape(-1, 3), ball.vertices
    )
    start, size = views[0]["byteOffset"], views[0]["byteLength"]
    np.testing.assert_array_equal(
        np.frombuffer(binary[start : start + size], "<u4").reshape(-1, 3), ball.faces
    )
    np.testing.assert_allclose(positions["min"], ball.vertices.min(axis=0))


def test_nothing_above_threshold_writes_valid_empty_files(tmp_path) -> None:
    empty = mesh_from_map(np.zeros((4, 5, 6)), threshold=0.5)
    assert len(empty) == 0 and empty.volume_angstrom3 == 0.0
    with pytest.warns(EmptyResultWarning):
        obj = write_mesh(tmp_path / "e.obj", empty)
    assert not [line for line in obj.read_text().splitlines() if line.startswith(("v ", "f "))]
    with pytest.warns(EmptyResultWarning):
        document, binary = _read_glb(write_mesh(tmp_path / "e.glb", empty).read_bytes())
    assert document["scenes"] == [{"nodes": []}] and binary == b""


def test_uint8_maps_and_bad_input(tmp_path, ball: Mesh) -> None:
    stored = np.zeros((8, 8, 8), np.uint8)
    stored[2:6, 2:6, 2:6] = 200
    assert len(mesh_from_map(stored, threshold=0.7)) > 0
    assert len(mesh_from_map(stored, threshold=0.8)) == 0
    with pytest.raises(BadInputError, match="unknown mesh format"):
        write_mesh(tmp_path / "ball.stl", ball)
    with pytest.raises(BadInputError, match="3D"):
        mesh_from_map(np.zeros((4, 4)), threshold=0.5)
    with pytest.raises(BadInputError, match="step_size"):
        mesh_from_map(stored, threshold=0.5, step_size=0)
