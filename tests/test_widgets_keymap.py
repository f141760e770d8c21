"""The interaction table: every row is driven with synthetic browser events on the real widgets,
with each key it lists, and docs/interaction.md shows exactly this table."""

from pathlib import Path

import numpy as np
import pytest

from tomoseg_nb.annotations import Project
from tomoseg_nb.coords import Picks
from tomoseg_nb.volume import write_volume
from tomoseg_nb.widgets._messages import browser_event
from tomoseg_nb.widgets.box_state import Box
from tomoseg_nb.widgets.boxes import BoxPicker
from tomoseg_nb.widgets.keymap import (
    DELETE_CHORDS,
    KEYMAP,
    REDO_CHORDS,
    SCOPES,
    UNDO_CHORDS,
    bindings,
    chord,
    key_chords,
    markdown_table,
)
from tomoseg_nb.widgets.painter import MaskPainter
from tomoseg_nb.widgets.results import PickViewer
from tomoseg_nb.widgets.tiles import TilePicker
from tomoseg_nb.widgets.viewer import SliceViewer

DOCS = Path(__file__).resolve().parents[1] / "docs" / "interaction.md"
README = Path(__file__).resolve().parents[1] / "README.md"
KEY_NAMES = {"Up": "ArrowUp", "Down": "ArrowDown", "Esc": "Escape"}


@pytest.fixture(scope="module")
def tomogram_path(tmp_path_factory):
    data = np.random.default_rng(7).normal(size=(8, 128, 160)).astype(np.float32)
    return write_volume(tmp_path_factory.mktemp("tomo") / "tomo.mrc", data, voxel_size=10.0)


@pytest.fixture
def project(tmp_path, tomogram_path):
    project = Project.create(tmp_path / "project", tomogram=tomogram_path)
    project.add_feature("membrane", tile_size=32)
    yield project
    project.close()


def press(canvas, label: str) -> None:
    """Send the key event a browser sends for a table label (``"Ctrl+Shift+Z"``, ``"Up"``)."""
    ctrl = label.startswith("Ctrl+") and len(label) > 5
    label = label[5:] if ctrl else label
    shift = label.startswith("Shift+") and len(label) > 6
    label = label[6:] if shift else label
    key = KEY_NAMES.get(label, label.lower() if ctrl and not shift else label)
    browser_event(canvas, "key_down", key=key, shift_key=shift or key == "?", ctrl_key=ctrl)


def click(canvas, x, y):
    browser_event(canvas, "mouse_down", x=x, y=y)
    browser_event(canvas, "mouse_up", x=x, y=y)


def picker_of(project):
    return TilePicker(project, SliceViewer(project.tomogram, view_shape=(128, 160)))  # scale 1


def painter_of(project):
    project.add_tile("membrane", 4, 40, 40)
    project.add_tile("membrane", 4, 80, 100)
    return MaskPainter(project, canvas_px=256, brush_radius=0.5)  # 8 canvas px per mask pixel


def stroke(painter, row, columns):
    m = painter.magnification
    points = [((c + 0.5) * m, (row + 0.5) * m) for c in columns]
    browser_event(painter.canvas, "mouse_down", x=points[0][0], y=points[0][1])
    for x, y in points[1:]:
        browser_event(painter.canvas, "mouse_move", x=x, y=y)
    browser_event(painter.canvas, "mouse_up", x=points[-1][0], y=points[-1][1])


# one scenario per row ------------------------------------------------------------------------------
def help_row(project, binding):
    picker, painter = picker_of(project), painter_of(project)
    for widget, canvas in (
        (picker.viewer, picker.viewer.canvas),
        (painter, painter.canvas),
    ):
        owner = picker if widget is picker.viewer else painter
        press(canvas, "?")
        assert owner.help.shown and binding.action in owner.help.value
        press(canvas, "?")
        assert not owner.help.shown
    plain = SliceViewer(project.tomogram, view_shape=(64, 64))
    press(plain.canvas, "?")
    assert plain.help.shown
    review = pick_viewer_of(project)
    press(review.viewer.canvas, "?")
    assert review.help.shown and "reject the selected pick" in review.help.value
    boxes = box_picker_of(project)
    assert boxes.viewer.help_button.layout.display == "none"  # the picker's ? has both tables
    press(boxes.viewer.canvas, "?")
    assert boxes.help.shown and "remove the selected box" in boxes.help.value
    assert "fit the whole slice" in boxes.help.value
    press(boxes.viewer.canvas, "?")
    assert not boxes.help.shown


