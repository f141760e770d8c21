"""Annotation projects: round trips, autosave, locking, validation and hostile files."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tomoseg_nb.annotations import (
    LOCK_FILE,
    MASKS_FILE,
    PROJECT_FILE,
    Project,
    tile_bounds,
    validate_feature_name,
)
from tomoseg_nb.errors import (
    BadInputError,
    MissingInputError,
    OutputExistsError,
    ProjectLockedError,
)
from tomoseg_nb.volume import write_volume

SHAPE = (6, 96, 128)


@pytest.fixture(scope="module")
def tomogram(tmp_path_factory):
    path = tmp_path_factory.mktemp("tomo") / "tomo.mrc"
    data = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
    return write_volume(path, data, voxel_size=13.5)


@pytest.fixture
def project(tmp_path, tomogram):
    with Project.create(tmp_path / "proj", tomogram=tomogram) as project:
        yield project


def test_create_records_tomogram_and_round_trips(tmp_path, tomogram):
    folder = tmp_path / "proj"
    project = Project.create(folder, tomogram=tomogram)
    assert project.tomogram_shape == SHAPE
    assert project.voxel_size == pytest.approx(13.5)
    project.add_feature("membrane", colour="#00ff00", tile_size=32)
    project.add_feature("ribosome")
    positive = project.add_tile("membrane", 2, 40, 50)
    negative = project.add_tile("membrane", 3, 16, 16, positive=False)
    mask = np.zeros((32, 32), bool)
    mask[5:9, :] = True
    project.set_mask(positive.id, mask)
    project.close()
    assert not (folder / LOCK_FILE).exists()

    reopened = Project.open(folder)
    assert reopened.features["membrane"].colour == "#00ff00"
    assert reopened.features["ribosome"].tile_size == 64
    assert [t.id for t in reopened.tiles] == [positive.id, negative.id]
    assert reopened.tiles[0].positive and not reopened.tiles[1].positive
    np.testing.assert_array_equal(reopened.mask(positive.id), mask)
    assert not reopened.mask(negative.id).any()
    assert reopened.tomogram == str(tomogram.resolve())
    reopened.close()

    stored = json.loads((folder / PROJECT_FILE).read_text())
    assert stored["format"] == "tomoseg_nb.project" and stored["version"] == 1
    assert not os.path.isabs(stored["tomogram"])  # relative, so project + data can move


def test_masks_file_needs_no_pickle(project):
    tile = project.add_tile(project.add_feature("actin", tile_size=16).name, 0, 30, 30)
    project.set_mask(tile.id, np.eye(16, dtype=bool))
    with np.load(project.folder / MASKS_FILE, allow_pickle=False) as archive:
        assert archive.files == [tile.id]
        assert archive[tile.id].dtype == bool


def test_autosave_writes_every_mutation(project):
    project.add_feature("membrane", tile_size=16)
    tile = project.add_tile("membrane", 1, 20, 20)
    on_disk = Project.open(project.folder, read_only=True)
    assert [t.id for t in on_disk.tiles] == [tile.id]
    project.set_mask(tile.id, np.ones((16, 16)))
    assert Project.open(project.folder, read_only=True).mask(tile.id).all()
    project.remove_tile(tile.id)
    assert Project.open(project.folder, read_only=True).tiles == []


def test_without_autosave_nothing_is_written_until_save(project):
    project.autosave = False
    project.add_feature("membrane", tile_size=16)
    assert Project.open(project.folder, read_only=True).features == {}
    project.save()
    assert list(Project.open(project.folder, read_only=True).features) == ["membrane"]


def test_a_save_per_brush_stroke_is_cheap(project):
    """100 tiles with masks, 200 strokes: each autosave rewrites only the masks file."""
    project.add_feature("membrane", tile_size=64)
    project.autosave = False
    tiles = [project.add_tile("membrane", i % 6, 32 + i // 6, 40) for i in range(100)]
    project.save()
    project.autosave = True
    strokes = 200
    start = time.perf_counter()
    for stroke in range(strokes):
        mask = np.zeros((64, 64), bool)
        mask[stroke % 64] = True
        project.set_mask(tiles[stroke % 100].id, mask)
    per_stroke = (time.perf_counter() - start) / strokes
    print(f"autosave per brush stroke with 100 masks: {per_stroke * 1e3:.2f} ms")
    assert Project.open(project.folder, read_only=True).mask(tiles[99].id)[199 % 64].all()


def test_tiles_must_lie_inside_the_volume(project):
    project.add_feature("membrane", tile_size=32)
    project.add_tile("membrane", 0, 16, 16)  # touches the top-left corner exactly
    project.add_tile("membrane", 5, 96 - 16, 128 - 16)  # and the bottom-right one
    for z, y, x in [(0, 15, 40), (0, 40, 15), (0, 81, 40), (0, 40, 113), (6, 40, 40), (-1, 40, 40)]:
        with pytest.raises(BadInputError, match="outside"):
            project.add_tile("membrane", z, y, x)
    with pytest.raises(BadInputError, match="whole voxel"):
        project.add_tile("membrane", 0, 40.5, 40)
    with pytest.raises(BadInputError, match="no feature"):
        project.add_tile("ribosome", 0, 40, 40)
    with pytest.raises(BadInputError, match="already has a tile"):
        project.add_tile("membrane", 0, 16, 16)


def test_tile_bounds_convention():
    assert tile_bounds(32, 40, 64) == (0, 64, 8, 72)
    assert tile_bounds(10, 10, 5) == (8, 13, 8, 13)


def test_tile_at_and_tiles_of(project):
    project.add_feature("membrane", tile_size=32)
    project.add_feature("ribosome", tile_size=32)
    first = project.add_tile("membrane", 2, 40, 40)
    later = project.add_tile("membrane", 2, 50, 50, positive=False)
    project.add_tile("ribosome", 2, 40, 40)
    assert project.tile_at("membrane", 2, 30, 30) is first
    assert project.tile_at("membrane", 2, 45, 45) is later  # the latest added wins
    assert project.tile_at("membrane", 2, 24, 24) is first  # top-left pixel of the tile
    assert project.tile_at("membrane", 2, 23, 40) is None
    assert project.tile_at("membrane", 3, 40, 40) is None
    assert project.tiles_of("membrane") == [first, later]
    assert project.tiles_of("membrane", positive=False) == [later]


def test_mask_rules(project):
    project.add_feature("membrane", tile_size=16)
    positive = project.add_tile("membrane", 0, 20, 20)
    negative = project.add_tile("membrane", 0, 40, 40, positive=False)
    with pytest.raises(BadInputError, match="16x16"):
        project.set_mask(positive.id, np.ones((8, 8)))
    with pytest.raises(BadInputError, match="negative tile"):
        project.set_mask(negative.id, np.ones((16, 16)))
    with pytest.raises(BadInputError, match="no tile"):
        project.mask("deadbeef")
    copy = project.mask(positive.id)
    copy[:] = True
    assert not project.mask(positive.id).any()  # a copy, not a view


def test_feature_names_are_safe_file_names(project):
    for bad in ["", "../escape", "a/b", ".hidden", "with space", "x" * 65]:
        with pytest.raises(BadInputError, match="not allowed"):
            project.add_feature(bad)
    assert validate_feature_name("outer_membrane-2") == "outer_membrane-2"
    with pytest.raises(BadInputError, match="larger than the slices"):
        project.add_feature("huge", tile_size=128)


def test_remove_feature_drops_its_tiles_and_masks(project):
    project.add_feature("membrane", tile_size=16)
    project.add_feature("ribosome", tile_size=16)
    tile = project.add_tile("membrane", 0, 20, 20)
    project.set_mask(tile.id, np.ones((16, 16)))
    kept = project.add_tile("ribosome", 0, 20, 20)
    project.remove_feature("membrane")
    reopened = Project.open(project.folder, read_only=True)
    assert list(reopened.features) == ["ribosome"] and reopened.tiles == [kept]
    with np.load(project.folder / MASKS_FILE) as archive:
        assert archive.files == []


def test_create_refuses_an_existing_project(project, tomogram):
    project.close()
    with pytest.raises(OutputExistsError, match="already holds"):
        Project.create(project.folder, tomogram=tomogram)
    fresh = Project.create(project.folder, tomogram=tomogram, overwrite=True)
    assert fresh.features == {}
    fresh.close()


def test_open_missing_and_read_only(tmp_path, project):
    with pytest.raises(MissingInputError, match="no annotation project"):
        Project.open(tmp_path / "nowhere")
    viewer = Project.open(project.folder, read_only=True)
    with pytest.raises(BadInputError, match="read-only"):
        viewer.add_feature("membrane")


def _hold_lock_in_subprocess(folder):
    code = (
        "import sys, time; from tomoseg_nb.annotations import Project; "
        f"p = Project.open({str(folder)!r}); print('locked', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


def test_second_writer_process_is_refused(project):
    project.close()
    child = _hold_lock_in_subprocess(project.folder)
    try:
        with pytest.raises(ProjectLockedError, match=f"process {child.pid}"):
            Project.open(project.folder)
        Project.open(project.folder, read_only=True)  # readers are always welcome
    finally:
        child.kill()
        child.wait()
    # the holder died without closing: its stale lock is taken over
    reopened = Project.open(project.folder)
    reopened.close()


def test_reopening_in_the_same_process_hands_over_the_lock(project):
    project.add_feature("membrane", tile_size=16)
    newer = Project.open(project.folder)
    with pytest.raises(ProjectLockedError, match="newer project object"):
        project.add_feature("ribosome")
    newer.add_feature("ribosome")
    newer.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not readable JSON"),
        ('{"format": "something.else", "version": 1}', "not a tomoseg_nb annotation project"),
        ('["a list"]', "not a tomoseg_nb annotation project"),
        ('{"format": "tomoseg_nb.project", "version": 99}', "upgrade tomoseg_nb"),
        ('{"format": "tomoseg_nb.project", "version": 0}', "re-create"),
        ('{"format": "tomoseg_nb.project", "version": 1, "features": []}', "malformed"),
    ],
)
def test_foreign_or_corrupt_project_files(tmp_path, content, message):
    (tmp_path / PROJECT_FILE).write_text(content)
    with pytest.raises(BadInputError, match=message):
        Project.open(tmp_path)


def test_hostile_tile_ids_and_feature_names_are_refused(project):
    project.add_feature("membrane", tile_size=16)
    project.add_tile("membrane", 0, 20, 20)
    project.close()
    path = project.folder / PROJECT_FILE
    good = json.loads(path.read_text())
    for key, value in [("id", "../../etc"), ("feature", "unknown")]:
        hostile = json.loads(json.dumps(good))
        hostile["tiles"][0][key] = value
        path.write_text(json.dumps(hostile))
        with pytest.raises(BadInputError, match="bad id or an unknown feature"):
            Project.open(project.folder)
    hostile = json.loads(json.dumps(good))
    hostile["features"][0]["name"] = "../outside"
    path.write_text(json.dumps(hostile))
    with pytest.raises(BadInputError, match="not allowed"):
        Project.open(project.folder)


def test_corrupt_masks_file(project):
    project.add_feature("membrane", tile_size=16)
    tile = project.add_tile("membrane", 0, 20, 20)
    project.set_mask(tile.id, np.ones((16, 16)))
    project.close()
    (project.folder / MASKS_FILE).write_bytes(b"PK\x03\x04 broken zip")
    with pytest.raises(BadInputError, match="masks file is corrupt"):
        Project.open(project.folder)
    np.savez(project.folder / MASKS_FILE, **{tile.id: np.ones((8, 8), bool)})
    with pytest.raises(BadInputError, match="shape"):
        Project.open(project.folder)
    np.savez(project.folder / MASKS_FILE, **{tile.id: np.array([{"a": 1}], dtype=object)})
    with pytest.raises(BadInputError, match="pickle"):  # never unpickled
        Project.open(project.folder)


def test_project_without_a_tomogram_file(tmp_path):
    with Project.create(tmp_path / "p", tomogram_shape=(4, 64, 64), voxel_size=8.0) as project:
        project.add_feature("membrane", tile_size=32)
        with pytest.raises(BadInputError, match="outside"):
            project.add_tile("membrane", 0, 60, 32)
        assert project.tomogram is None


def test_create_from_an_open_volume(tmp_path, tomogram):
    from tomoseg_nb.volume import open_volume

    with (
        open_volume(tomogram) as volume,
        Project.create(tmp_path / "p", tomogram=volume) as project,
    ):
        assert project.tomogram_shape == SHAPE and project.voxel_size == pytest.approx(13.5)
        assert project.tomogram == str(tomogram.resolve())


def test_a_closed_project_refuses_edits_and_writes_nothing(tmp_path):
    """Closing releases the lock, so a later edit could clobber another process's project."""
    project = Project.create(tmp_path / "p", tomogram=None, voxel_size=10.0)
    project.add_feature("membrane")
    project.close()
    before = (tmp_path / "p" / "project.json").read_bytes()
    with pytest.raises(BadInputError, match="project was closed; open it again"):
        project.add_tile("membrane", 0, 32, 32, positive=False)
    with pytest.raises(BadInputError, match="project was closed"):
        project.save()
    assert (tmp_path / "p" / "project.json").read_bytes() == before
    project.close()  # closing twice is harmless
    with Project.open(tmp_path / "p") as again:
        assert list(again.features) == ["membrane"] and again.tiles == []
