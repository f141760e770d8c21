"""SliceViewer: browser events in, exactly the expected pixels out (no browser needed)."""

import numpy as np
import pytest

from tomoseg_nb.volume import open_volume, write_volume
from tomoseg_nb.widgets._messages import browser_event, record_canvas_traffic
from tomoseg_nb.widgets._render import slice_image
from tomoseg_nb.widgets.viewer import SliceViewer


@pytest.fixture(scope="module")
def tomogram():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 300, 200)).astype(np.float32)


def test_redraw_sends_one_binned_greyscale_block(tomogram):
    viewer = SliceViewer(tomogram, view_shape=(100, 100))
    assert viewer.z == 3 and viewer.state.scale == 1 / 3
    with record_canvas_traffic() as traffic:
        viewer.redraw()
    assert traffic.messages == 1  # hold_canvas: every layer in one message
    (image,) = traffic.decoded()
    window = viewer.state.window()
    assert image.shape == window.sent_shape == (100, 67)
    low, high = viewer.contrast
    np.testing.assert_array_equal(image, slice_image(tomogram[3], window, low, high))


def test_reconnecting_browser_gets_the_picture_again(tomogram):
    viewer = SliceViewer(tomogram, view_shape=(100, 100))
    with record_canvas_traffic() as traffic:
        browser_event(viewer.canvas, "client_ready")
    assert len(traffic.images) == 1


def test_click_reaches_tools_and_drag_does_not(tomogram):
    viewer = SliceViewer(tomogram, view_shape=(300, 200))  # scale 1
    clicks = []
    viewer.on_click(lambda z, y, x: clicks.append((z, y, x)))
    browser_event(viewer.canvas, "mouse_down", x=20.2, y=30.7)
    browser_event(viewer.canvas, "mouse_up", x=20.2, y=30.7)
    assert clicks == [(3, 30, 20)]
    centre = (viewer.state.centre_y, viewer.state.centre_x)
    browser_event(viewer.canvas, "mouse_down", x=50, y=50)
    browser_event(viewer.canvas, "mouse_move", x=60, y=70)
    with record_canvas_traffic() as traffic:
        browser_event(viewer.canvas, "mouse_up", x=70, y=90)
    assert clicks == [(3, 30, 20)]
    assert (viewer.state.centre_y, viewer.state.centre_x) == (centre[0] - 40, centre[1] - 20)
    assert len(traffic.images) == 1  # the final position is always drawn


def test_keys_and_wheel_change_slice_and_zoom(tomogram):
    viewer = SliceViewer(tomogram, view_shape=(100, 100))
    browser_event(viewer.canvas, "key_down", key="ArrowUp")
    assert viewer.z == 4 and viewer.z_slider.value == 4
    viewer.z_slider.value = 1
    assert viewer.z == 1
    browser_event(viewer.canvas, "mouse_move", x=10, y=10)
    browser_event(viewer.canvas, "mouse_wheel", x=0, y=-100)
    assert viewer.state.scale == 1 / 2  # one notch, one level (from 1/3)
    assert viewer.zoom_label.value == "zoom 1/2"
    used = []
    viewer.on_key(lambda key: used.append(key) or key == "n")
    browser_event(viewer.canvas, "key_down", key="n")
    browser_event(viewer.canvas, "key_down", key="z", ctrl_key=True)
    browser_event(viewer.canvas, "key_down", key="Z", shift_key=True, meta_key=True)
    assert used == ["n", "Ctrl+z", "Ctrl+Shift+z"]


def test_readout_shows_position_and_values(tomogram):
    viewer = SliceViewer(tomogram, view_shape=(300, 200))
    probability = np.zeros(tomogram.shape, np.float32)
    probability[3, 31, 20] = 0.75
    viewer.add_overlay("membrane", probability)
    browser_event(viewer.canvas, "mouse_move", x=20.0, y=31.0)
    assert "z 3  y 31  x 20" in viewer.readout.value
    assert f"value {tomogram[3, 31, 20]:.4g}" in viewer.readout.value
    assert "membrane 0.75" in viewer.readout.value


