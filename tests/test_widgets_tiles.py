"""Tile choice: TileState on a real project (saved file contents) and the TilePicker's events."""

import json

import numpy as np
import pytest

from tomoseg_nb.annotations import Project
from tomoseg_nb.errors import BadInputError
from tomoseg_nb.volume import write_volume
from tomoseg_nb.widgets._messages import browser_event, record_canvas_traffic
from tomoseg_nb.widgets.tile_state import TileState
from tomoseg_nb.widgets.tiles import TilePicker
from tomoseg_nb.widgets.viewer import SliceViewer


@pytest.fixture(scope="module")
def tomogram_path(tmp_path_factory):
    data = np.random.default_rng(3).normal(size=(8, 128, 160)).astype(np.float32)
    return write_volume(tmp_path_factory.mktemp("tomo") / "tomo.mrc", data, voxel_size=10.0)


@pytest.fixture
def project(tmp_path, tomogram_path):
    project = Project.create(tmp_path / "project", tomogram=tomogram_path)
    project.add_feature("membrane", tile_size=32)
    project.add_feature("ribosome", tile_size=16, colour="#00ff00")
    yield project
    project.close()


def saved_tiles(project):
    document = json.loads((project.folder / "project.json").read_text())
    return [(t["feature"], t["z"], t["y"], t["x"], t["positive"]) for t in document["tiles"]]


def test_click_adds_and_removes_tiles_and_saves_each_change(project):
    state = TileState(project, "membrane")
    action, tile = state.click(2, 60, 70)
    assert action == "added" and (tile.z, tile.y, tile.x, tile.size) == (2, 60, 70, 32)
    assert state.selected == tile.id
    state.positive = False
    state.click(2, 20, 100)
    assert saved_tiles(project) == [
        ("membrane", 2, 60, 70, True),
        ("membrane", 2, 20, 100, False),
    ]
    assert state.counts() == (1, 1)
    assert state.counts_text() == "membrane: 1 / ~10 positive, 1 / ~100 negative"
    # A click anywhere inside the first tile removes it.
    assert state.click(2, 60 - 16, 70 + 15) == ("removed", tile)
    assert saved_tiles(project) == [("membrane", 2, 20, 100, False)]
    assert state.selected is None
    # Another slice, or another feature, is free space.
    assert state.click(3, 20, 100)[0] == "added"
    state.feature = "ribosome"
    assert state.click(2, 20, 100)[0] == "added"
    assert [t.feature for t in state.tiles_on_slice(2)] == ["membrane", "ribosome"]


def test_tiles_near_the_edge_are_moved_inside(project):
    state = TileState(project, "membrane")
    _, tile = state.click(0, 3, 159)
    assert (tile.y, tile.x) == (16, 160 - 16)
    assert tile.bounds == (0, 32, 160 - 32, 160)


def test_undo_brings_back_a_removed_tile_with_its_mask(project):
    state = TileState(project, "membrane")
    _, tile = state.click(1, 64, 64)
    mask = np.zeros((32, 32), bool)
    mask[5:9, 3:30] = True
    project.set_mask(tile.id, mask)
    state.click(1, 64, 64)
    assert project.tiles == []
    action, restored = state.undo()
    assert action == "added" and (restored.z, restored.y, restored.x) == (1, 64, 64)
    np.testing.assert_array_equal(project.mask(restored.id), mask)
    with np.load(project.folder / "masks.npz") as saved:
        np.testing.assert_array_equal(saved[restored.id], mask)
    assert state.undo() == ("removed", tile)  # undoes the first add
    assert project.tiles == [] or project.tiles[0].id == restored.id


def test_project_without_autosave_is_still_saved(tmp_path, tomogram_path):
    with Project.create(tmp_path / "p", tomogram=tomogram_path, autosave=False) as project:
        project.add_feature("actin")
        project.save()
        TileState(project, "actin").click(4, 64, 64)
        assert saved_tiles(project) == [("actin", 4, 64, 64, True)]


def test_no_feature_or_unknown_feature_is_a_clear_error(tmp_path, tomogram_path):
    with Project.create(tmp_path / "p", tomogram=tomogram_path) as project:
        state = TileState(project)
        with pytest.raises(BadInputError, match="no feature yet"):
            state.click(0, 50, 50)
        with pytest.raises(BadInputError, match="no feature 'x'"):
            state.feature = "x"


def test_picker_places_tiles_where_the_viewer_is_clicked(project):
    viewer = SliceViewer(project.tomogram, view_shape=(128, 160))  # scale 1: canvas = voxels
    picker = TilePicker(project, viewer)
    selected = []
    picker.on_select(selected.append)
    with record_canvas_traffic() as traffic:
        browser_event(viewer.canvas, "mouse_down", x=70.3, y=60.2)
        browser_event(viewer.canvas, "mouse_up", x=70.3, y=60.2)
    (tile,) = project.tiles
    assert (tile.feature, tile.z, tile.y, tile.x, tile.positive) == ("membrane", 4, 60, 70, True)
    assert selected == [tile]
    # The tile is outlined on the marks layer: a 32 px square whose top-left pixel (44, 54) is
    # canvas pixel (44, 54) at this zoom (canvas x first).
    assert traffic.named("strokeRect")[-1] == [54.0, 44.0, 32.0, 32.0]
    assert picker.counts.value.startswith("membrane: 1 / ~10 positive")
    assert picker.tile_list.value == tile.id

    browser_event(viewer.canvas, "key_down", key="n")
    assert picker.mode_buttons.value is False
    browser_event(viewer.canvas, "mouse_down", x=120, y=100)
    browser_event(viewer.canvas, "mouse_up", x=120, y=100)
    assert [t.positive for t in project.tiles] == [True, False]

    viewer.set_z(0)
    picker.go_to(tile.id)
    assert viewer.z == 4 and (viewer.state.centre_y, viewer.state.centre_x) == (60, 70)

    browser_event(viewer.canvas, "key_down", key="u")
    assert [t.positive for t in project.tiles] == [True]
    picker.tile_list.value = tile.id
    picker.remove_button.click()
    assert project.tiles == []
    assert selected[-1] is None


def test_picker_adds_features_and_reports_refusals(project):
    picker = TilePicker(project, SliceViewer(project.tomogram, view_shape=(64, 64)))
    picker.new_name.value = "microtubule"
    picker.new_size.value = 48
    picker.add_button.click()
    assert project.features["microtubule"].tile_size == 48
    assert picker.feature_dropdown.value == "microtubule"
    picker.new_name.value = "bad name!"
    picker.add_button.click()
    assert "Not added" in picker.status.value and "bad name!" not in project.features
