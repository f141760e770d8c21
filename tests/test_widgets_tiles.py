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


def test_click_selects_and_only_an_add_mode_adds_each_change_saved(project):
    state = TileState(project, "membrane")
    assert state.mode == "select"
    assert state.click(2, 60, 70) == ("cleared", None)  # select mode: empty slice adds nothing
    assert project.tiles == [] and not (project.folder / "project.json").read_text().count('"z"')
    state.mode = "positive"
    action, tile = state.click(2, 60, 70)
    assert action == "added" and (tile.z, tile.y, tile.x, tile.size) == (2, 60, 70, 32)
    assert state.selected == tile.id
    state.mode = "negative"
    state.click(2, 20, 100)
    assert saved_tiles(project) == [
        ("membrane", 2, 60, 70, True),
        ("membrane", 2, 20, 100, False),
    ]
    assert state.counts() == (1, 1)
    assert state.counts_text() == "membrane: 1 / ~10 positive, 1 / ~100 negative"
    # A click anywhere inside the first tile selects it, in any mode; nothing is removed.
    assert state.click(2, 60 - 16, 70 + 15) == ("selected", tile)
    assert state.selected == tile.id and len(saved_tiles(project)) == 2
    # Delete removes the selected tile only.
    assert state.delete_selected() == tile
    assert saved_tiles(project) == [("membrane", 2, 20, 100, False)]
    assert state.selected is None and state.delete_selected() is None
    # Another slice, or another feature, is free space.
    state.mode = "positive"
    assert state.click(3, 20, 100)[0] == "added"
    state.feature = "ribosome"
    assert state.click(2, 20, 100)[0] == "added"
    assert [t.feature for t in state.tiles_on_slice(2)] == ["membrane", "ribosome"]
    with pytest.raises(BadInputError, match="tile mode 'add'"):
        state.mode = "add"


def test_tiles_near_the_edge_are_moved_inside(project):
    state = TileState(project, "membrane", mode="positive")
    _, tile = state.click(0, 3, 159)
    assert (tile.y, tile.x) == (16, 160 - 16)
    assert tile.bounds == (0, 32, 160 - 32, 160)


def test_undo_and_redo_keep_the_painted_mask(project):
    state = TileState(project, "membrane", mode="positive")
    _, tile = state.click(1, 64, 64)
    mask = np.zeros((32, 32), bool)
    mask[5:9, 3:30] = True
    project.set_mask(tile.id, mask)
    state.delete_selected()
    assert project.tiles == []
    action, restored = state.undo()
    assert action == "added" and (restored.z, restored.y, restored.x) == (1, 64, 64)
    np.testing.assert_array_equal(project.mask(restored.id), mask)
    with np.load(project.folder / "masks.npz") as saved:
        np.testing.assert_array_equal(saved[restored.id], mask)
    assert state.redo() == ("removed", restored)  # the delete again
    assert project.tiles == []
    action, again = state.undo()
    np.testing.assert_array_equal(project.mask(again.id), mask)
    assert state.undo() == ("removed", again)  # undoes the first add, mask and all
    assert project.tiles == [] and state.undo() is None
    action, added = state.redo()  # the add comes back with what was painted on it
    assert action == "added" and (added.z, added.y, added.x) == (1, 64, 64)
    np.testing.assert_array_equal(project.mask(added.id), mask)
    state.click(1, 10, 120)  # a new edit forgets what could be redone
    assert state.redo() is None


def test_step_selects_tiles_in_list_order(project):
    state = TileState(project, "membrane", mode="positive")
    first = state.click(0, 20, 20)[1]
    second = state.click(0, 60, 60)[1]
    state.mode = "negative"
    negative = state.click(0, 100, 100)[1]
    assert state.step(1) == first  # from the last added (negative), wrapping round
    assert state.step(1) == second and state.step(-2) == negative
    state.selected = None
    assert state.step(-1) == negative and state.step(1) == first


def test_a_closed_project_refuses_every_edit(project):
    state = TileState(project, "membrane", mode="positive")
    _, tile = state.click(0, 20, 20)
    before = (project.folder / "project.json").read_text()
    project.close()
    with pytest.raises(BadInputError, match="the project was closed"):
        state.click(0, 80, 80)
    with pytest.raises(BadInputError, match="the project was closed"):
        state.delete_selected()
    with pytest.raises(BadInputError, match="the project was closed"):
        state.undo()
    assert state.click(0, 20, 20) == ("selected", tile)  # looking is still fine
    assert (project.folder / "project.json").read_text() == before
    assert [t.id for t in project.tiles] == [tile.id]