def test_overlays_draw_their_slice_and_single_slice_previews_only_there(tomogram):
    viewer = SliceViewer(tomogram, view_shape=(100, 100))
    labels = np.zeros(tomogram.shape, np.uint8)
    labels[:, :30, :30] = 2
    viewer.add_overlay("labels", labels, kind="labels", colours={2: "#00ff00"}, opacity=1.0)
    viewer.add_overlay("preview", np.ones(tomogram.shape[1:], np.float32), z=3)
    with record_canvas_traffic() as traffic:
        viewer.redraw_overlays()
    grey_labels, preview = traffic.decoded()
    assert grey_labels.shape == (100, 67, 4)
    assert (grey_labels[:10, :10] == [0, 255, 0, 255]).all()  # 30 px at 1/3 = 10 sent px
    assert (grey_labels[10:, 10:, 3] == 0).all()
    assert (preview[..., 3] == 8 * 17).all()  # opacity 0.5 x p = 1, rounded to 8 of 15 steps
    viewer.set_z(2)
    with record_canvas_traffic() as traffic:
        viewer.redraw_overlays()
    assert len(traffic.images) == 1  # the preview belongs to slice 3
    viewer.overlay_box.children[0].children[1].value = False  # untick "labels"
    with record_canvas_traffic() as traffic:
        viewer.redraw_overlays()
    assert traffic.images == []
    viewer.remove_overlay("labels")
    assert list(viewer.overlays) == ["preview"]
    with pytest.raises(ValueError, match="must match the volume"):
        viewer.add_overlay("wrong", np.zeros((6, 10, 10)))


def test_micrograph_file_and_contrast_controls(tmp_path):
    image = np.linspace(0, 1, 64 * 80, dtype=np.float32).reshape(64, 80)
    path = write_volume(tmp_path / "mic.mrc", image[None], voxel_size=2.0)
    with open_volume(path, ndim=2) as volume:
        viewer = SliceViewer(volume, view_shape=(64, 80))
        assert viewer.source.is_2d and viewer.state.n_slices == 1
        assert viewer.z_slider.layout.display == "none"
        viewer.contrast_slider.value = (0.0, 2.0)
        with record_canvas_traffic() as traffic:
            viewer.lowpass_slider.value = 0.0  # unchanged: nothing sent
            viewer.auto_button.click()
        (drawn,) = traffic.decoded()
        assert drawn.min() == 0 and drawn.max() == 255


def test_readout_follows_a_keyboard_slice_change_under_a_still_pointer(tomogram):
    viewer = SliceViewer(tomogram, view_shape=(300, 200))
    browser_event(viewer.canvas, "mouse_move", x=20.0, y=31.0)
    assert "z 3  y 31  x 20" in viewer.readout.value
    browser_event(viewer.canvas, "key_down", key="ArrowUp")
    assert "z 4  y 31  x 20" in viewer.readout.value
    assert f"value {tomogram[4, 31, 20]:.4g}" in viewer.readout.value
    browser_event(viewer.canvas, "mouse_out", x=-1.0, y=31.0)
    browser_event(viewer.canvas, "key_down", key="ArrowUp")
    assert "z 4" in viewer.readout.value  # the pointer left: nothing new is read out


