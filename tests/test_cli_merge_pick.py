"""``tomoseg-nb merge``, ``pick`` and ``mesh`` end to end on small maps written to disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
import starfile

from tomoseg_nb.cli import main
from tomoseg_nb.coords import read_picks
from tomoseg_nb.merge import merge_competitive
from tomoseg_nb.volume import open_volume, write_volume


@pytest.fixture()
def maps(tmp_path) -> dict:
    """Two particles (ribosome map) sitting on a membrane (membrane map), at 40 A per voxel."""
    shape = (16, 32, 32)
    z, y, x = np.indices(shape)
    ribosome = np.zeros(shape, np.float32)
    for cz, cy, cx in ((8, 10, 20), (8, 22, 9)):
        ribosome = np.maximum(
            ribosome, np.exp(-((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) / 8.0)
        )
    membrane = np.exp(-((z - 5.0) ** 2) / 2.0).astype(np.float32) * np.ones(shape, np.float32)
    origin = (10.0, 20.0, 30.0)
    paths = {
        "ribosome": write_volume(
            tmp_path / "TS_07__ribosome.mrc", ribosome, voxel_size=40.0, origin=origin
        ),
        "membrane": write_volume(
            tmp_path / "TS_07__membrane.mrc", membrane, voxel_size=40.0, origin=origin
        ),
    }
    return {"paths": paths, "ribosome": ribosome, "membrane": membrane, "dir": tmp_path}


def test_merge_writes_labels_and_name_map(maps: dict, capsys) -> None:
    out = maps["dir"] / "labels.mrc"
    status = main(
        [
            "merge",
            str(maps["paths"]["membrane"]),
            str(maps["paths"]["ribosome"]),
            "--thresholds",
            "0.5,0.4",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    with open_volume(out) as volume:
        expected = merge_competitive([maps["membrane"], maps["ribosome"]], threshold=[0.5, 0.4])
        np.testing.assert_array_equal(volume.read(), expected)
        assert volume.origin == (10.0, 20.0, 30.0)
    names = json.loads(out.with_suffix(".json").read_text())["labels"]
    assert names == {"0": "background", "1": "membrane", "2": "ribosome"}
    assert "ribosome" in capsys.readouterr().out


def test_merge_refuses_maps_of_different_shapes(maps: dict, capsys) -> None:
    other = write_volume(
        maps["dir"] / "other.mrc", np.zeros((16, 32, 30), np.float32), voxel_size=40.0
    )
    status = main(
        ["merge", str(maps["paths"]["membrane"]), str(other), "--out", str(maps["dir"] / "x.mrc")]
    )
    assert status == 2
    assert "differs from" in capsys.readouterr().err
    assert not (maps["dir"] / "x.mrc").exists()


def test_merge_with_nothing_above_threshold_warns_and_writes(maps: dict, capsys) -> None:
    out = maps["dir"] / "none.mrc"
    assert (
        main(["merge", str(maps["paths"]["ribosome"]), "--threshold", "1.5", "--out", str(out)])
        == 0
    )
    assert "warning: no voxel" in capsys.readouterr().err
    with open_volume(out) as volume:
        assert not volume.read().any()


def test_merge_rule_syntax_is_checked(maps: dict, capsys) -> None:
    args = [
        "merge",
        str(maps["paths"]["ribosome"]),
        "--out",
        str(maps["dir"] / "r.mrc"),
        "--avoid",
        "ribosome:membrane",
    ]
    assert main(args) == 2
    assert "TARGET:PARTNER:RADIUS" in capsys.readouterr().err


def test_pick_writes_relion5_in_the_unbinned_frame(maps: dict, capsys) -> None:
    out = maps["dir"] / "picks.star"
    args = [
        "pick",
        str(maps["paths"]["ribosome"]),
        "--threshold",
        "0.5",
        "--min-distance",
        "3",
        "--min-mass",
        "1",
    ]
    assert main([*args, "--binning", "4", "--format", "relion5", "--out", str(out)]) == 0
    table = starfile.read(out)
    assert set(table["rlnTomoName"]) == {"TS_07"}
    # Peak at binned voxel x=20 of 32 at 40 A: (20 - 16) * 40 = 160 A from the centre; y=10: -240.
    xyz = table[[f"rlnCenteredCoordinate{a}Angst" for a in "XYZ"]].to_numpy()
    assert sorted(map(tuple, xyz.tolist())) == [(-280.0, 240.0, 0.0), (160.0, -240.0, 0.0)]
    assert "2 particles from 2 candidates" in capsys.readouterr().out
    picks = read_picks(out, voxel_size=10.0, shape=(64, 128, 128))
    assert sorted(picks.coordinates.tolist()) == [[32.0, 40.0, 80.0], [32.0, 88.0, 36.0]]


def test_pick_takes_the_frame_from_the_tomogram(maps: dict) -> None:
    tomogram = write_volume(
        maps["dir"] / "TS_07.mrc",
        np.zeros((32, 64, 64), np.float32),
        voxel_size=20.0,
        origin=(1, 2, 3),
    )
    out = maps["dir"] / "picks.csv"
    args = [
        "pick",
        str(maps["paths"]["ribosome"]),
        "--threshold",
        "0.5",
        "--min-distance",
        "3",
        "--min-mass",
        "1",
    ]
    assert main([*args, "--tomogram", str(tomogram), "--out", str(out)]) == 0
    picks = read_picks(out)
    assert sorted(picks.coordinates.tolist()) == [[16.0, 20.0, 40.0], [16.0, 44.0, 18.0]]


def test_pick_empty_segmentation_warns_and_writes_a_valid_empty_file(maps: dict, capsys) -> None:
    empty = write_volume(
        maps["dir"] / "empty.mrc", np.zeros((8, 16, 16), np.float32), voxel_size=10.0
    )
    out = maps["dir"] / "empty.csv"
    assert (
        main(["pick", str(empty), "--threshold", "0.5", "--min-distance", "3", "--out", str(out)])
        == 0
    )
    assert "warning: the probability map is empty" in capsys.readouterr().err
    assert len(read_picks(out)) == 0


def test_pick_refuses_unknown_format_and_missing_settings(maps: dict, capsys) -> None:
    base = [
        "pick",
        str(maps["paths"]["ribosome"]),
        "--threshold",
        "0.5",
        "--out",
        str(maps["dir"] / "p.xyz"),
    ]
    assert main([*base, "--min-distance", "3", "--format", "xyz"]) == 2
    assert "unknown picks format 'xyz'" in capsys.readouterr().err
    assert main([*base, "--min-distance", "3"]) == 2
    assert "cannot tell the picks format" in capsys.readouterr().err
    base[-1] = str(maps["dir"] / "p.csv")
    assert main(base) == 2
    assert "--min-distance" in capsys.readouterr().err
    assert main([*base, "--mode", "filament"]) == 2
    assert "--spacing" in capsys.readouterr().err
    assert not (maps["dir"] / "p.xyz").exists()
    assert not (maps["dir"] / "p.csv").exists()


def test_pick_filament_mode_writes_oriented_points(tmp_path) -> None:
    z, y, _ = np.indices((16, 24, 48))
    rod = (np.hypot(z - 8, y - 12) <= 2.5).astype(np.float32)
    path = write_volume(tmp_path / "TS_01__actin.mrc", rod, voxel_size=10.0)
    out = tmp_path / "actin.star"
    assert (
        main(
            [
                "pick",
                str(path),
                "--threshold",
                "0.5",
                "--mode",
                "filament",
                "--spacing",
                "55",
                "--format",
                "relion4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = starfile.read(out)
    assert len(table) >= 6
    np.testing.assert_allclose(table["rlnAngleTilt"], 90.0, atol=1.0)
    assert np.allclose(np.abs(np.cos(np.radians(table["rlnAnglePsi"]))), 1.0, atol=1e-3)


def test_mesh_of_a_probability_map_and_of_a_merged_label(maps: dict, capsys) -> None:
    out = maps["dir"] / "ribosome.obj"
    assert (
        main(["mesh", str(maps["paths"]["ribosome"]), "--threshold", "0.5", "--out", str(out)]) == 0
    )
    vertices = np.array(
        [
            [float(v) for v in line.split()[1:]]
            for line in out.read_text().splitlines()
            if line.startswith("v ")
        ]
    )
    # Around x = 20 voxels * 40 A + 10 A origin = 810 A, for the first particle.
    assert vertices[:, 0].max() == pytest.approx(810.0 + 2 * 40.0, abs=40.0)
    labels = maps["dir"] / "labels.mrc"
    assert (
        main(
            [
                "merge",
                str(maps["paths"]["membrane"]),
                str(maps["paths"]["ribosome"]),
                "--thresholds",
                "0.5,0.4",
                "--out",
                str(labels),
            ]
        )
        == 0
    )
    glb = maps["dir"] / "membrane.glb"
    assert main(["mesh", str(labels), "--label", "membrane", "--out", str(glb)]) == 0
    assert glb.read_bytes()[:4] == b"glTF"
    assert (
        main(["mesh", str(labels), "--label", "nucleus", "--out", str(maps["dir"] / "n.obj")]) == 2
    )
    assert "no label 'nucleus'" in capsys.readouterr().err
    assert main(["mesh", str(maps["paths"]["ribosome"]), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_pick_diameter_sets_distance_and_size_rules(maps: dict, capsys) -> None:
    z, y, x = np.indices(maps["ribosome"].shape)
    small = np.exp(-((z - 8) ** 2 + (y - 26) ** 2 + (x - 26) ** 2) / 3.0).astype(np.float32)
    path = write_volume(
        maps["dir"] / "TS_07__mixed.mrc", np.maximum(maps["ribosome"], small), voxel_size=40.0
    )
    base = ["pick", str(path), "--threshold", "0.5", "--min-mass", "1", "--format", "csv"]
    assert main([*base, "--min-distance", "3", "--out", str(maps["dir"] / "all.csv")]) == 0
    assert len(read_picks(maps["dir"] / "all.csv")) == 3
    assert main([*base, "--diameter", "250", "--out", str(maps["dir"] / "big.csv")]) == 0
    assert len(read_picks(maps["dir"] / "big.csv")) == 2
    assert "dropped 1 by size" in capsys.readouterr().out


def test_pick_refuses_a_diameter_typed_in_nm_and_an_unnamed_tomogram_before_work(
    maps: dict, tmp_path, capsys
) -> None:
    ribosome = str(maps["paths"]["ribosome"])
    out = tmp_path / "p.star"
    # 25 (nm meant) at 40 A per voxel is 0.6 voxels: refused, with the unit spelled out
    assert (
        main(["pick", ribosome, "--threshold", "0.5", "--diameter", "25", "--out", str(out)]) == 2
    )
    error = capsys.readouterr().err
    assert "25 Angstrom is 0.62 voxels" in error and "give the diameter in Angstrom" in error
    assert (
        main(["pick", ribosome, "--threshold", "0.5", "--diameter", "1e5", "--out", str(out)]) == 2
    )
    assert "more than half" in capsys.readouterr().err
    # a map not named <tomogram>__<feature> cannot fill rlnTomoName
    plain = write_volume(tmp_path / "ribosome.mrc", maps["ribosome"], voxel_size=40.0)
    args = ["pick", str(plain), "--threshold", "0.5", "--min-distance", "3", "--out", str(out)]
    assert main(args) == 2
    assert "pass --tomogram TOMO or --tomo-name NAME" in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--tomo-name", "TS_07"]) == 0
    assert read_picks(out, shape=maps["ribosome"].shape, voxel_size=40.0).tomogram == "TS_07"
