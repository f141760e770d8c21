"""BoxPicker: clicks and keys through the viewer canvas select, add and remove boxes, drawn and
autosaved."""

import json

import numpy as np
import pytest

from tomoseg_nb.errors import BadInputError
from tomoseg_nb.widgets._messages import browser_event, record_canvas_traffic
from tomoseg_nb.widgets.boxes import BoxPicker
from tomoseg_nb.widgets.viewer import SliceViewer


def click(viewer, x, y):
    browser_event(viewer.canvas, "mouse_down", x=x, y=y)
    browser_event(viewer.canvas, "mouse_up", x=x, y=y)


def key(viewer, name, **modifiers):
    browser_event(viewer.canvas, "key_down", key=name, **modifiers)


def test_boxes_follow_clicks_keys_and_are_saved(tmp_path):
    image = np.random.default_rng(0).normal(size=(200, 240)).astype(np.float32)
    path = tmp_path / "mic_boxes.json"
    viewer = SliceViewer(image, view_shape=(200, 240))  # scale 1
    picker = BoxPicker(image, box_size_px=20, path=path, viewer=viewer)
    click(viewer, 50.5, 40.5)  # the click that gives the canvas the keys: boxes nothing
    assert picker.state.boxes == [] and not path.exists()
    key(viewer, "a")
    assert picker.class_buttons.value == picker.state.mode == "good"
    click(viewer, 50.5, 40.5)
    key(viewer, "b")
    assert picker.class_buttons.value == "background"
    with record_canvas_traffic() as traffic:
        click(viewer, 150.5, 100.5)
    # A 20 px box centred on pixel (100, 150): image edges 90 and 140 are canvas 90.5 and 140.5
    # (canvas 0 is image -0.5 at this zoom).
    good, background = traffic.named("strokeRects")
    assert [list(a) if hasattr(a, "__len__") else a for a in background] == [
        [140.5],
        [90.5],
        20.0,
        20.0,
    ]
    assert [list(a) for a in good[:2]] == [[40.5], [30.5]]  # the good box at (40, 50)
    assert traffic.named("strokeRect") == [[140.5, 90.5, 20.0, 20.0]]  # the new one is selected
    key(viewer, "3")
    click(viewer, 200.5, 20.5)
    click(viewer, 55.5, 45.5)  # inside the good box: selects it, removes nothing
    assert len(picker.state.boxes) == 3 and "selected good box" in picker.status.value
    key(viewer, "Delete")
    saved = json.loads(path.read_text())
    assert [(b["label"], b["y"], b["x"]) for b in saved["boxes"]] == [
        ("background", 100, 150),
        ("bad", 20, 200),
    ]
    assert (
        "good 0" in picker.counts.value and "at least 5 good and background" in picker.counts.value
    )
    np.testing.assert_array_equal(picker.state.coordinates("bad"), [[20, 200]])
    key(viewer, "z", ctrl_key=True)  # the good box comes back, first in the file again
    assert (
        picker.state.coordinates("good").tolist() == [[40, 50]] and "good 1" in picker.counts.value
    )
    assert json.loads(path.read_text())["boxes"][0] == {"y": 40, "x": 50, "label": "good"}
    picker.redo_button.click()
    assert picker.state.counts()["good"] == 0 and "redo: removed good box" in picker.status.value
    picker.undo_button.click()
    picker.remove_button.click()  # the restored box is the selected one
    assert picker.state.counts()["good"] == 0
    key(viewer, "Escape")  # back to select: a click on empty image clears the selection
    assert picker.state.mode == "select"
    click(viewer, 120.5, 150.5)
    assert len(picker.state.boxes) == 2 and picker.state.selected is None


def test_volumes_are_refused():
    with pytest.raises(BadInputError, match="2D micrographs"):
        BoxPicker(np.zeros((3, 40, 40), np.float32), box_size_px=8)
