"""Damaged files in, failing disks out: readers answer only with TomosegError, writers leave no partial file.

Readers: every file the package reads (tomograms, picks, projects, masks, model sidecars, label
maps, boxer models) is truncated, bit-flipped, spliced or replaced by random bytes (hypothesis);
the reader must return a valid result or raise a ``TomosegError`` with a one-line message, never
another exception. Writers: every kind of output is written while the disk fills up (a kernel
file-size limit, so the failure is real and comes mid-write), while the final rename is refused,
and into a folder that cannot be written even by root; the earlier file stays as it was and no
temporary is left.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import resource
import shutil
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tomoseg_nb.annotations import MASKS_FILE, PROJECT_FILE, Project
from tomoseg_nb.atomic import write_json_atomic
from tomoseg_nb.coords import Picks, read_picks, write_picks
from tomoseg_nb.errors import BadInputError, TomosegError
from tomoseg_nb.merge import merge_files, read_label_names
from tomoseg_nb.volume import open_volume, write_volume

SHAPE = (8, 64, 64)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# ------------------------------------------------------------------------------ valid files


def _tiny_model(path: Path) -> Path:
    from tomoseg_nb.models import ModelInfo, build_model, save_model
    from tomoseg_nb.preprocess import Recipe

    info = ModelInfo(feature="membrane", arch="tiny", voxel_size=10.0, recipe=Recipe().to_dict())
    return save_model(build_model("tiny", seed=0), info, path)


def _boxer(path: Path) -> Path:
    from tomoseg_nb.boxer.model import BoxerInfo, BoxerModel, save_boxer
    from tomoseg_nb.boxer.networks import build_classifier, build_picker
    from tomoseg_nb.boxer.preprocess import BoxerRecipe

    recipe = BoxerRecipe()
    model = BoxerModel(
        picker=build_picker(seed=0),
        classifier=build_classifier(recipe.working_box_px, seed=0),
        references=np.random.default_rng(0).normal(size=(3, 48, 48)).astype(np.float32),
        info=BoxerInfo(box_px=40.0, pixel_size=10.0, recipe=recipe.to_dict()),
    )
    return save_boxer(model, path)


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, Path]:
    """One valid file of every kind the package reads."""
    d = tmp_path_factory.mktemp("valid")
    rng = np.random.default_rng(0)
    volume = rng.normal(size=(4, 16, 20)).astype(np.float32)
    picks3 = Picks(
        rng.uniform(0, 15, (4, 3)),
        scores=rng.uniform(0, 1, 4),
        voxel_size=5.0,
        shape=(16, 16, 16),
        tomogram="TS_01",
        feature="ribosome",
        orientations=rng.uniform(0, 90, (4, 3)),
    )
    picks2 = Picks(rng.uniform(10, 50, (4, 2)), scores=rng.uniform(0, 1, 4), tomogram="mic")
    files = {
        "mrc": write_volume(d / "v.mrc", volume, voxel_size=3.0),
        "tif": write_volume(d / "v.tif", volume, voxel_size=3.0),
        "zarr": write_volume(d / "v.zarr", volume, voxel_size=3.0) / ".zattrs",
        "relion5": write_picks(d / "r5.star", picks3, "relion5"),
        "relion4": write_picks(d / "r4.star", picks3, "relion4"),
        "star2d": write_picks(d / "s2.star", picks2, "star2d"),
        "copick": write_picks(d / "c.json", picks3, "copick"),
        "eman2": write_picks(d / "TS_01_info.json", picks3, "eman2"),
        "imod": write_picks(d / "p.txt", picks3, "imod"),
        "csv": write_picks(d / "p.csv", picks3, "csv"),
        "ndjson": write_picks(d / "p.ndjson", picks3, "cryoet-ndjson"),
        "box": write_picks(d / "p.box", picks2, "box", box_size_px=16),
    }
    from PIL import Image

    Image.fromarray((rng.uniform(size=(16, 20)) * 255).astype(np.uint8)).save(d / "m.png")
    files["png"] = d / "m.png"
    with Project.create(d / "project", tomogram_shape=(4, 64, 64), voxel_size=10.0) as project:
        project.add_feature("membrane", tile_size=16)
        tile = project.add_tile("membrane", 1, 20, 20)
        project.set_mask(tile.id, rng.uniform(size=(16, 16)) > 0.5)
        project.add_tile("membrane", 2, 40, 40, positive=False)
    files["project"] = d / "project" / PROJECT_FILE
    files["masks"] = d / "project" / MASKS_FILE
    files["sidecar"] = _tiny_model(d / "membrane.keras").with_suffix(".json")
    merge_files([write_volume(d / "TS__a.mrc", rng.uniform(size=(4, 8, 8)))], d / "labels.mrc")
    files["labels"] = d / "labels.json"
    boxer = _boxer(d / "model.boxer")
    files["boxer"] = boxer / "boxer.json"
    files["references"] = boxer / "references.npz"
    return files


def _read(kind: str, path: Path):
    """What the package does with a file of this kind: open it, and use what it got."""
    if kind in ("mrc", "tif", "zarr", "png"):
        target = path.parent if kind == "zarr" else path
        with open_volume(target, ndim=None) as volume:
            return volume.read()
    if kind in ("project", "masks"):
        return Project.open(path.parent, read_only=True)
    if kind == "sidecar":
        from tomoseg_nb.models import load_model

        return load_model(path.with_suffix(".keras"))
    if kind == "labels":
        return read_label_names(path)
    if kind in ("boxer", "references"):
        from tomoseg_nb.boxer.model import load_boxer

        return load_boxer(path.parent)
    if kind in ("relion5", "eman2"):
        return read_picks(path, voxel_size=5.0, shape=(16, 16, 16))
    return read_picks(path)


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """``data`` truncated, with bytes overwritten (often in the header), spliced, or random."""
    how = draw(st.sampled_from(["truncate", "overwrite", "header", "splice", "random"]))
    if how == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if how in ("overwrite", "header"):
        end = min(len(data), 1100) if how == "header" else len(data)
        damaged = bytearray(data)
        for position in draw(st.lists(st.integers(0, end - 1), min_size=1, max_size=12)):
            damaged[position] = draw(st.integers(0, 255))
        return bytes(damaged)
    if how == "splice":
        start = draw(st.integers(0, len(data)))
        return data[:start] + data[draw(st.integers(start, len(data))) :]
    return draw(st.binary(max_size=600))


CHEAP = ["mrc", "tif", "zarr", "png", "relion5", "relion4", "star2d", "copick", "eman2"]
CHEAP += ["imod", "csv", "ndjson", "box", "project", "masks", "labels"]


@contextlib.contextmanager
def _damaged_copy(path: Path, content: bytes):
    original = path.read_bytes()
    path.write_bytes(content)
    try:
        yield
    finally:
        path.write_bytes(original)


def _assert_valid_or_tomoseg_error(kind: str, path: Path, content: bytes) -> None:
    with _damaged_copy(path, content), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _read(kind, path)
        except TomosegError as error:
            assert "\n" not in str(error), str(error)  # one line, for the CLI


@pytest.mark.parametrize("kind", CHEAP)
@FUZZ
@given(data=st.data())
def test_damaged_files_give_a_valid_result_or_a_tomoseg_error(kind, valid, data):
    path = valid[kind]
    _assert_valid_or_tomoseg_error(kind, path, data.draw(damaged(path.read_bytes())))


@pytest.mark.parametrize("kind", ["sidecar", "boxer", "references"])
@settings(FUZZ, max_examples=15)
@given(data=st.data())
def test_damaged_model_files_give_a_valid_result_or_a_tomoseg_error(kind, valid, data):
    path = valid[kind]
    _assert_valid_or_tomoseg_error(kind, path, data.draw(damaged(path.read_bytes())))


HOSTILE_JSON = {
    "nested thousands deep": "[" * 100_000 + "]" * 100_000,
    "huge numbers": '{"format": 1e999, "points": [{"location": {"x": 1e999}}], "labels": 1e999}',
    "wrong types": '{"format": [], "version": {}, "labels": [1, 2], "points": "x", "features": 3}',
    "not utf-8": b"\xff\xfe{\x00}\x00",
}


@pytest.mark.parametrize("kind", ["project", "sidecar", "labels", "boxer", "copick", "eman2"])
@pytest.mark.parametrize("hostile", sorted(HOSTILE_JSON))
def test_hostile_json_is_refused_by_every_json_reader(kind, hostile, valid):
    content = HOSTILE_JSON[hostile]
    content = content.encode() if isinstance(content, str) else content
    path = valid[kind]
    with _damaged_copy(path, content), pytest.raises(TomosegError) as error:
        _read(kind, path)
    message = str(error.value)
    assert "\n" not in message and (path.name in message or path.parent.name in message)


# --------------------------------------------------------------------------- failing disks


def _tiny_mesh():
    from tomoseg_nb.mesh import mesh_from_map

    z, y, x = np.indices((24, 24, 24)) - 12
    return mesh_from_map((z**2 + y**2 + x**2 < 81).astype(np.float32), threshold=0.5)


def _write_project(path: Path, overwrite: bool) -> None:
    """Paint eight more 64 px masks and save: the masks file grows past the size limit."""
    with Project.open(path, autosave=False) as project:
        z = len(project.tiles) // 8
        for y in range(40, 232, 24):
            tile = project.add_tile("membrane", z, y, 64)
            project.set_mask(tile.id, np.random.default_rng(y).uniform(size=(64, 64)) > 0.5)
        project.save()


def _segment(path: Path, overwrite: bool, source: Path, model: Path) -> None:
    from tomoseg_nb.segment import segment_volume

    segment_volume([model], source, out_paths=[path], overwrite=overwrite)


def _write_mesh(path: Path, overwrite: bool, mesh) -> None:
    from tomoseg_nb.mesh import write_mesh

    write_mesh(path, mesh, overwrite=overwrite)


# output name -> writer(path, overwrite, inputs); every output is larger than LIMIT.
WRITERS = {
    "map.mrc": lambda p, o, i: write_volume(p, i["data"], overwrite=o),
    "map.tif": lambda p, o, i: write_volume(p, i["data"], overwrite=o),
    "map.zarr": lambda p, o, i: write_volume(p, i["data"], overwrite=o),
    "labels.mrc": lambda p, o, i: merge_files([i["map"]], p, threshold=0.1, overwrite=o),
    "TS__membrane.mrc": lambda p, o, i: _segment(p, o, i["tomogram"], i["model"]),
    "picks.csv": lambda p, o, i: write_picks(p, i["picks"], overwrite=o),
    "scores.json": lambda p, o, i: write_json_atomic(p, {"values": list(range(5000))}, overwrite=o),
    "ball.obj": lambda p, o, i: _write_mesh(p, o, i["mesh"]),
    "net.keras": lambda p, o, i: _overwrite_model(p) if o else _tiny_model(p),
    "model.boxer": lambda p, o, i: _overwrite_boxer(p) if o else _boxer(p),
    "project": lambda p, o, i: _write_project(p, o),
}
LIMIT = 24 * 1024


def _overwrite_model(path: Path) -> Path:
    from tomoseg_nb.models import ModelInfo, build_model, save_model
    from tomoseg_nb.preprocess import Recipe

    info = ModelInfo(feature="membrane", arch="fast", voxel_size=10.0, recipe=Recipe().to_dict())
    return save_model(build_model("fast", seed=1), info, path, overwrite=True)


def _overwrite_boxer(path: Path) -> Path:
    from tomoseg_nb.boxer.model import load_boxer, save_boxer

    model = load_boxer(path)
    model.references = np.ones((20, 48, 48), np.float32)
    return save_boxer(model, path, overwrite=True)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("writer_inputs")
    rng = np.random.default_rng(1)
    return {
        "data": rng.normal(size=SHAPE).astype(np.float32),
        "map": write_volume(d / "TS__a.mrc", rng.uniform(size=SHAPE).astype(np.float32)),
        "tomogram": write_volume(
            d / "TS.mrc", rng.normal(size=SHAPE).astype(np.float32), voxel_size=10.0
        ),
        "model": _tiny_model(d / "membrane.keras"),
        "picks": Picks(rng.uniform(0, 60, (2000, 3)), scores=rng.uniform(size=2000)),
        "mesh": _tiny_mesh(),
    }


def _first_version(folder: Path, name: str, inputs: dict) -> Path:
    """The earlier output the failed rewrite must leave untouched."""
    path = folder / name
    if name == "project":
        with Project.create(path, tomogram_shape=(4, 256, 256), voxel_size=10.0) as project:
            project.add_feature("membrane", tile_size=64)
    else:
        WRITERS[name](path, False, inputs)
    return path


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else ""
        for p in sorted(folder.rglob("*"))
    }


@contextlib.contextmanager
def full_disk(limit_bytes: int = LIMIT):
    """Writes past ``limit_bytes`` fail with EFBIG from the kernel, mid-write, as on a full disk.

    RLIMIT_FSIZE binds root too and needs no special file system; the soft limit is put back.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_disk_filling_up_mid_write_keeps_the_earlier_file(name, inputs, tmp_path):
    _first_version(tmp_path, name, inputs)
    before = _snapshot(tmp_path)
    with pytest.raises(OSError) as error, full_disk():
        WRITERS[name](tmp_path / name, True, inputs)
    # EFBIG from the kernel, or tifffile's own "N requested and M written" (no errno)
    assert error.value.errno in (errno.EFBIG, None)
    assert _snapshot(tmp_path) == before  # old bytes, and no temporary left beside them


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_refused_rename_keeps_the_earlier_file(name, inputs, tmp_path, monkeypatch):
    """The last step of every write is a rename into place; a read-only or full disk refuses it."""
    _first_version(tmp_path, name, inputs)
    before = _snapshot(tmp_path)

    out, replace = tmp_path / name, os.replace

    def refuse(source, target):
        """Refuse the commit of a finished temporary into the output, and only that rename."""
        committing = ".partial-" in Path(source).name
        if committing and (Path(target) == out or out in Path(target).parents):
            raise OSError(errno.EROFS, "Read-only file system", str(target))
        replace(source, target)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="Read-only"):
        WRITERS[name](out, True, inputs)
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["map.mrc", "map.zarr", "labels.mrc", "picks.csv", "net.keras"])
def test_a_read_only_folder_is_refused_and_left_as_it_was(name, inputs, read_only_folder):
    before = _snapshot(read_only_folder)
    with pytest.raises(PermissionError):
        WRITERS[name](read_only_folder / name, False, inputs)
    assert _snapshot(read_only_folder) == before


