"""Result viewers: label legend, pick threshold / review / histogram / export."""

import numpy as np
import pytest

from tomoseg_nb.coords import Picks, read_picks
from tomoseg_nb.widgets._messages import browser_event, record_canvas_traffic
from tomoseg_nb.widgets.results import LabelViewer, PickViewer
from tomoseg_nb.widgets.viewer import SliceViewer


@pytest.fixture(scope="module")
def tomogram():
    return np.random.default_rng(4).normal(size=(10, 64, 64)).astype(np.float32)


def test_label_viewer_colours_and_legend(tomogram):
    labels = np.zeros(tomogram.shape, np.uint8)
    labels[5, :32] = 1  # half of slice 5 is membrane
    labels[5, 32:48, :16] = 2
    viewer = LabelViewer(tomogram, labels, {1: "membrane", 2: "ribosome"}, colours={2: "#0000ff"})
    assert viewer.viewer.z == 5
    assert viewer.shares() == {1: 50.0, 2: 6.25}
    assert "membrane (50.0% of slice 5)" in viewer.legend.value
    assert "#0000ff" in viewer.legend.value
    with record_canvas_traffic() as traffic:
        viewer.viewer.redraw_overlays()
    (overlay,) = traffic.decoded()
    assert (overlay[40, 8, :3] == [0, 0, 255]).all() and overlay[60, 60, 3] == 0
    browser_event(viewer.viewer.canvas, "key_down", key="ArrowUp")
    assert "membrane (0.0% of slice 6)" in viewer.legend.value


@pytest.fixture
def picks():
    coordinates = np.array([[5, 10, 10], [5, 40, 40], [6, 20, 50], [9, 50, 12]], float)
    return Picks(
        coordinates, scores=np.array([0.9, 0.2, 0.6, 0.8]), voxel_size=10.0, shape=(10, 64, 64)
    )


def test_pick_viewer_threshold_and_circles(tomogram, picks):
    viewer = PickViewer(
        tomogram, picks, radius_px=4, viewer=SliceViewer(tomogram, view_shape=(64, 64))
    )
    assert viewer.counts.value == "4 of 4 picks above the threshold, 4 kept"
    assert bytes(viewer.histogram.value).startswith(b"\x89PNG")
    with record_canvas_traffic() as traffic:
        viewer.threshold.value = 0.5
    assert viewer.counts.value == "3 of 4 picks above the threshold, 3 kept"
    # Slice 5 shows pick 0 at full radius and pick 2 (one slice away) slightly smaller.
    ((x, y, radii),) = traffic.named("strokeCircles")
    assert list(x) == [10.5, 50.5] and list(y) == [10.5, 20.5]  # pixel centres
    assert list(radii) == pytest.approx([4.0, np.sqrt(15)])


def test_pick_viewer_click_selects_delete_rejects_and_export_writes_the_rest(
    tomogram, picks, tmp_path
):
    sv = SliceViewer(tomogram, view_shape=(64, 64))
    viewer = PickViewer(tomogram, picks, radius_px=4, threshold=0.5, viewer=sv)
    with record_canvas_traffic() as traffic:
        browser_event(sv.canvas, "mouse_down", x=11.0, y=10.0)
        browser_event(sv.canvas, "mouse_up", x=11.0, y=10.0)
    assert viewer.status.value == "pick 0 selected (Delete rejects it)"
    assert viewer.review.kept().tolist() == [True, False, True, True]  # a click only selects
    kept, selected = traffic.named("strokeCircles")
    assert list(selected[0]) == [10.5] and list(selected[2]) == [7.0]  # ring 3 px outside
    browser_event(sv.canvas, "key_down", key="Delete")
    assert viewer.status.value == "pick 0 rejected"
    assert viewer.review.kept().tolist() == [False, False, True, True]
    with record_canvas_traffic() as traffic:
        sv.redraw_marks()
    kept, rejected, _ = traffic.named("strokeCircles")
    assert list(rejected[0]) == [10.5] and list(kept[0]) == [50.5]
    browser_event(sv.canvas, "key_down", key="z", ctrl_key=True)
    assert viewer.review.kept().tolist() == [True, False, True, True]
    browser_event(sv.canvas, "key_down", key="y")
    assert viewer.status.value == "redo: pick 0 rejected"
    viewer.reject_button.click()  # pick 0 is still selected: kept again
    assert viewer.review.kept().tolist() == [True, False, True, True]
    viewer.undo_button.click()
    assert viewer.review.kept().tolist() == [False, False, True, True]
    assert sv.help_button.layout.display == "none"  # one ? button: the pick viewer's, whole table
    viewer.help_button.click()
    assert viewer.help.shown and "zoom in, out" in viewer.help.value
    viewer.export_path.value = str(tmp_path / "picks.csv")
    viewer.export_button.click()
    assert viewer.status.value.startswith("wrote 2 picks")
    written = read_picks(tmp_path / "picks.csv")
    np.testing.assert_allclose(written.coordinates, picks.coordinates[[2, 3]])
    viewer.export_button.click()
    assert "Not exported" in viewer.status.value  # exists; overwrite not ticked