def undo_row(project, binding):
    picker, painter = picker_of(project), painter_of(project)
    picker.set_mode("positive")
    for label in binding.inputs:
        click(picker.viewer.canvas, 130, 100)
        assert len(project.tiles_of("membrane", positive=True)) == 3
        press(picker.viewer.canvas, label)
        assert len(project.tiles_of("membrane", positive=True)) == 2
        stroke(painter, 3, [2, 5])
        press(painter.canvas, label)
        assert not project.mask(painter.tile.id).any()
    review = pick_viewer_of(project)
    for label in binding.inputs:
        click(review.viewer.canvas, 40, 40)
        press(review.viewer.canvas, "Delete")
        press(review.viewer.canvas, label)
        assert review.review.kept().all()
    boxes = box_picker_of(project)
    boxes.set_mode("good")
    for label in binding.inputs:
        click(boxes.viewer.canvas, 40, 40)
        press(boxes.viewer.canvas, label)  # takes the add back
        assert boxes.state.boxes == []
        click(boxes.viewer.canvas, 40, 40)
        press(boxes.viewer.canvas, "Delete")
        press(boxes.viewer.canvas, label)  # brings the removed box back
        assert boxes.state.coordinates("good").tolist() == [[40, 40]]
        boxes.state.selected = boxes.state.boxes[0]
        boxes.delete_selected()


def redo_row(project, binding):
    picker, painter = picker_of(project), painter_of(project)
    picker.set_mode("positive")
    for label in binding.inputs:
        click(picker.viewer.canvas, 130, 100)
        picker.undo()
        press(picker.viewer.canvas, label)
        assert len(project.tiles_of("membrane", positive=True)) == 3
        picker.undo()
        stroke(painter, 3, [2, 5])
        painter.undo()
        press(painter.canvas, label)
        assert project.mask(painter.tile.id).sum() == 4
        painter.undo()
    boxes = box_picker_of(project)
    boxes.set_mode("bad")
    click(boxes.viewer.canvas, 40, 40)
    for label in binding.inputs:
        boxes.undo()
        press(boxes.viewer.canvas, label)
        assert boxes.state.coordinates("bad").tolist() == [[40, 40]]


def focus_row(project, binding):
    picker = picker_of(project)
    before = (project.folder / "project.json").read_text()
    click(picker.viewer.canvas, 70, 60)  # the click a browser focuses the canvas with
    assert project.tiles == [] and (project.folder / "project.json").read_text() == before
    press(picker.viewer.canvas, "a")  # and the keys now reach the widget
    assert picker.state.mode == "positive"
    boxes = box_picker_of(project)
    click(boxes.viewer.canvas, 70, 60)
    assert boxes.state.boxes == [] and not (project.folder / "boxes.json").exists()
    press(boxes.viewer.canvas, "a")
    assert boxes.state.mode == "good"


def pan_row(project, binding):
    viewer = SliceViewer(project.tomogram, view_shape=(128, 160))
    centre = (viewer.state.centre_y, viewer.state.centre_x)
    browser_event(viewer.canvas, "mouse_down", x=50, y=50)
    browser_event(viewer.canvas, "mouse_move", x=60, y=70)
    browser_event(viewer.canvas, "mouse_up", x=70, y=90)
    assert (viewer.state.centre_y, viewer.state.centre_x) == (centre[0] - 40, centre[1] - 20)


def zoom_wheel_row(project, binding):
    viewer = SliceViewer(project.tomogram, view_shape=(128, 160))
    for delta, scale in ((-100, 2.0), (-120, 3.0), (-3, 4.0), (100, 3.0)):
        browser_event(viewer.canvas, "mouse_wheel", x=0, y=delta)
        assert viewer.state.scale == scale