def test_project_without_autosave_is_still_saved(tmp_path, tomogram_path):
    with Project.create(tmp_path / "p", tomogram=tomogram_path, autosave=False) as project:
        project.add_feature("actin")
        project.save()
        TileState(project, "actin", mode="positive").click(4, 64, 64)
        assert saved_tiles(project) == [("actin", 4, 64, 64, True)]


def test_no_feature_or_unknown_feature_is_a_clear_error(tmp_path, tomogram_path):
    with Project.create(tmp_path / "p", tomogram=tomogram_path) as project:
        state = TileState(project)
        with pytest.raises(BadInputError, match="no feature yet"):
            state.click(0, 50, 50)
        with pytest.raises(BadInputError, match="no feature 'x'"):
            state.feature = "x"


def click(viewer, x, y):
    browser_event(viewer.canvas, "mouse_down", x=x, y=y)
    browser_event(viewer.canvas, "mouse_up", x=x, y=y)


def key(viewer, name, **modifiers):
    browser_event(viewer.canvas, "key_down", key=name, **modifiers)


def test_picker_first_click_only_focuses_then_a_adds_and_a_click_selects(project):
    viewer = SliceViewer(project.tomogram, view_shape=(128, 160))  # scale 1: canvas = voxels
    picker = TilePicker(project, viewer)
    selected = []
    picker.on_select(selected.append)
    click(viewer, 70.3, 60.2)  # the click that focuses the canvas: nothing is added
    assert project.tiles == [] and selected == [None]
    assert "selection cleared" in picker.status.value

    key(viewer, "a")
    assert picker.mode_buttons.value == "positive"
    with record_canvas_traffic() as traffic:
        click(viewer, 70.3, 60.2)
    (tile,) = project.tiles
    assert (tile.feature, tile.z, tile.y, tile.x, tile.positive) == ("membrane", 4, 60, 70, True)
    assert selected[-1] == tile and picker.tile_list.value == tile.id
    # The tile is outlined on the marks layer: a 32 px square whose top-left pixel (44, 54) is
    # canvas pixel (44, 54) at this zoom (canvas x first).
    assert traffic.named("strokeRect")[-1] == [54.0, 44.0, 32.0, 32.0]
    assert picker.counts.value.startswith("membrane: 1 / ~10 positive")

    key(viewer, "x")
    assert picker.mode_buttons.value == "negative"
    click(viewer, 120, 100)
    assert [t.positive for t in project.tiles] == [True, False]
    click(viewer, 75, 65)  # inside the positive tile, still in add mode: selects it
    assert len(project.tiles) == 2 and selected[-1] == tile
    key(viewer, "Escape")
    assert picker.mode_buttons.value == "select" and picker.state.selected == tile.id
    key(viewer, "Escape")  # Esc in select mode clears the selection
    assert picker.state.selected is None and selected[-1] is None


def test_picker_keys_delete_undo_redo_and_step(project):
    viewer = SliceViewer(project.tomogram, view_shape=(128, 160))
    picker = TilePicker(project, viewer)
    picker.set_mode("positive")
    click(viewer, 40, 40)
    click(viewer, 100, 80)
    _, second = project.tiles
    picker.set_mode("select")
    click(viewer, 45, 45)
    key(viewer, "Delete")
    assert project.tiles == [second] and "removed + membrane z 4, y 40, x 40" in picker.status.value
    key(viewer, "Delete")
    assert project.tiles == [second] and picker.status.value == "no tile selected: click one first"
    key(viewer, "z", ctrl_key=True)
    assert [(t.y, t.x) for t in project.tiles] == [(80, 100), (40, 40)]
    key(viewer, "Z", shift_key=True)  # redo: the delete again
    assert project.tiles == [second]
    key(viewer, "z")
    restored = project.tiles[1]
    click(viewer, 100, 80)
    key(viewer, "Backspace")
    assert project.tiles == [restored]
    key(viewer, "y")
    assert project.tiles == [restored]  # nothing to redo after a new edit
    assert picker.status.value == "nothing to redo"
    key(viewer, "z", meta_key=True)  # Cmd+Z on a Mac
    assert len(project.tiles) == 2
    viewer.set_z(0)
    key(viewer, "n")  # next tile: selected and shown
    chosen = picker.state.selected
    tile = next(t for t in project.tiles if t.id == chosen)
    assert viewer.z == 4 and (viewer.state.centre_y, viewer.state.centre_x) == (tile.y, tile.x)
    key(viewer, "p")
    assert picker.state.selected != chosen
    picker.tile_list.value = chosen
    picker.remove_button.click()
    assert chosen not in [t.id for t in project.tiles]
    picker.undo_button.click()
    picker.redo_button.click()
    assert chosen not in [t.id for t in project.tiles] and len(project.tiles) == 1
    assert not picker.help.shown
    key(viewer, "?", shift_key=True)
    assert picker.help.shown and not viewer.help.shown
    assert (
        viewer.help_button.layout.display == "none" and "next, previous slice" in picker.help.value
    )
    assert "remove the selected tile" in picker.help.value


