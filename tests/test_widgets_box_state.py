"""BoxState: click to add/remove reference boxes; the autosaved JSON file."""

import json

import numpy as np
import pytest

from tomoseg_nb.boxer.references import KINDS
from tomoseg_nb.errors import BadInputError
from tomoseg_nb.widgets.box_state import BOX_CLASSES, Box, BoxState


def test_clicks_add_boxes_of_the_current_class_and_remove_boxes(tmp_path):
    path = tmp_path / "boxes.json"
    state = BoxState((200, 300), box_size_px=20, path=path, micrograph="mic_001")
    assert state.click(50.4, 60.6) == ("added", Box(50, 61, "good"))
    state.label = "bad"
    assert state.click(150, 250) == ("added", Box(150, 250, "bad"))
    state.label = "background"
    assert state.click(100, 100)[0] == "added"
    assert state.click(59, 70) == ("removed", Box(50, 61, "good"))  # inside the first box
    assert state.click(-3, 10) is None
    assert state.counts() == {"good": 0, "background": 1, "bad": 1}
    np.testing.assert_array_equal(state.coordinates("bad"), [[150, 250]])
    assert state.coordinates("good").shape == (0, 2)

    saved = json.loads(path.read_text())
    assert saved == {
        "format": "tomoseg_nb.boxes",
        "version": 1,
        "micrograph": "mic_001",
        "image_shape": [200, 300],
        "box_size_px": 20,
        "boxes": [
            {"y": 150, "x": 250, "label": "bad"},
            {"y": 100, "x": 100, "label": "background"},
        ],
    }
    reopened = BoxState((200, 300), box_size_px=99, path=path)
    assert reopened.boxes == state.boxes and reopened.box_size_px == 20


def test_bad_files_and_classes_are_refused(tmp_path):
    state = BoxState((10, 10), box_size_px=4)
    with pytest.raises(BadInputError, match="box class"):
        state.label = "junk"
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