def zoom_keys_row(project, binding):
    viewer = SliceViewer(project.tomogram, view_shape=(128, 160))
    press(viewer.canvas, "+")
    assert viewer.state.scale == 2.0
    press(viewer.canvas, "-")
    press(viewer.canvas, "-")
    assert viewer.state.scale == 1 / 2


def fit_row(project, binding):
    viewer = SliceViewer(project.tomogram, view_shape=(128, 160))
    for label in binding.inputs:
        viewer.state.zoom_by(3)
        press(viewer.canvas, label)
        assert viewer.state.scale == 1.0 and viewer.zoom_label.value == "zoom 1x"


def slice_row(project, binding):
    viewer = SliceViewer(project.tomogram, view_shape=(128, 160))
    steps = {"Up": 1, "PageUp": 1, "w": 1, "Down": -1, "PageDown": -1, "s": -1}
    assert set(binding.inputs) == set(steps)
    for label in binding.inputs:
        z = viewer.z
        press(viewer.canvas, label)
        assert viewer.z == z + steps[label] and viewer.z_slider.value == viewer.z


def side_click_row(project, binding):
    viewer = SliceViewer(project.tomogram, view_shape=(128, 160), side_views=True)
    browser_event(viewer.xz_canvas, "mouse_down", x=20, y=80 - 3)  # 3 rows above z 4
    assert viewer.z == 1
    browser_event(viewer.yz_canvas, "mouse_down", x=80 + 2, y=20)  # 2 columns right of z 1
    assert viewer.z == 3


def select_row(project, binding):
    picker, painter = picker_of(project), painter_of(project)
    picker.on_select(lambda tile: painter.show(tile.id) if tile is not None else None)
    second = project.tiles[1]
    click(picker.viewer.canvas, 110, 90)  # inside the tile centred (80, 100)
    assert picker.state.selected == second.id and painter.tile == second
    assert len(project.tiles) == 2


def deselect_row(project, binding):
    picker = picker_of(project)
    project.add_tile("membrane", 4, 40, 40)
    picker.refresh()
    click(picker.viewer.canvas, 40, 40)
    click(picker.viewer.canvas, 130, 100)  # empty slice
    assert picker.state.selected is None and len(project.tiles) == 1
    click(picker.viewer.canvas, 40, 40)
    picker.set_mode("negative")
    press(picker.viewer.canvas, "Esc")
    assert picker.state.mode == "select" and picker.state.selected is not None
    press(picker.viewer.canvas, "Esc")
    assert picker.state.selected is None


def add_positive_row(project, binding):
    picker = picker_of(project)
    press(picker.viewer.canvas, "a")
    click(picker.viewer.canvas, 70, 60)
    (tile,) = project.tiles
    assert (tile.z, tile.y, tile.x, tile.positive) == (4, 60, 70, True)


def add_negative_row(project, binding):
    picker = picker_of(project)
    press(picker.viewer.canvas, "x")
    click(picker.viewer.canvas, 70, 60)
    (tile,) = project.tiles
    assert (tile.z, tile.y, tile.x, tile.positive) == (4, 60, 70, False)


def delete_row(project, binding):
    picker = picker_of(project)
    for label in binding.inputs:
        picker.set_mode("positive")
        click(picker.viewer.canvas, 70, 60)
        picker.set_mode("select")
        click(picker.viewer.canvas, 75, 65)
        press(picker.viewer.canvas, label)
        assert project.tiles == []


def tile_step_row(project, binding):
    picker = picker_of(project)
    first = project.add_tile("membrane", 2, 40, 40)
    second = project.add_tile("membrane", 6, 80, 100)
    picker.refresh()
    press(picker.viewer.canvas, "n")
    assert picker.state.selected == first.id and picker.viewer.z == 2
    press(picker.viewer.canvas, "n")
    assert picker.state.selected == second.id and picker.viewer.z == 6
    press(picker.viewer.canvas, "p")
    assert picker.state.selected == first.id


