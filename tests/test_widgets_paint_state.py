"""PainterState: exact pixels painted by strokes, eraser, fill, undo/redo (napari-style tests)."""

import numpy as np
import pytest

from tomoseg_nb.widgets.paint_state import HISTORY, PainterState


def stroke(state, points):
    state.press(*points[0])
    for point in points[1:]:
        state.drag(*point)
    return state.release()


def test_single_press_paints_a_disc_of_the_brush_radius():
    state = PainterState(np.zeros((9, 9), bool), brush_radius=2.0)
    assert stroke(state, [(4, 4)])
    rows, columns = np.nonzero(state.mask)
    assert set(zip(rows.tolist(), columns.tolist(), strict=True)) == {
        (r, c) for r in range(9) for c in range(9) if (r - 4) ** 2 + (c - 4) ** 2 <= 4
    }
    assert state.mask.sum() == 13


def test_horizontal_stroke_paints_exactly_a_band_without_gaps():
    state = PainterState(np.zeros((10, 20), bool), brush_radius=1.0)
    # Only the end points are sent (a fast mouse): the segment between them is still painted.
    assert stroke(state, [(5.0, 2.0), (5.0, 15.0)])
    expected = np.zeros((10, 20), bool)
    expected[5, 1:17] = True  # the line plus round caps of radius 1
    expected[4, 2:16] = True
    expected[6, 2:16] = True
    np.testing.assert_array_equal(state.mask, expected)


def test_diagonal_stroke_covers_every_pixel_on_the_segment():
    state = PainterState(np.zeros((32, 32), bool), brush_radius=0.5)
    stroke(state, [(2, 3), (28, 29)])
    for t in range(2, 29):
        assert state.mask[t, t + 1]
    assert state.mask.sum() == 27  # exactly the diagonal: radius 0.5 paints one pixel wide


def test_eraser_removes_and_undo_redo_restore_exact_masks():
    start = np.zeros((16, 16), bool)
    start[4:12, 4:12] = True
    state = PainterState(start, brush_radius=0.5)
    stroke(state, [(0, 0), (0, 5)])
    after_paint = state.mask.copy()
    state.mode = "erase"
    assert stroke(state, [(8, 0), (8, 15)])
    assert not state.mask[8].any() and state.mask[7, 4:12].all()
    after_erase = state.mask.copy()

    assert state.undo()
    np.testing.assert_array_equal(state.mask, after_paint)
    assert state.undo()
    np.testing.assert_array_equal(state.mask, start)
    assert not state.undo()
    assert state.redo()
    np.testing.assert_array_equal(state.mask, after_paint)
    assert state.redo()
    np.testing.assert_array_equal(state.mask, after_erase)
    assert not state.redo()


def test_new_edit_after_undo_drops_the_redo_history():
    state = PainterState(np.zeros((8, 8), bool), brush_radius=0.5)
    stroke(state, [(1, 1)])
    state.undo()
    stroke(state, [(5, 5)])
    assert not state.can_redo
    assert state.mask.sum() == 1 and state.mask[5, 5]


def test_stroke_that_changes_nothing_is_not_an_undo_step():
    state = PainterState(np.zeros((8, 8), bool), brush_radius=1, mode="erase")
    assert not stroke(state, [(3, 3), (3, 6)])
    assert not state.can_undo
    state.mode = "paint"
    assert not stroke(state, [(-20, -20), (-10, -20)])  # entirely off the tile


def test_fill_floods_the_enclosed_region_only():
    mask = np.zeros((10, 10), bool)
    mask[2, 2:8] = mask[7, 2:8] = mask[2:8, 2] = mask[2:8, 7] = True  # a closed outline
    state = PainterState(mask, mode="fill")
    assert stroke(state, [(4.2, 4.9)])
    expected = mask.copy()
    expected[2:8, 2:8] = True
    np.testing.assert_array_equal(state.mask, expected)
    assert not state.fill(5, 5)  # already painted
    assert state.fill(0, 0)  # the outside
    assert state.mask.all()
    state.undo()
    np.testing.assert_array_equal(state.mask, expected)


def test_clear_and_history_limit():
    state = PainterState(np.zeros((4, 4), bool), brush_radius=0.5)
    for i in range(HISTORY + 5):
        stroke(state, [(i % 4, (i // 4) % 4)])
        state.clear()
    undone = 0
    while state.undo():
        undone += 1
    assert undone == HISTORY


def test_bad_arguments():
    with pytest.raises(ValueError, match="2D"):
        PainterState(np.zeros((2, 2, 2), bool))
    with pytest.raises(ValueError, match="mode"):
        PainterState(np.zeros((2, 2), bool), mode="spray")
    assert PainterState(np.zeros((2, 2), bool), brush_radius=0).brush_radius == 0.5
