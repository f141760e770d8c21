"""``tomoseg-nb boxer train|pick`` end to end on phantom files, and the micrograph / coordinate readers."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from tomoseg_nb.boxer.files import coordinates_per_micrograph, read_micrograph
from tomoseg_nb.cli import main
from tomoseg_nb.coords import Picks, read_picks, write_picks
from tomoseg_nb.errors import BadInputError
from tomoseg_nb.synthetic.micrograph import phantom_references, simulate_micrograph
from tomoseg_nb.volume import write_volume


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Two phantom micrographs on disk with good / background / bad coordinate files."""
    folder = tmp_path_factory.mktemp("boxer_cli")
    files = {"micrographs": [], "good": [], "background": [], "bad": []}
    for seed in range(2):
        phantom = simulate_micrograph(
            (384, 384),
            pixel_size=10.0,
            n_particles=15,
            n_aggregates=2,
            n_contamination=2,
            seed=seed,
        )
        path = write_volume(folder / f"mic{seed}.mrc", phantom.image, voxel_size=10.0)
        files["micrographs"].append(str(path))
        refs = phantom_references(phantom, n_good=5, n_background=5, n_bad=4, seed=seed)
        for kind, suffix in (("good", ".star"), ("background", ".csv"), ("bad", ".box")):
            path = folder / f"mic{seed}_{kind}{suffix}"
            picks = Picks(refs[kind], tomogram=f"mic{seed}")
            write_picks(path, picks, **({"box_size_px": 44} if suffix == ".box" else {}))
            files[kind].append(str(path))
    files["folder"] = folder
    return files


@pytest.fixture(scope="module")
def model_path(project):
    out = project["folder"] / "model.boxer"
    status = main(
        [
            "boxer",
            "train",
            "--micrographs",
            *project["micrographs"],
            "--good",
            *project["good"],
            "--background",
            *project["background"],
            "--bad",
            *project["bad"],
            "--box",
            "44",
            "--epochs",
            "2",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    return out


def test_train_writes_a_model_folder(model_path, capsys):
    assert (model_path / "boxer.json").is_file() and (model_path / "classifier.keras").is_file()


@pytest.mark.parametrize("format", ["star", "box", "csv"])
def test_pick_writes_one_file_per_micrograph(project, model_path, format, capsys):
    out = project["folder"] / f"picks_{format}"
    status = main(
        [
            "boxer",
            "pick",
            "--model",
            str(model_path),
            *project["micrographs"],
            "--out",
            str(out),
            "--format",
            format,
            "--threshold",
            "0.5",
        ]
    )
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == [f"mic0.{format}", f"mic1.{format}"]
    picks = read_picks(out / f"mic1.{format}")
    assert len(picks) > 0
    assert "picks in 2 micrograph(s)" in capsys.readouterr().out


def test_pick_refuses_existing_outputs(project, model_path, capsys):
    out = project["folder"] / "picks_again"
    arguments = ["boxer", "pick", "--model", str(model_path), project["micrographs"][0]]
    assert main([*arguments, "--out", str(out)]) == 0
    assert main([*arguments, "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*arguments, "--out", str(out), "--overwrite", "--method", "template"]) == 0


def test_train_with_too_few_references_is_a_one_line_error(project, tmp_path, capsys):
    good = tmp_path / "few.csv"
    write_picks(good, Picks(np.array([[100.0, 100.0], [200.0, 200.0]])))
    status = main(
        [
            "boxer",
            "train",
            "--micrographs",
            project["micrographs"][0],
            "--good",
            str(good),
            "--background",
            project["background"][0],
            "--box",
            "44",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    assert status == 2
    assert "at least 5 good" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_pick_a_missing_model(project, tmp_path, capsys):
    status = main(
        [
            "boxer",
            "pick",
            "--model",
            str(tmp_path / "nope"),
            project["micrographs"][0],
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert status == 2
    assert "no such boxer model" in capsys.readouterr().err


def test_pick_refuses_two_micrographs_of_the_same_name(project, model_path, tmp_path, capsys):
    other = tmp_path / "mic0.mrc"
    write_volume(other, np.ones((64, 64), np.float32))
    status = main(
        [
            "boxer",
            "pick",
            "--model",
            str(model_path),
            project["micrographs"][0],
            str(other),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert status == 2
    assert "same name" in capsys.readouterr().err


# --- readers -------------------------------------------------------------------------------------


def test_read_micrograph_formats(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 65535, (64, 80)).astype(np.uint16)
    Image.fromarray(image).save(tmp_path / "sixteen.png")
    Image.fromarray((image >> 8).astype(np.uint8)).save(tmp_path / "eight.png")
    Image.fromarray((image >> 8).astype(np.uint8)).save(tmp_path / "eight.jpg", quality=95)
    tifffile.imwrite(tmp_path / "image.tif", image.astype(np.float32))
    write_volume(tmp_path / "stack.mrcs", image[None].astype(np.float32), voxel_size=1.3)
    sixteen = read_micrograph(tmp_path / "sixteen.png")
    assert sixteen.image.shape == (64, 80) and np.array_equal(sixteen.image, image)
    assert sixteen.pixel_size is None
    assert read_micrograph(tmp_path / "eight.png").image.max() <= 255
    assert read_micrograph(tmp_path / "eight.jpg").image.shape == (64, 80)
    assert read_micrograph(tmp_path / "image.tif").image.shape == (64, 80)
    stack = read_micrograph(tmp_path / "stack.mrcs")
    assert stack.image.shape == (64, 80) and stack.pixel_size == pytest.approx(1.3)
    assert read_micrograph(tmp_path / "sixteen.png", pixel_size=2.0).pixel_size == 2.0


def test_coordinates_from_one_star_naming_micrographs(tmp_path):
    micrographs = []
    for name in ("a", "b"):
        write_volume(tmp_path / f"{name}.mrc", np.ones((32, 32), np.float32), voxel_size=2.0)
        micrographs.append(read_micrograph(tmp_path / f"{name}.mrc"))
    import pandas as pd
    import starfile

    table = pd.DataFrame(
        {
            "rlnMicrographName": ["a.mrc", "a.mrc", "b.mrc"],
            "rlnCoordinateX": [1.0, 2.0, 3.0],
            "rlnCoordinateY": [4.0, 5.0, 6.0],
        }
    )
    starfile.write({"particles": table}, tmp_path / "all.star")
    a, b = coordinates_per_micrograph([tmp_path / "all.star"], micrographs, "good")
    assert a.tolist() == [[4.0, 1.0], [5.0, 2.0]] and b.tolist() == [[6.0, 3.0]]
    with pytest.raises(BadInputError, match="one file per micrograph"):
        coordinates_per_micrograph([tmp_path / "all.star"] * 3, micrographs, "good")


def test_box_in_angstrom_needs_a_pixel_size(project, tmp_path, capsys):
    image = (np.random.default_rng(0).random((128, 128)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "teaching.png")
    status = main(
        [
            "boxer",
            "train",
            "--micrographs",
            str(tmp_path / "teaching.png"),
            "--good",
            project["good"][0],
            "--background",
            project["background"][0],
            "--box-angstrom",
            "440",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    assert status == 2
    assert "has no pixel size" in capsys.readouterr().err
