"""PickReview: score threshold, click to select, reject/keep with undo, picks cut by a slice."""

import numpy as np
import pytest

from tomoseg_nb.errors import BadInputError
from tomoseg_nb.widgets.pick_state import PickReview


def test_threshold_and_deliberate_rejects_decide_what_is_kept():
    review = PickReview(
        np.array([[5, 10, 10], [5, 40, 40], [20, 10, 12]]),
        np.array([0.9, 0.2, 0.6]),
        radius_px=4,
    )
    assert review.kept().tolist() == [True, True, True]
    review.threshold = 0.5
    assert review.kept().tolist() == [True, False, True]
    assert review.click(5, 40, 40) is None  # hidden picks cannot be selected
    assert review.click(6, 11, 9) == 0 and review.selected == 0
    assert review.kept().tolist() == [True, False, True]  # a click only selects
    assert review.toggle_selected() == 0
    assert review.kept().tolist() == [False, False, True]
    assert review.toggle_selected() == 0  # again: kept after all
    assert review.kept().tolist() == [True, False, True]
    review.click(19, 10, 12)
    review.toggle_selected()
    assert review.kept().tolist() == [True, False, False]
    assert review.undo() == 2 and review.kept().tolist() == [True, False, True]
    assert review.undo() == 0 and review.kept().tolist() == [False, False, True]
    assert review.redo() == 0 and review.kept().tolist() == [True, False, True]
    assert review.click(12, 10, 10) is None and review.selected is None  # too far from both
    assert review.toggle_selected() is None
    review.undo()
    review.undo()
    assert review.undo() is None


def test_picks_on_a_slice_are_circles_cut_from_spheres():
    review = PickReview(np.array([[10.0, 5, 5], [13.0, 8, 8], [30.0, 1, 1]]), radius_px=5)
    indices, radii = review.on_slice(10)
    assert indices.tolist() == [0, 1]
    assert radii == pytest.approx([5.0, 4.0])
    flat = PickReview(np.array([[1.0, 2.0]]), radius_px=3)
    assert flat.on_slice(0)[1].tolist() == [3.0]


def test_bad_inputs():
    with pytest.raises(BadInputError, match="shape"):
        PickReview(np.zeros((3, 4)), radius_px=1)
    with pytest.raises(BadInputError, match="one score per pick"):
        PickReview(np.zeros((3, 2)), np.ones(2), radius_px=1)
    with pytest.raises(BadInputError, match="coordinates"):
        PickReview(np.zeros((1, 2)), radius_px=1).click(1, 2, 3)