def test_picker_of_a_closed_project_refuses_with_a_visible_message(project):
    viewer = SliceViewer(project.tomogram, view_shape=(128, 160))
    picker = TilePicker(project, viewer)
    project.close()
    before = (project.folder / "project.json").stat().st_mtime_ns
    key(viewer, "a")
    click(viewer, 40, 40)
    assert project.tiles == []
    assert "Not done:" in picker.status.value and "project was closed" in picker.status.value
    picker.new_name.value = "actin"
    picker.add_button.click()
    assert "actin" not in project.features and "project was closed" in picker.status.value
    assert (project.folder / "project.json").stat().st_mtime_ns == before


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


def _unsure_membrane_map():
    """A prediction sure everywhere but at (z 5, y 60-80, x 90-110), where it says 0.6."""
    probability = np.full((8, 128, 160), 0.02, np.float32)
    probability[5, 60:80, 90:110] = 0.6
    return probability


def test_suggestions_are_accepted_as_tiles_with_the_prediction_as_mask_and_undone(project):
    state = TileState(project, "membrane")
    probability = _unsure_membrane_map()
    first, *rest = state.suggest(probability, threshold=0.5, k=3)
    assert (first.z, first.reason) == (5, "uncertain") and len(rest) == 2
    assert 60 - 16 <= first.y - 16 and first.y + 16 <= 80 + 16  # the tile covers the unsure place
    tile = state.accept_suggestion(True)
    assert (tile.z, tile.y, tile.x, tile.positive) == (first.z, first.y, first.x, True)
    y0, y1, x0, x1 = tile.bounds
    predicted = probability[5, y0:y1, x0:x1] >= 0.5
    np.testing.assert_array_equal(project.mask(tile.id), predicted)
    with np.load(project.folder / "masks.npz") as saved:  # saved like any painted mask
        np.testing.assert_array_equal(saved[tile.id], predicted)
    assert state.suggestions == rest and state.suggestion == rest[0]
    assert state.undo() == ("removed", tile) and project.tiles == []
    _, again = state.redo()
    np.testing.assert_array_equal(project.mask(again.id), predicted)
    negative = state.accept_suggestion(False)
    assert not negative.positive and (negative.y, negative.x) == (rest[0].y, rest[0].x)
    assert state.next_suggestion() == rest[1]
    state.suggestions = []
    assert state.accept_suggestion(True) is None and state.next_suggestion() is None
    again_suggested = state.suggest(probability, k=5)
    taken = {(t.y, t.x) for t in project.tiles}
    assert all((s.y, s.x) not in taken for s in again_suggested)  # annotated places excluded


def test_picker_suggest_button_jumps_to_the_suggestion_and_accepts_it(project):
    viewer = SliceViewer(project.tomogram, view_shape=(128, 160))
    picker = TilePicker(project, viewer)
    assert picker.suggest_button.disabled and picker.accept_positive_button.disabled
    picker.set_prediction("membrane", _unsure_membrane_map(), threshold=0.5)
    assert not picker.suggest_button.disabled
    with record_canvas_traffic() as traffic:
        picker.suggest_button.click()
    shown = picker.state.suggestion
    assert viewer.z == 5 and (viewer.state.centre_y, viewer.state.centre_x) == (shown.y, shown.x)
    assert "suggestion 1 / 5" in picker.status.value and "uncertain" in picker.status.value
    left, top = viewer.state.image_to_canvas(shown.y - 16 - 0.5, shown.x - 16 - 0.5)
    assert [left, top, 32.0, 32.0] in traffic.named("strokeRect")  # outlined where it is
    selected = []
    picker.on_select(selected.append)
    picker.accept_positive_button.click()
    (tile,) = project.tiles
    assert tile.positive and selected[-1] == tile and project.mask(tile.id).any()
    assert "correct its mask in the painter" in picker.status.value
    picker.next_suggestion_button.click()  # the one that moved into the accepted one's place
    assert "suggestion 1 / 4" in picker.status.value
    picker.accept_negative_button.click()
    assert [t.positive for t in project.tiles] == [True, False]
    key(viewer, "z")  # undo: the shared key takes the accepted tile back
    assert project.tiles == [tile]
    picker.feature_dropdown.value = "ribosome"  # no prediction of the ribosome yet
    assert picker.suggest_button.disabled and picker.accept_positive_button.disabled
    picker.suggest()
    assert "train it first" in picker.status.value