def test_an_output_under_a_file_is_refused_before_any_work(inputs, tmp_path):
    (tmp_path / "notes.txt").write_text("notes\n")
    for name in ("map.mrc", "labels.mrc", "picks.csv", "scores.json"):
        with pytest.raises(BadInputError, match=r"notes\.txt is a file, not a folder"):
            WRITERS[name](tmp_path / "notes.txt" / "sub" / name, False, inputs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# ---------------------------------------------------------------------- bad values inside


def test_nan_deep_inside_a_tomogram_stops_streaming_and_leaves_no_map(inputs, tmp_path):
    """Opening samples three slices; a NaN elsewhere is caught by the slab that reads it."""
    from tomoseg_nb.segment import segment_volume

    data = inputs["data"].copy()
    data[2, 10, 10] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tomogram = write_volume(tmp_path / "TS.mrc", data, voxel_size=10.0)
    out = tmp_path / "out"
    with pytest.raises(BadInputError, match="NaN/Inf voxels in slices"):
        segment_volume([inputs["model"]], tomogram, out, slab_size=2)
    with pytest.raises(BadInputError, match="NaN/Inf"):
        merge_files([tomogram], out / "labels.mrc", slab_size=2)
    assert not out.exists() or not list(out.iterdir())


def test_a_constant_tomogram_gives_finite_maps_and_no_picks(inputs, tmp_path):
    """A blank tomogram (a failed reconstruction) is not an error: the maps are flat and finite."""
    from tomoseg_nb.errors import EmptyResultWarning
    from tomoseg_nb.picking import pick_particles
    from tomoseg_nb.segment import segment_volume

    tomogram = write_volume(tmp_path / "flat.mrc", np.full(SHAPE, 7.0, np.float32), voxel_size=10.0)
    (path,) = segment_volume([inputs["model"]], tomogram, tmp_path)
    with open_volume(path) as volume:
        probability = volume.read()
    assert np.isfinite(probability).all() and probability.min() >= 0 and probability.max() <= 1
    assert np.ptp(probability[:, 20:-20, 20:-20]) < 1e-5  # flat away from the zero-padded edges
    with pytest.warns(EmptyResultWarning):
        picks = pick_particles(np.zeros(SHAPE, np.float32), threshold=0.5, min_distance_px=3)
    assert len(picks) == 0


def test_a_four_dimensional_file_is_refused(tmp_path):
    import tifffile

    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, np.zeros((2, 3, 8, 8), np.float32), photometric="minisblack")
    for ndim in (3, 2, None):
        with pytest.raises(BadInputError, match=r"dimensions|tomogram|micrograph"):
            open_volume(path, ndim=ndim)


