"""``tomoseg-nb simulate`` writes every phantom file, refuses to overwrite, reports mistakes."""

import json

import numpy as np

from tomoseg_nb.cli import main
from tomoseg_nb.volume import open_volume

TOMOGRAM_FILES = {"tomogram.mrc", "labels.mrc", "labels.json", "particles.csv", "filaments.json"}


def test_simulate_tomogram_writes_all_files(tmp_path, capsys):
    out = tmp_path / "phantom"
    arguments = ["simulate", "--out", str(out), "--shape", "16", "64", "64", "--kind", "tomogram"]
    assert main([*arguments, "--seed", "3", "--voxel-size", "12", "--snr", "2"]) == 0
    assert {p.name for p in out.iterdir()} == TOMOGRAM_FILES
    with open_volume(out / "tomogram.mrc") as volume:
        assert volume.shape == (16, 64, 64)
        assert volume.voxel_size == 12.0
        assert volume.read().dtype == np.float32
    with open_volume(out / "labels.mrc") as volume:
        assert volume.shape == (16, 64, 64)
        assert set(np.unique(volume.data)) <= set(range(7))
    assert json.loads((out / "labels.json").read_text())["ribosome"] == 3
    assert (out / "particles.csv").read_text().splitlines()[0] == "feature,x,y,z"
    assert str(out) in capsys.readouterr().out


def test_simulate_refuses_existing_outputs_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "phantom"
    arguments = ["simulate", "--out", str(out), "--shape", "16", "48", "48", "--kind", "tomogram"]
    assert main(arguments) == 0
    first = (out / "tomogram.mrc").read_bytes()
    capsys.readouterr()
    assert main([*arguments, "--seed", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "tomogram.mrc").read_bytes() == first
    assert main([*arguments, "--seed", "1", "--overwrite"]) == 0
    assert (out / "tomogram.mrc").read_bytes() != first


def test_simulate_both_writes_a_micrograph_folder_too(tmp_path):
    out = tmp_path / "both"
    arguments = ["simulate", "--out", str(out), "--shape", "16", "48", "48"]
    assert main([*arguments, "--micrograph-shape", "256", "256", "--voxel-size", "10"]) == 0
    assert TOMOGRAM_FILES <= {p.name for p in out.iterdir()}
    with open_volume(out / "micrograph" / "micrograph.mrc", ndim=2) as image:
        assert image.shape == (256, 256)
        assert image.voxel_size == 10.0
    assert main([*arguments, "--kind", "micrograph", "--micrograph-shape", "256", "256"]) == 2


def test_simulate_reports_bad_values_without_writing(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["simulate", "--out", str(out), "--kind", "tomogram", "--snr", "-1"]) == 2
    assert "snr" in capsys.readouterr().err
    assert not out.exists()
