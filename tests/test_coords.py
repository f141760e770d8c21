"""Picks tables and every picks file format: round trips, frames, empty files and clear errors."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tomoseg_nb.coords import (
    FORMATS,
    Picks,
    euler_angles,
    picks_format,
    read_picks,
    rotation_matrices,
    write_picks,
)
from tomoseg_nb.errors import BadInputError, MissingInputError, OutputExistsError

SHAPE_3D = (40, 64, 80)
SHAPE_2D = (300, 400)

# format -> (file name, write options, what the file keeps: scores, orientations)
FORMATS_3D = {
    "relion5": ("picks.star", {}, True, True),
    "relion4": ("picks.star", {}, True, True),
    "copick": ("picks.json", {}, True, True),
    "eman2": ("TS_01_info.json", {}, True, False),
    "imod": ("picks.txt", {}, False, False),
    "csv": ("picks.csv", {}, True, False),
    "cryoet-ndjson": ("picks.ndjson", {}, False, True),
}
FORMATS_2D = {
    "star2d": ("picks.star", {}, True),
    "box": ("picks.box", {"box_size_px": 24}, False),
    "csv": ("picks.csv", {}, True),
}
TOLERANCE = {"imod": 1e-3, "box": 0.5}  # IMOD text keeps 3 decimals; .box whole-pixel corners


def tomogram_picks(n=5, seed=0, oriented=True):
    rng = np.random.default_rng(seed)
    return Picks(
        coordinates=rng.uniform(0, 1, (n, 3)) * (np.array(SHAPE_3D) - 1),
        scores=rng.uniform(0, 1, n),
        voxel_size=13.7,
        shape=SHAPE_3D,
        origin=(10.0, -20.0, 30.0),
        tomogram="TS_01",
        feature="ribosome",
        orientations=rng.uniform([-180, 0, -180], [180, 180, 180], (n, 3)) if oriented else None,
    )


def micrograph_picks(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return Picks(
        coordinates=rng.uniform(0, 1, (n, 2)) * (np.array(SHAPE_2D) - 1),
        scores=rng.uniform(0, 1, n),
        voxel_size=1.1,
        shape=SHAPE_2D,
        tomogram="mic_001",
    )


def read_back(path, fmt, picks):
    return read_picks(path, fmt, shape=picks.shape, voxel_size=picks.voxel_size)


def assert_same_rotations(a, b):
    np.testing.assert_allclose(rotation_matrices(a), rotation_matrices(b), atol=1e-6)


# --------------------------------------------------------------------------------------- Picks


def test_picks_validates_and_converts():
    picks = Picks([[1, 2, 3]], scores=[0.5], shape=[4, 5, 6])
    assert picks.coordinates.dtype == np.float64 and picks.shape == (4, 5, 6)
    assert len(picks) == 1 and picks.ndim == 3
    np.testing.assert_array_equal(picks.xyz, [[3, 2, 1]])
    np.testing.assert_array_equal(picks.score_values, [0.5])
    np.testing.assert_array_equal(Picks(np.zeros((2, 2))).score_values, [1, 1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"coordinates": np.zeros(3)}, "(N, 3)"),
        ({"coordinates": np.zeros((2, 4))}, "(N, 3)"),
        ({"coordinates": [[np.nan, 0, 0]]}, "NaN"),
        ({"coordinates": [[1, 2, 3], [4, 5]]}, "must be numbers"),
        ({"coordinates": np.zeros((2, 3)), "scores": [1.0]}, "scores"),
        ({"coordinates": np.zeros((1, 2)), "orientations": [[0, 0, 0]]}, "orientations"),
        ({"coordinates": np.zeros((1, 3)), "voxel_size": 0}, "voxel size"),
        ({"coordinates": np.zeros((1, 3)), "shape": (4, 5)}, "shape"),
        ({"coordinates": np.zeros((1, 3)), "origin": (0, 0)}, "origin"),
    ],
)
def test_picks_rejects_malformed_tables(kwargs, message):
    with pytest.raises(BadInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Picks(**kwargs)


def test_subset_keeps_metadata_and_aligned_columns():
    picks = tomogram_picks(6)
    chosen = picks.subset(picks.score_values > 0.5)
    mask = picks.scores > 0.5
    np.testing.assert_array_equal(chosen.coordinates, picks.coordinates[mask])
    np.testing.assert_array_equal(chosen.orientations, picks.orientations[mask])
    assert chosen.tomogram == "TS_01" and chosen.voxel_size == picks.voxel_size
    np.testing.assert_array_equal(picks.subset([2, 0]).scores, picks.scores[[2, 0]])
    with pytest.raises(BadInputError, match="boolean selection"):
        picks.subset(np.ones(3, bool))


def test_rescaled_aligns_the_centres_of_binned_and_unbinned_tomograms():
    # RELION 5 / Warp convention: binned voxel i -> unbinned (i - n/2) * b + N/2
    picks = Picks([[0.0, 1.0, 2.0]], voxel_size=40.0, shape=(10, 20, 30))
    unbinned = picks.rescaled(4)
    np.testing.assert_allclose(unbinned.coordinates, [[0.0, 4.0, 8.0]])
    assert unbinned.voxel_size == 10.0 and unbinned.shape == (40, 80, 120)
    back = unbinned.rescaled(0.25, shape=(10, 20, 30))
    np.testing.assert_allclose(back.coordinates, picks.coordinates)
    odd = Picks([[5.0, 5.0, 5.0]], voxel_size=20.0, shape=(10, 10, 10)).rescaled(
        2, shape=(21, 21, 21)
    )
    np.testing.assert_allclose(odd.coordinates, [[10.5, 10.5, 10.5]])
    # centred coordinates (what RELION 5 stores) do not depend on the binning
    np.testing.assert_allclose(picks.centred_angstrom_xyz(), unbinned.centred_angstrom_xyz())


def test_angstrom_frames():
    picks = Picks([[1.0, 2.0, 3.0]], voxel_size=10.0, shape=(4, 6, 8), origin=(100.0, 200.0, 300.0))
    np.testing.assert_allclose(picks.angstrom_xyz(), [[30, 20, 10]])
    np.testing.assert_allclose(picks.angstrom_xyz(include_origin=True), [[130, 220, 310]])
    # RELION 5 centre is size / 2 = (4, 3, 2) voxels in x, y, z
    np.testing.assert_allclose(picks.centred_angstrom_xyz(), [[-10, -10, -10]])
    with pytest.raises(BadInputError, match="shape"):
        Picks([[1.0, 2.0, 3.0]]).centred_angstrom_xyz()


def test_rotation_matrix_is_relions_euler_matrix():
    rot, tilt, psi = np.radians([10.0, 20.0, 30.0])
    ca, sa, cb, sb, cg, sg = (
        np.cos(rot),
        np.sin(rot),
        np.cos(tilt),
        np.sin(tilt),
        np.cos(psi),
        np.sin(psi),
    )
    # RELION euler.cpp Euler_angles2matrix
    relion = np.array(
        [
            [cg * cb * ca - sg * sa, cg * cb * sa + sg * ca, -cg * sb],
            [-sg * cb * ca - cg * sa, -sg * cb * sa + cg * ca, sg * sb],
            [sb * ca, sb * sa, cb],
        ]
    )
    np.testing.assert_allclose(rotation_matrices([[10.0, 20.0, 30.0]])[0], relion, atol=1e-12)
    np.testing.assert_allclose(euler_angles(relion[None]), [[10.0, 20.0, 30.0]], atol=1e-9)


# ------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", FORMATS_3D)
def test_3d_formats_round_trip(tmp_path, fmt):
    name, options, keeps_scores, keeps_angles = FORMATS_3D[fmt]
    picks = tomogram_picks()
    path = write_picks(tmp_path / name, picks, fmt, **options)
    back = read_back(path, fmt, picks)
    np.testing.assert_allclose(back.coordinates, picks.coordinates, atol=TOLERANCE.get(fmt, 1e-5))
    assert back.ndim == 3 and len(back) == len(picks)
    if keeps_scores:
        np.testing.assert_allclose(back.scores, picks.scores, atol=1e-6)
    if keeps_angles:
        assert_same_rotations(back.orientations, picks.orientations)
    assert back.voxel_size == picks.voxel_size and back.shape == picks.shape


@pytest.mark.parametrize("fmt", FORMATS_2D)
def test_2d_formats_round_trip(tmp_path, fmt):
    name, options, keeps_scores = FORMATS_2D[fmt]
    picks = micrograph_picks()
    path = write_picks(tmp_path / name, picks, fmt, **options)
    back = read_picks(path, fmt)
    assert back.ndim == 2
    np.testing.assert_allclose(back.coordinates, picks.coordinates, atol=TOLERANCE.get(fmt, 1e-5))
    if keeps_scores:
        np.testing.assert_allclose(back.scores, picks.scores, atol=1e-6)


@pytest.mark.parametrize("fmt", sorted(set(FORMATS_3D) | set(FORMATS_2D)))
def test_empty_picks_write_a_valid_readable_file(tmp_path, fmt):
    if fmt in FORMATS_3D:
        name, options = FORMATS_3D[fmt][:2]
        picks = tomogram_picks(0)
    else:
        name, options = FORMATS_2D[fmt][:2]
        picks = micrograph_picks(0)
    path = write_picks(tmp_path / name, picks, fmt, **options)
    assert path.is_file()
    back = read_back(path, fmt, picks)
    assert len(back) == 0 and back.ndim == picks.ndim


def test_every_listed_format_is_tested():
    assert set(FORMATS) == set(FORMATS_3D) | set(FORMATS_2D)


def test_metadata_travels_where_the_format_has_a_place_for_it(tmp_path):
    picks = tomogram_picks()
    for fmt in ("relion5", "relion4"):
        assert (
            read_back(write_picks(tmp_path / f"{fmt}.star", picks, fmt), fmt, picks).tomogram
            == "TS_01"
        )
    copick = read_picks(write_picks(tmp_path / "c.json", picks, "copick"))
    assert (copick.tomogram, copick.feature, copick.voxel_size) == ("TS_01", "ribosome", 13.7)
    eman2 = read_picks(write_picks(tmp_path / "TS_01_info.json", picks))
    assert eman2.feature == "ribosome"
    star2d = read_picks(write_picks(tmp_path / "m.star", micrograph_picks()))
    assert star2d.tomogram == "mic_001"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    coordinates=arrays(
        np.float64, st.tuples(st.integers(0, 8), st.just(3)), elements=st.floats(0, 500)
    ),
    voxel_size=st.floats(0.5, 50).filter(lambda v: v != 1.0),  # 1.0 means "unknown"
    shape=st.tuples(st.integers(1, 600), st.integers(1, 600), st.integers(1, 600)),
    fmt=st.sampled_from(sorted(FORMATS_3D)),
)
def test_round_trips_hold_for_any_picks(tmp_path_factory, coordinates, voxel_size, shape, fmt):
    picks = Picks(coordinates, voxel_size=voxel_size, shape=shape, tomogram="t", feature="f")
    path = tmp_path_factory.mktemp("rt") / FORMATS_3D[fmt][0]
    back = read_back(write_picks(path, picks, fmt), fmt, picks)
    # Angstrom formats store 6 decimals of Angstrom: at most 1e-6 / voxel_size voxels of error
    np.testing.assert_allclose(
        back.coordinates, picks.coordinates, atol=TOLERANCE.get(fmt, 2e-5), rtol=0
    )


@settings(max_examples=50, deadline=None)
@given(
    coordinates=arrays(np.float64, (4, 3), elements=st.floats(-100, 1000)),
    factor=st.sampled_from([0.25, 0.5, 2.0, 3.0, 4.0]),
    voxel_size=st.floats(0.5, 50),
)
def test_rescaling_keeps_physical_positions_and_inverts(coordinates, factor, voxel_size):
    picks = Picks(coordinates, voxel_size=voxel_size)
    scaled = picks.rescaled(factor)
    np.testing.assert_allclose(scaled.rescaled(1 / factor).coordinates, coordinates, atol=1e-8)
    np.testing.assert_allclose(
        scaled.coordinates * scaled.voxel_size, coordinates * voxel_size, atol=1e-6
    )


@settings(max_examples=50, deadline=None)
@given(
    coordinates=arrays(np.float64, (3, 3), elements=st.floats(0, 1000)),
    voxel_size=st.floats(0.5, 50),
    shape=st.tuples(st.integers(1, 2000), st.integers(1, 2000), st.integers(1, 2000)),
)
def test_centred_frame_is_a_shift_and_scale_of_the_voxel_frame(coordinates, voxel_size, shape):
    picks = Picks(coordinates, voxel_size=voxel_size, shape=shape)
    centre = np.array(shape[::-1]) / 2 * voxel_size
    np.testing.assert_allclose(
        picks.centred_angstrom_xyz() + centre, picks.angstrom_xyz(), atol=1e-8
    )


@settings(max_examples=50, deadline=None)
@given(
    angles=arrays(
        np.float64,
        (5, 3),
        elements=st.floats(-180, 180),
    )
)
def test_euler_angles_invert_rotation_matrices(angles):
    matrices = rotation_matrices(angles)
    np.testing.assert_allclose(rotation_matrices(euler_angles(matrices)), matrices, atol=1e-6)


# --------------------------------------------------------------------------- file contents


def test_relion5_file_uses_relion_centre_convention(tmp_path):
    picks = Picks([[2.0, 3.0, 4.0]], voxel_size=10.0, shape=(4, 6, 8), tomogram="TS_07")
    path = write_picks(tmp_path / "p.star", picks, "relion5")
    import starfile

    table = starfile.read(path)
    assert table["rlnTomoName"].tolist() == ["TS_07"]
    # centre (x, y, z) = (8, 6, 4) / 2 = (4, 3, 2): offsets (0, 0, 0)
    np.testing.assert_allclose(
        table[[f"rlnCenteredCoordinate{a}Angst" for a in "XYZ"]].to_numpy(), [[0, 0, 0]]
    )
    assert "rlnAngleRot" not in table.columns and "rlnAutopickFigureOfMerit" not in table.columns


def test_relion4_lists_pixels_in_xyz_order(tmp_path):
    import starfile

    picks = Picks([[1.0, 2.0, 3.0]], scores=[0.25], tomogram="TS_01")
    table = starfile.read(write_picks(tmp_path / "p.star", picks, "relion4"))
    assert table[["rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ"]].to_numpy().tolist() == [
        [3, 2, 1]
    ]
    assert table["rlnAutopickFigureOfMerit"].tolist() == [0.25]


def test_copick_file_follows_the_copick_schema(tmp_path):
    picks = Picks(
        [[1.0, 2.0, 3.0]], scores=[0.5], voxel_size=10.0, tomogram="run1", feature="ribosome"
    )
    document = json.loads(write_picks(tmp_path / "p.json", picks, "copick").read_text())
    assert document["pickable_object_name"] == "ribosome" and document["run_name"] == "run1"
    assert document["unit"] == "angstrom" and document["voxel_spacing"] == 10.0
    assert {"user_id", "session_id"} <= set(document)
    point = document["points"][0]
    assert point["location"] == {"x": 30.0, "y": 20.0, "z": 10.0}
    assert point["transformation_"] == np.eye(4).tolist() and point["score"] == 0.5
    assert "instance_id" in point


def test_copick_reader_adds_the_transform_translation(tmp_path):
    document = {
        "pickable_object_name": "ribosome",
        "user_id": "someone",
        "session_id": "1",
        "run_name": "TS_02",
        "voxel_spacing": 10.0,
        "unit": "angstrom",
        "points": [
            {
                "location": {"x": 100.0, "y": 50.0, "z": 20.0},
                "transformation_": [[1, 0, 0, 5.0], [0, 1, 0, 0], [0, 0, 1, -10.0], [0, 0, 0, 1]],
            }
        ],
    }
    path = tmp_path / "picks.json"
    path.write_text(json.dumps(document))
    picks = read_picks(path)
    np.testing.assert_allclose(picks.coordinates, [[1.0, 5.0, 10.5]])
    assert picks.orientations is None and picks.score_values.tolist() == [1.0]
    # another voxel size gives voxels of that tomogram: same Angstrom position
    np.testing.assert_allclose(read_picks(path, voxel_size=5.0).coordinates, [[2.0, 10.0, 21.0]])


def test_imod_text_is_one_based_unless_asked(tmp_path):
    picks = Picks([[0.0, 1.0, 2.0]])
    path = write_picks(tmp_path / "p.txt", picks)
    assert path.read_text().split() == ["3.000", "2.000", "1.000"]
    zero = write_picks(tmp_path / "z.txt", picks, one_based=False)
    assert zero.read_text().split() == ["2.000", "1.000", "0.000"]
    np.testing.assert_allclose(read_picks(zero, one_based=False).coordinates, picks.coordinates)


def test_box_file_holds_lower_corners(tmp_path):
    picks = Picks([[100.0, 50.0]])  # y, x
    path = write_picks(tmp_path / "p.box", picks, box_size_px=20)
    assert path.read_text().split() == ["40", "90", "20", "20"]
    with pytest.raises(BadInputError, match="box_size_px"):
        write_picks(tmp_path / "q.box", picks)


def test_csv_header_and_units(tmp_path):
    path = write_picks(tmp_path / "p.csv", Picks([[1.0, 2.0, 3.0]]))
    assert path.read_text().splitlines() == ["x,y,z", "3.000000,2.000000,1.000000"]
    assert read_picks(path).scores is None


def test_ndjson_is_the_data_portal_point_format(tmp_path):
    path = write_picks(tmp_path / "p.ndjson", Picks([[1.0, 2.0, 3.0]]))
    assert json.loads(path.read_text()) == {
        "type": "point",
        "location": {"x": 3.0, "y": 2.0, "z": 1.0},
    }
    oriented = write_picks(tmp_path / "o.ndjson", tomogram_picks(2))
    lines = [json.loads(line) for line in oriented.read_text().splitlines()]
    assert all(
        p["type"] == "orientedPoint" and np.shape(p["xyz_rotation_matrix"]) == (3, 3) for p in lines
    )


# ------------------------------------------------------------------------------- EMAN2 info


def test_eman2_updates_an_info_file_keeping_other_keys_and_classes(tmp_path):
    path = tmp_path / "TS_01_info.json"
    path.write_text(
        json.dumps(
            {
                "tlt_file": "tiltseries/TS_01.hdf",
                "boxes_3d": [[5, 6, 7, "manual", 0.0, 0]],
                "class_list": {"0": {"name": "manual", "boxsize": 48}},
            }
        )
    )
    picks = tomogram_picks(3, oriented=False)
    write_picks(path, picks, box_size_px=40)
    info = json.loads(path.read_text())
    assert info["tlt_file"] == "tiltseries/TS_01.hdf"
    assert info["class_list"]["0"]["name"] == "manual"
    assert info["class_list"]["1"] == {"name": "ribosome", "boxsize": 40.0}
    assert [b[5] for b in info["boxes_3d"]] == [0, 1, 1, 1] and info["boxes_3d"][1][3] == "tomoseg"
    assert not list(tmp_path.glob(".*partial*"))
    # the same class again needs overwrite, and then replaces only that class
    with pytest.raises(OutputExistsError, match="class 1"):
        write_picks(path, picks.subset([0]))
    write_picks(path, picks.subset([0]), overwrite=True)
    info = json.loads(path.read_text())
    assert [b[5] for b in info["boxes_3d"]] == [0, 1]
    # reading: two classes need a choice
    with pytest.raises(BadInputError, match="0: 'manual', 1: 'ribosome'"):
        read_picks(path)
    np.testing.assert_allclose(read_picks(path, feature="manual").coordinates, [[7, 6, 5]])
    np.testing.assert_allclose(
        read_picks(path, class_id=1).coordinates, picks.coordinates[:1], atol=1e-9
    )


def test_eman2_pipeline_info_with_apix_unbin_is_centred_unbinned(tmp_path):
    path = tmp_path / "TS_01_info.json"
    path.write_text(json.dumps({"apix_unbin": 2.5}))
    picks = Picks([[2.0, 3.0, 4.0]], voxel_size=10.0, shape=(4, 6, 8), feature="ribosome")
    write_picks(path, picks, box_size_px=32)
    info = json.loads(path.read_text())
    # (index - size / 2) * apix / apix_unbin, x y z: centre (4, 3, 2) -> 0, and 32 px * 4 = 128
    assert (
        info["boxes_3d"][0][:3] == [0.0, 0.0, 0.0] and info["class_list"]["0"]["boxsize"] == 128.0
    )
    np.testing.assert_allclose(
        read_picks(path, shape=(4, 6, 8), voxel_size=10.0).coordinates, [[2, 3, 4]]
    )
    with pytest.raises(BadInputError, match="shape"):
        read_picks(path)


# ------------------------------------------------------------------------------------ errors


def test_relion5_needs_shape_voxel_size_and_name(tmp_path):
    picks = tomogram_picks(2)
    with pytest.raises(BadInputError, match="shape"):
        write_picks(
            tmp_path / "a.star", Picks(picks.coordinates, voxel_size=10.0, tomogram="t"), "relion5"
        )
    with pytest.raises(BadInputError, match=r"voxel size is 1\.0"):
        write_picks(
            tmp_path / "b.star", Picks(picks.coordinates, shape=SHAPE_3D, tomogram="t"), "relion5"
        )
    with pytest.raises(BadInputError, match="tomogram name"):
        write_picks(
            tmp_path / "c.star",
            Picks(picks.coordinates, voxel_size=10.0, shape=SHAPE_3D),
            "relion5",
        )
    # an explicit voxel size is accepted, even 1.0
    explicit = Picks(picks.coordinates, shape=SHAPE_3D, tomogram="t")
    write_picks(tmp_path / "d.star", explicit, "relion5", voxel_size=1.0)
    path = write_picks(tmp_path / "e.star", picks, "relion5")
    with pytest.raises(BadInputError, match=r"shape=\(z, y, x\) and voxel_size="):
        read_picks(path)
    assert not any(p.name.startswith(("a.", "b.", "c.")) for p in tmp_path.iterdir())


def test_multi_tomogram_star_needs_a_choice(tmp_path):
    import pandas as pd
    import starfile

    table = pd.DataFrame(
        {
            "rlnTomoName": ["TS_01", "TS_02", "TS_02"],
            "rlnCoordinateX": [1.0, 2.0, 3.0],
            "rlnCoordinateY": [1.0, 2.0, 3.0],
            "rlnCoordinateZ": [1.0, 2.0, 3.0],
        }
    )
    path = tmp_path / "all.star"
    starfile.write({"particles": table}, path)
    with pytest.raises(BadInputError, match=r"TS_01, TS_02.*tomogram=NAME"):
        read_picks(path)
    picks = read_picks(path, tomogram="TS_02")
    assert len(picks) == 2 and picks.tomogram == "TS_02" and picks.coordinates[0, 2] == 2.0
    with pytest.raises(BadInputError, match="no picks for 'TS_09'"):
        read_picks(path, tomogram="TS_09")


def test_numeric_looking_tomogram_names_stay_strings(tmp_path):
    picks = Picks([[1.0, 2.0, 3.0]], tomogram="007")
    assert read_picks(write_picks(tmp_path / "p.star", picks, "relion4")).tomogram == "007"


def test_format_inference_and_errors(tmp_path):
    picks = tomogram_picks(2)
    written = read_picks(write_picks(tmp_path / "p.star", picks), shape=SHAPE_3D, voxel_size=13.7)
    np.testing.assert_allclose(written.coordinates, picks.coordinates, atol=1e-3)
    assert picks_format(tmp_path / "p.star", ndim=3) == "relion5"
    assert picks_format(tmp_path / "p.star", ndim=3, format="relion4") == "relion4"
    assert picks_format(tmp_path / "p.star", ndim=2) == "star2d"
    with pytest.raises(BadInputError, match="copick or eman2"):
        write_picks(tmp_path / "p.json", picks)
    with pytest.raises(BadInputError, match="one of relion5, relion4"):
        write_picks(tmp_path / "p.xyz", picks)
    with pytest.raises(BadInputError, match="unknown picks format 'pdb'"):
        write_picks(tmp_path / "p.star", picks, "pdb")
    with pytest.raises(BadInputError, match="holds 2D picks but these are 3D"):
        write_picks(tmp_path / "p.box", picks, box_size_px=10)
    with pytest.raises(BadInputError, match="holds 3D picks but these are 2D"):
        write_picks(tmp_path / "p.star", micrograph_picks(), "relion4")
    with pytest.raises(BadInputError, match="does not take colour"):
        write_picks(tmp_path / "p.csv", picks, colour="red")
    # reading infers .star and .json from their contents
    assert read_picks(write_picks(tmp_path / "r4.star", picks, "relion4")).tomogram == "TS_01"
    assert read_picks(write_picks(tmp_path / "c.json", picks, "copick")).feature == "ribosome"
    assert read_picks(write_picks(tmp_path / "m.star", micrograph_picks())).ndim == 2


def test_refuses_to_overwrite_and_leaves_the_old_file(tmp_path):
    path = write_picks(tmp_path / "p.csv", tomogram_picks(2))
    before = path.read_text()
    with pytest.raises(OutputExistsError, match=r"p\.csv"):
        write_picks(path, tomogram_picks(3))
    assert path.read_text() == before
    write_picks(path, tomogram_picks(3), overwrite=True)
    assert len(read_picks(path)) == 3


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("p.csv", "a,b\n1,2\n", "header with x,y"),
        ("p.csv", "x,y,z\n1,2,oops\n", "not a readable csv"),
        ("p.txt", "1 2\n", "three columns"),
        ("p.ndjson", '{"type": "point"}\n', "not a readable cryoet-ndjson"),
        ("p.ndjson", "not json\n", "line 1 is not JSON"),
        ("p.json", "[1, 2]", "copick 'points' or EMAN2 'boxes_3d'"),
        ("p.json", "{oops", "not valid JSON"),
        ("p.star", "data_\nloop_\n_rlnFoo #1\n1\n", "without particle coordinates"),
        ("p.box", "1 2 3\n", "four columns"),
        ("p.dat", "1 2 3\n", "cannot tell the picks format"),
    ],
)
def test_malformed_files_give_one_clear_error_naming_the_file(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(BadInputError, match=message) as error:
        read_picks(path)
    assert str(path) in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(MissingInputError, match=r"nothing\.star"):
        read_picks(tmp_path / "nothing.star")


def test_read_options_label_picks_of_formats_without_metadata(tmp_path):
    path = write_picks(tmp_path / "p.csv", tomogram_picks(2))
    picks = read_picks(
        path, voxel_size=8.0, shape=SHAPE_3D, origin=(1.0, 2.0, 3.0), tomogram="TS", feature="f"
    )
    assert (picks.voxel_size, picks.shape, picks.origin) == (8.0, SHAPE_3D, (1.0, 2.0, 3.0))
    assert (picks.tomogram, picks.feature) == ("TS", "f")