def test_project_json_with_an_unreadable_lock_is_taken_over(tmp_path):
    with Project.create(tmp_path / "p", tomogram_shape=(4, 64, 64), voxel_size=10.0):
        pass
    (tmp_path / "p" / ".lock").write_text(json.dumps({"pid": "not a number", "host": "x"}))
    with Project.open(tmp_path / "p") as project:
        assert project.features == {}


def test_absurd_tile_sizes_are_refused(tmp_path):
    with Project.create(tmp_path / "p", tomogram_shape=(4, 64, 64), voxel_size=10.0) as project:
        for size in (0, 4, 2000, 16.5):
            with pytest.raises(BadInputError, match="tile size"):
                project.add_feature("membrane", tile_size=size)
        with pytest.raises(BadInputError, match="larger than the slices"):
            project.add_feature("membrane", tile_size=128)
        assert project.features == {}


def test_a_boxer_model_from_a_newer_version_is_refused(valid, tmp_path):
    from tomoseg_nb.boxer.model import load_boxer

    folder = shutil.copytree(valid["boxer"].parent, tmp_path / "newer.boxer")
    info = json.loads((folder / "boxer.json").read_text())
    (folder / "boxer.json").write_text(json.dumps({**info, "format_version": 99}))
    with pytest.raises(BadInputError, match=r"newer tomoseg_nb .*upgrade"):
        load_boxer(folder)


def test_a_damaged_tiff_is_one_error_and_no_log_lines(valid, tmp_path, caplog):
    """tifffile logs a line per damaged tag; the user gets our one error instead."""
    data = bytearray(valid["tif"].read_bytes())
    data[4:8] = (len(data) + 100).to_bytes(4, "little")  # the first directory is past the end
    path = tmp_path / "damaged.tif"
    path.write_bytes(bytes(data))
    with caplog.at_level("DEBUG"), pytest.raises(BadInputError, match="not a readable TIFF"):
        open_volume(path)
    assert not caplog.records