def paint_row(project, binding):
    painter = painter_of(project)
    stroke(painter, 3, [2, 5, 9])
    expected = np.zeros((32, 32), bool)
    expected[3, 2:10] = True
    np.testing.assert_array_equal(project.mask(painter.tile.id), expected)


def tools_row(project, binding):
    painter = painter_of(project)
    stroke(painter, 3, [2, 9])
    press(painter.canvas, "e")
    stroke(painter, 3, [4, 5])
    press(painter.canvas, "b")
    stroke(painter, 6, [0, 31])
    press(painter.canvas, "f")
    stroke(painter, 0, [0])  # fills rows 0-5 above the full-width line at row 6
    mask = project.mask(painter.tile.id)
    assert mask[:7].all() and not mask[7:].any()


def brush_size_row(project, binding):
    painter = painter_of(project)
    press(painter.canvas, "]")
    assert painter.state.brush_radius == 1.5
    press(painter.canvas, "[")
    press(painter.canvas, "[")
    assert painter.state.brush_radius == 0.5


def painter_zoom_row(project, binding):
    painter = painter_of(project)
    press(painter.canvas, "+")
    assert painter.magnification == 12
    press(painter.canvas, "-")
    press(painter.canvas, "-")
    assert painter.magnification == 6
    press(painter.canvas, "0")
    assert painter.magnification == 8


def context_row(project, binding):
    painter = painter_of(project)
    press(painter.canvas, "c")
    assert painter.margin == 8 and painter.canvas.width == 48 * 4
    press(painter.canvas, "c")
    assert painter.margin == 0 and painter.canvas.width == 32 * 8


def painter_step_row(project, binding):
    painter = painter_of(project)
    first, second = project.tiles
    press(painter.canvas, "n")
    assert painter.tile == second
    press(painter.canvas, "n")
    assert painter.tile == first
    press(painter.canvas, "p")
    assert painter.tile == second


def pick_viewer_of(project):
    coordinates = np.array([[4.0, 40, 40], [4.0, 90, 120]])
    picks = Picks(coordinates, scores=np.array([0.9, 0.8]), voxel_size=10.0, shape=(8, 128, 160))
    return PickViewer(
        project.tomogram,
        picks,
        radius_px=5,
        viewer=SliceViewer(project.tomogram, view_shape=(128, 160)),
    )


def pick_select_row(project, binding):
    review = pick_viewer_of(project)
    click(review.viewer.canvas, 122, 92)
    assert review.review.selected == 1 and review.review.kept().all()
    click(review.viewer.canvas, 10, 10)  # no pick near: nothing selected
    assert review.review.selected is None


def pick_reject_row(project, binding):
    review = pick_viewer_of(project)
    for label in binding.inputs:
        click(review.viewer.canvas, 40, 40)
        press(review.viewer.canvas, label)
        assert review.review.kept().tolist() == [False, True]
        press(review.viewer.canvas, label)  # again: kept after all
        assert review.review.kept().tolist() == [True, True]


def box_picker_of(project):
    """A box picker on a micrograph, at scale 1, saving next to the project as it goes."""
    micrograph = np.random.default_rng(9).normal(size=(128, 160)).astype(np.float32)
    return BoxPicker(
        micrograph,
        box_size_px=20,
        path=project.folder / "boxes.json",
        viewer=SliceViewer(micrograph, view_shape=(128, 160)),
    )


def box_select_row(project, binding):
    boxes = box_picker_of(project)
    boxes.set_mode("good")
    click(boxes.viewer.canvas, 40, 40)
    click(boxes.viewer.canvas, 100, 80)
    boxes.set_mode("select")
    click(boxes.viewer.canvas, 45, 35)  # inside the first box
    assert boxes.state.selected == boxes.state.boxes[0] and len(boxes.state.boxes) == 2
    boxes.set_mode("bad")
    click(boxes.viewer.canvas, 95, 85)  # in an add mode too: selects, adds nothing
    assert boxes.state.selected == boxes.state.boxes[1] and len(boxes.state.boxes) == 2


