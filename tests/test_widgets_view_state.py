"""ViewState: zoom levels, pan, slice changes and click-versus-drag, driven by synthetic events."""

import pytest

from tomoseg_nb.widgets.view_state import CLICK_TOLERANCE_PX, ZOOM_LEVELS, ViewState


def test_fit_picks_the_largest_level_that_shows_the_whole_slice():
    assert ViewState((2048, 2048), view_shape=(640, 640)).scale == 1 / 4
    assert ViewState((1024, 1024), view_shape=(640, 640)).scale == 1 / 2
    assert ViewState((64, 100), view_shape=(640, 640)).scale == 6.0
    assert ViewState((300, 200), n_slices=9).z == 4


def test_canvas_and_image_coordinates_are_inverse_and_pixel_centred():
    state = ViewState((100, 200), view_shape=(400, 800))  # scale 4
    assert state.scale == 4.0
    # Top-left canvas corner is the top-left edge of pixel (0, 0), i.e. image (-0.5, -0.5).
    assert state.canvas_to_image(0.0, 0.0) == (-0.5, -0.5)
    assert state.pixel_at(1.0, 1.0) == (0, 0)
    assert state.pixel_at(4.0, 4.0) == (1, 1)
    assert state.pixel_at(799.0, 399.0) == (99, 199)
    assert state.pixel_at(-1.0, 10.0) is None
    x, y = state.image_to_canvas(37.25, 120.5)
    assert state.canvas_to_image(x, y) == pytest.approx((37.25, 120.5))


def test_window_of_a_fitted_large_slice_is_binned_to_canvas_size():
    state = ViewState((2048, 1536), view_shape=(640, 640))
    window = state.window()
    assert (window.y0, window.y1, window.x0, window.x1) == (0, 2048, 0, 1536)
    assert window.binning == 4 and window.scale == 1.0
    assert window.sent_shape == (512, 384)
    # The binned block lands centred: 64 px above and below, 128 px left and right.
    assert (window.offset_x, window.offset_y) == (128.0, 64.0)


def test_window_when_zoomed_in_covers_only_the_visible_pixels():
    state = ViewState((1000, 1000), view_shape=(100, 100))
    state.zoom_by(ZOOM_LEVELS.index(2.0) - state.zoom_index)
    state.centre_on(500, 500)
    window = state.window()
    assert window.binning == 1 and window.scale == 2.0
    # 100 canvas px / 2 = 50 image px visible (plus partly visible edge pixels).
    assert (window.y0, window.y1) == (475, 526)
    top_left_pixel_canvas = (window.offset_x, window.offset_y)
    assert state.image_to_canvas(475 - 0.5, 475 - 0.5) == top_left_pixel_canvas


def test_zoom_keeps_the_point_under_the_pointer():
    state = ViewState((512, 512), view_shape=(512, 512))
    before = state.canvas_to_image(100.0, 300.0)
    assert state.zoom_by(2, 100.0, 300.0)
    assert state.scale == 3.0
    assert state.canvas_to_image(100.0, 300.0) == pytest.approx(before)
    assert not state.zoom_by(100) or state.scale == ZOOM_LEVELS[-1]
    assert state.scale == ZOOM_LEVELS[-1]


def test_drag_pans_and_release_after_a_drag_is_not_a_click():
    state = ViewState((200, 200), view_shape=(200, 200), n_slices=5)
    centre = (state.centre_y, state.centre_x)
    state.press(100, 100)
    assert state.drag(130, 80)
    assert state.release(130, 80) is None
    # The slice follows the mouse: moved right 30 and up 20 canvas px at scale 1.
    assert (state.centre_y, state.centre_x) == (centre[0] + 20, centre[1] - 30)


def test_press_and_release_in_place_is_a_click_on_a_voxel():
    state = ViewState((200, 200), view_shape=(200, 200), n_slices=5)
    state.press(50, 60)
    assert not state.drag(50 + CLICK_TOLERANCE_PX - 1, 60)
    assert state.release(51, 60) == (2, 60, 51)
    state.press(-5, 60)
    assert state.release(-5, 60) is None  # off the slice
    state.press(50, 50)
    state.cancel_gesture()
    assert state.release(50, 50) is None


def test_pan_cannot_lose_the_slice():
    state = ViewState((100, 100), view_shape=(100, 100))
    state.pan_by(10_000, -10_000)
    assert (state.centre_y, state.centre_x) == (99.5, -0.5)


def test_keys_change_slice_zoom_and_fit():
    state = ViewState((100, 100), view_shape=(100, 100), n_slices=3)
    assert state.z == 1
    assert state.key("ArrowUp") and state.z == 2
    assert not state.key("PageUp") and state.z == 2  # clamped at the last slice
    assert state.key("s") and state.z == 1
    assert state.key("+") and state.scale == 2.0
    assert state.key("0") and state.scale == 1.0
    assert not state.key("q")


def test_wheel_zooms_one_level_per_notch_at_the_pointer():
    state = ViewState((100, 100), view_shape=(100, 100))  # scale 1
    state.drag(20.0, 30.0)  # pointer position (no button down)
    anchor = state.canvas_to_image(20.0, 30.0)
    assert state.wheel(-100)  # one Chrome notch towards the screen: one level in
    assert state.scale == 2.0
    assert state.canvas_to_image(20.0, 30.0) == pytest.approx(anchor)
    assert state.wheel(-120) and state.scale == 3.0  # a 120-per-notch mouse: still one level
    assert state.wheel(-3) and state.scale == 4.0  # Firefox line mode: 3 lines, one notch
    assert state.wheel(53) and state.scale == 3.0  # one notch back out
    for _ in range(9):  # trackpad: small deltas add up to a level per 100
        assert not state.wheel(-10)
    assert state.wheel(-10) and state.scale == 4.0


def test_keys_up_and_down_move_one_slice_and_f_is_not_fit():
    state = ViewState((100, 100), view_shape=(100, 100), n_slices=5)
    state.zoom_by(2)
    assert state.key("ArrowDown") and state.z == 1
    assert state.key("w") and state.key("PageUp") and state.z == 3
    assert not state.key("f") and state.scale == 3.0  # f is the painter's fill, never fit here
    assert state.key("Home") and state.scale == 1.0


def test_invalid_shapes_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        ViewState((0, 10))