def test_undoing_an_accepted_suggestion_suggests_it_again_where_it_was(project):
    viewer = SliceViewer(project.tomogram, view_shape=(128, 160))
    picker = TilePicker(project, viewer)
    picker.set_prediction("membrane", _unsure_membrane_map(), threshold=0.5)
    picker.suggest_button.click()
    suggested = list(picker.state.suggestions)
    picker.next_suggestion_button.click()
    picker.accept_positive_button.click()  # the second one
    assert picker.state.suggestions == suggested[:1] + suggested[2:]
    key(viewer, "z")
    assert project.tiles == [] and picker.state.suggestions == suggested
    assert picker.state.suggestion == suggested[1]  # looked at again, as before the accept
    key(viewer, "y")  # redo: accepted again, out of the list again
    (tile,) = project.tiles
    assert (tile.z, tile.y, tile.x) == (suggested[1].z, suggested[1].y, suggested[1].x)
    assert picker.state.suggestions == suggested[:1] + suggested[2:]
    picker.next_suggestion_button.click()  # the one that moved into its place, as after accept
    assert picker.state.suggestion == suggested[2] and "suggestion 2 / 4" in picker.status.value
    # The last suggestion accepted leaves no buttons to press; undo brings it and them back.
    picker.suggest(k=1)
    (last,) = picker.state.suggestions
    picker.accept_negative_button.click()
    picker.next_suggestion_button.click()
    assert picker.accept_positive_button.disabled and picker.next_suggestion_button.disabled
    picker.undo_button.click()
    assert picker.state.suggestions == [last] and not picker.accept_negative_button.disabled
    picker.redo_button.click()
    assert picker.state.suggestions == [] and picker.accept_negative_button.disabled
    # Suggestions of another feature are another list: undo leaves it alone.
    picker.feature_dropdown.value = "ribosome"
    key(viewer, "z")
    assert picker.state.suggestions == [] and len(project.tiles) == 1


def test_a_slab_prediction_suggests_in_tomogram_slices_and_masks_from_its_own_slice(project):
    """A map of slices 4-7 only (``z_start=4``): suggestions, exclusion and masks in tomogram z."""
    slab = np.full((4, 128, 160), 0.02, np.float32)
    slab[1, 60:80, 90:110] = 0.6  # unsure on tomogram slice 5
    slab[3, 20:40, 20:40] = 0.7  # and, less so, on tomogram slice 7
    picker = TilePicker(project, SliceViewer(project.tomogram, view_shape=(128, 160)))
    picker.set_prediction("membrane", slab, threshold=0.5, z_start=4)
    assert "press Suggest tiles" in picker.status.value
    picker.suggest(k=2)
    first = picker.state.suggestion
    assert first.z == 5 and picker.viewer.z == 5  # slab slice 1 is tomogram slice 5
    assert {s.z for s in picker.state.suggestions} <= set(range(4, 8))
    picker.accept_suggestion(True)
    (tile,) = project.tiles
    y0, y1, x0, x1 = tile.bounds
    np.testing.assert_array_equal(project.mask(tile.id), slab[1, y0:y1, x0:x1] >= 0.5)
    assert project.mask(tile.id).any()
    # An annotated tile (tomogram z) keeps suggestions away: none shares more than half of it.
    picker.suggest(k=5)
    size = y1 - y0
    for s in picker.state.suggestions:
        shared = max(size - abs(s.y - tile.y), 0) * max(size - abs(s.x - tile.x), 0)
        assert shared <= size**2 / 2


def test_other_features_maps_of_other_slices_are_not_compared(project):
    """The disagreement term compares maps of the same slices only (else it would mis-align)."""
    picker = TilePicker(project, SliceViewer(project.tomogram, view_shape=(128, 160)))
    mine = np.full((4, 128, 160), 0.9, np.float32)  # sure everywhere: no uncertainty
    theirs = np.full((4, 128, 160), 0.9, np.float32)  # also claims everything
    picker.set_prediction("ribosome", theirs, z_start=0)
    picker.set_prediction("membrane", mine, z_start=4)
    picker.suggest(k=1)
    assert picker.state.suggestion.reason == "uncertain"  # slices 0-3 vs 4-7: not compared
    picker.set_prediction("ribosome", theirs, z_start=4)
    picker.suggest(k=1)
    assert picker.state.suggestion.reason == "also claimed by ribosome"
