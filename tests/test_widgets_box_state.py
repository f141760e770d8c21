"""BoxState: a click selects a box, an add mode boxes empty image, Delete and undo/redo; the
autosaved JSON file."""

import json

import numpy as np
import pytest

from tomoseg_nb.boxer.references import KINDS
from tomoseg_nb.errors import BadInputError
from tomoseg_nb.widgets.box_state import BOX_CLASSES, MODES, Box, BoxState


def saved_boxes(path):
    return [(b["label"], b["y"], b["x"]) for b in json.loads(path.read_text())["boxes"]]


def test_clicks_select_or_add_by_mode_and_never_remove(tmp_path):
    path = tmp_path / "boxes.json"
    state = BoxState((200, 300), box_size_px=20, path=path, micrograph="mic_001")
    assert state.mode == "select" and MODES == ("select", *BOX_CLASSES)
    assert state.click(50, 60) == ("cleared", None) and state.boxes == []  # select mode: no box
    assert not path.exists()
    state.mode = "good"
    assert state.click(50.4, 60.6) == ("added", Box(50, 61, "good"))
    assert state.selected == Box(50, 61, "good")  # the new box is the selected one
    state.mode = "bad"
    assert state.click(150, 250) == ("added", Box(150, 250, "bad"))
    state.mode = "background"
    assert state.click(100, 100)[0] == "added"
    assert state.click(59, 70) == ("selected", Box(50, 61, "good"))  # inside the first box
    assert len(state.boxes) == 3  # an add mode still selects on a box
    assert state.click(-3, 10) is None and len(state.boxes) == 3
    state.mode = "select"
    assert state.click(-3, 10) == ("cleared", None) and state.selected is None
    assert state.counts() == {"good": 1, "background": 1, "bad": 1}
    np.testing.assert_array_equal(state.coordinates("bad"), [[150, 250]])

    saved = json.loads(path.read_text())
    assert saved == {
        "format": "tomoseg_nb.boxes",
        "version": 1,
        "micrograph": "mic_001",
        "image_shape": [200, 300],
        "box_size_px": 20,
        "boxes": [
            {"y": 50, "x": 61, "label": "good"},
            {"y": 150, "x": 250, "label": "bad"},
            {"y": 100, "x": 100, "label": "background"},
        ],
    }
    reopened = BoxState((200, 300), box_size_px=99, path=path)
    assert reopened.boxes == state.boxes and reopened.box_size_px == 20


def test_delete_undo_and_redo_keep_the_placing_order_and_are_saved(tmp_path):
    path = tmp_path / "boxes.json"
    state = BoxState((200, 300), box_size_px=20, path=path, mode="good")
    for y, x in ((20, 20), (60, 60), (100, 100)):
        state.click(y, x)
    state.mode = "select"
    state.click(62, 58)
    assert state.delete_selected() == Box(60, 60, "good")
    assert state.delete_selected() is None  # nothing selected any more
    assert saved_boxes(path) == [("good", 20, 20), ("good", 100, 100)]
    assert state.undo() == ("added", Box(60, 60, "good"))  # back in the middle, selected
    assert state.selected == Box(60, 60, "good")
    assert saved_boxes(path) == [("good", 20, 20), ("good", 60, 60), ("good", 100, 100)]
    assert state.undo() == ("removed", Box(100, 100, "good"))  # the last add
    assert saved_boxes(path) == [("good", 20, 20), ("good", 60, 60)]
    assert state.redo() == ("added", Box(100, 100, "good"))
    assert state.redo() == ("removed", Box(60, 60, "good"))
    assert state.redo() is None
    assert saved_boxes(path) == [("good", 20, 20), ("good", 100, 100)]
    state.undo()
    state.mode = "bad"
    state.click(150, 250)  # a new edit: nothing left to redo
    assert state.redo() is None
    assert saved_boxes(path) == [
        ("good", 20, 20),
        ("good", 60, 60),
        ("good", 100, 100),
        ("bad", 150, 250),
    ]


def test_equal_boxes_are_told_apart_by_undo(tmp_path):
    state = BoxState((200, 300), box_size_px=20)
    state.boxes = [Box(50, 50, "good"), Box(90, 90, "bad"), Box(50, 50, "good")]  # a hand-made file
    state.selected = state.boxes[2]
    state.delete_selected()
    assert state.boxes == [Box(50, 50, "good"), Box(90, 90, "bad")]
    state.undo()
    assert state.boxes[2] is state.selected and len(state.boxes) == 3


def test_bad_files_and_modes_are_refused(tmp_path):
    state = BoxState((10, 10), box_size_px=4)
    with pytest.raises(BadInputError, match="box mode"):
        state.mode = "junk"
    assert BOX_CLASSES == KINDS  # the boxer reads the same three kinds
    with pytest.raises(BadInputError, match="no file"):
        state.save()
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"hello": 1}')
    with pytest.raises(BadInputError, match="not a tomoseg_nb boxes file"):
        BoxState((10, 10), box_size_px=4, path=foreign)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(BadInputError, match="unreadable"):
        BoxState((10, 10), box_size_px=4, path=broken)