def test_side_views_cut_through_the_pointer_with_exact_pixels(tomogram):
    viewer = SliceViewer(tomogram, view_shape=(300, 200), side_views=True)  # scale 1
    assert viewer.xz_canvas.layout.display == "flex"
    low, high = viewer.contrast
    with record_canvas_traffic() as traffic:
        browser_event(viewer.canvas, "mouse_move", x=20.2, y=30.7)
    assert viewer.cursor == (30, 20)
    xz_image, yz_image = traffic.decoded()
    xz, yz = viewer.side_view_states()
    np.testing.assert_array_equal(xz_image, slice_image(tomogram[:, 30, :], xz.window(), low, high))
    np.testing.assert_array_equal(
        yz_image, slice_image(tomogram[:, :, 20].T, yz.window(), low, high)
    )
    assert xz_image.shape == (6, 200) and yz_image.shape == (300, 6)
    # XZ: slice z = 3 is the middle row of the 160 px view; x = 20 lines up with the slice view.
    assert [0, 80.0, 200, 80.0] in traffic.named("strokeLine")
    assert [20.5, 0, 20.5, 160] in traffic.named("strokeLine")
    # A click two rows below the current slice in XZ goes there.
    browser_event(viewer.xz_canvas, "mouse_down", x=50, y=82)
    assert viewer.z == 5 and viewer.z_slider.value == 5
    with record_canvas_traffic() as traffic:
        browser_event(viewer.xz_canvas, "client_ready")  # a new browser view gets them again
    assert len(traffic.images) == 2
    assert viewer.views.layout.grid_template_columns == "200px 160px"
    viewer.side_checkbox.value = False
    assert viewer.xz_canvas.layout.display == "none"
    assert viewer.views.layout.grid_template_columns == "200px"
    with record_canvas_traffic() as traffic:
        browser_event(viewer.canvas, "mouse_move", x=40.0, y=40.0)
    assert viewer.cursor == (30, 20) and traffic.images == []


def test_slab_averages_slices_around_z_for_display(tomogram):
    viewer = SliceViewer(tomogram, view_shape=(300, 200))
    low, high = viewer.contrast
    with record_canvas_traffic() as traffic:
        viewer.slab_slider.value = 3
    (drawn,) = traffic.decoded()
    slab = tomogram[2:5].mean(axis=0)
    np.testing.assert_array_equal(drawn, slice_image(slab, viewer.state.window(), low, high))
    viewer.set_z(0)  # cut at the end of the volume: slices 0-2
    np.testing.assert_allclose(viewer.current_slice(), tomogram[0:3].mean(axis=0), rtol=1e-6)


def test_probability_threshold_slider_hides_low_values(tomogram):
    viewer = SliceViewer(tomogram, view_shape=(300, 200))
    probability = np.zeros(tomogram.shape, np.float32)
    probability[3, :10, :10] = 0.4
    probability[3, 10:20, :10] = 0.9
    viewer.add_overlay("membrane", probability, opacity=1.0)
    threshold = viewer.overlay_box.children[0].children[3]
    with record_canvas_traffic() as traffic:
        threshold.value = 0.5
    assert viewer.overlays["membrane"].threshold == 0.5
    (drawn,) = traffic.decoded()
    assert (drawn[:10, :10, 3] == 0).all()
    assert (drawn[10:20, :10, 3] == 238).all()  # 0.9 x 15 alpha steps rounds to 14 x 17


def test_question_mark_shows_the_key_table(tomogram):
    viewer = SliceViewer(tomogram, view_shape=(100, 100))
    assert not viewer.help.shown
    browser_event(viewer.canvas, "key_down", key="?", shift_key=True)
    assert viewer.help.shown and "one level per notch" in viewer.help.value
    viewer.help_button.click()
    assert not viewer.help.shown


def test_side_views_show_the_overlays_too(tomogram):
    viewer = SliceViewer(tomogram, view_shape=(300, 200), side_views=True)  # scale 1
    labels = np.zeros(tomogram.shape, np.uint8)
    labels[:, :30, :30] = 2
    viewer.add_overlay("labels", labels, kind="labels", colours={2: "#00ff00"}, opacity=1.0)
    viewer.add_overlay("preview", np.ones(tomogram.shape[1:], np.float32), z=3)  # 2D: not there
    with record_canvas_traffic() as traffic:
        viewer.set_cursor(10, 10)
    _, xz_labels, _, yz_labels = traffic.decoded()
    assert xz_labels.shape == (6, 200, 4) and yz_labels.shape == (300, 6, 4)
    assert (xz_labels[:, :30] == [0, 255, 0, 255]).all() and (xz_labels[:, 30:, 3] == 0).all()
    assert (yz_labels[:30] == [0, 255, 0, 255]).all() and (yz_labels[30:, :, 3] == 0).all()
    with record_canvas_traffic() as traffic:
        viewer.overlays["labels"].visible = False
        viewer.redraw_overlays()
    assert len(traffic.images) == 3  # the slice's preview overlay and the two sections only