def box_deselect_row(project, binding):
    boxes = box_picker_of(project)
    boxes.set_mode("good")
    click(boxes.viewer.canvas, 40, 40)
    boxes.set_mode("select")
    click(boxes.viewer.canvas, 40, 40)
    click(boxes.viewer.canvas, 130, 100)  # empty image
    assert boxes.state.selected is None and len(boxes.state.boxes) == 1
    click(boxes.viewer.canvas, 40, 40)
    boxes.set_mode("background")
    press(boxes.viewer.canvas, "Esc")
    assert boxes.state.mode == "select" and boxes.state.selected is not None
    press(boxes.viewer.canvas, "Esc")
    assert boxes.state.selected is None and len(boxes.state.boxes) == 1


def add_box_of_class(project, binding, label):
    for n, key in enumerate(binding.inputs):
        boxes = box_picker_of(project)
        press(boxes.viewer.canvas, key)
        assert boxes.class_buttons.value == boxes.state.mode == label
        click(boxes.viewer.canvas, 70 + 30 * n, 60)
        assert boxes.state.boxes[-1] == Box(60, 70 + 30 * n, label)
    assert boxes.state.counts()[label] == len(binding.inputs)  # all saved, reloaded each time


def box_add_good_row(project, binding):
    add_box_of_class(project, binding, "good")


def box_add_background_row(project, binding):
    add_box_of_class(project, binding, "background")


def box_add_bad_row(project, binding):
    add_box_of_class(project, binding, "bad")


def box_delete_row(project, binding):
    boxes = box_picker_of(project)
    for label in binding.inputs:
        boxes.set_mode("good")
        click(boxes.viewer.canvas, 70, 60)
        boxes.set_mode("select")
        click(boxes.viewer.canvas, 130, 100)  # nothing selected: the key removes nothing
        press(boxes.viewer.canvas, label)
        assert len(boxes.state.boxes) == 1
        click(boxes.viewer.canvas, 75, 65)
        press(boxes.viewer.canvas, label)
        assert boxes.state.boxes == []
    assert box_picker_of(project).state.boxes == []  # saved so


SCENARIOS = {
    name.removesuffix("_row").replace("_", "-"): f
    for name, f in dict(globals()).items()
    if name.endswith("_row")
}


@pytest.mark.parametrize("binding", KEYMAP, ids=[b.id for b in KEYMAP])
def test_each_row_of_the_interaction_table(project, binding):
    SCENARIOS[binding.id](project, binding)


def test_every_scenario_belongs_to_a_row():
    assert set(SCENARIOS) == {binding.id for binding in KEYMAP}


def test_docs_show_the_table_the_widgets_use():
    text = DOCS.read_text()
    for scope in SCOPES:
        assert markdown_table(scope) in text, f"docs/interaction.md is out of date for {scope}"
    assert "docs/interaction.md" in README.read_text()


def test_the_shared_chord_sets_are_the_tables_rows():
    assert UNDO_CHORDS == {"Ctrl+z", "z"} == key_chords("undo")
    assert REDO_CHORDS == {"Ctrl+Shift+z", "Ctrl+y", "Z", "y"} == key_chords("redo")
    assert DELETE_CHORDS == {"Delete", "Backspace"} == key_chords("box-delete")
    assert key_chords("deselect") == {"Escape"} and key_chords("select") == frozenset()


@pytest.mark.parametrize(
    "scopes",
    [
        ("slice viewer", "tile picker"),
        ("mask painter",),
        ("slice viewer", "pick viewer"),
        ("slice viewer", "box picker"),
    ],
)
def test_no_key_has_two_meanings_in_one_widget(scopes):
    seen: dict[str, str] = {}
    for binding in bindings(*scopes):
        for name in key_chords(binding.id):
            assert seen.setdefault(name, binding.id) == binding.id, (name, seen[name], binding.id)


def test_chord_names_shortcuts_alike_on_every_platform():
    assert chord("z") == "z" and chord("Z", shift=True) == "Z"
    assert chord("z", ctrl=True) == chord("z", meta=True) == "Ctrl+z"
    assert chord("Z", shift=True, ctrl=True) == "Ctrl+Shift+z"
