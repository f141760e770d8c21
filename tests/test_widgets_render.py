"""Rendering helpers: exact binning, contrast, overlay colours."""

import numpy as np
import pytest

from tomoseg_nb.widgets._render import (
    auto_contrast,
    bin_mean,
    hex_to_rgb,
    labels_rgba,
    overlay_image,
    probability_rgba,
    slice_image,
    to_uint8,
)
from tomoseg_nb.widgets.view_state import ViewState, Window


@pytest.mark.parametrize("shape", [(8, 8), (10, 7), (3, 5)])
@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_bin_mean_equals_block_means_including_partial_blocks(shape, factor):
    image = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    binned = bin_mean(image, factor)
    rows, columns = -(-shape[0] // factor), -(-shape[1] // factor)
    assert binned.shape == (rows, columns)
    for r in range(rows):
        for c in range(columns):
            block = image[r * factor : (r + 1) * factor, c * factor : (c + 1) * factor]
            assert binned[r, c] == pytest.approx(block.mean(), abs=1e-5)


def test_contrast_ignores_outliers_and_maps_to_uint8():
    image = np.zeros((100, 100), np.float32)
    image[::2] = 1.0
    image[0, 0] = 1e6  # a gold bead should not squash the range
    low, high = auto_contrast(image, (1, 99))
    assert (low, high) == (0.0, 1.0)
    assert to_uint8(np.array([-1.0, 0.0, 0.5, 1.0, 2.0]), 0.0, 1.0).tolist() == [
        0,
        0,
        128,
        255,
        255,
    ]


def test_slice_image_is_the_binned_window_in_uint8():
    image = np.arange(16 * 16, dtype=np.float32).reshape(16, 16)
    window = Window(4, 12, 0, 16, 2, 1.0, 0.0, 0.0)
    block = slice_image(image, window, 0.0, 255.0)
    assert block.dtype == np.uint8 and block.shape == window.sent_shape == (4, 8)
    expected = image[4:12].reshape(4, 2, 8, 2).mean(axis=(1, 3))
    np.testing.assert_array_equal(block, np.floor(expected + 0.5).astype(np.uint8))


def test_probability_and_label_overlays():
    rgba = probability_rgba(np.array([[0.0, 0.5, 1.0]]), "#ff0000", 0.8, threshold=0.6)
    assert rgba[0, :, :3].tolist() == [[255, 0, 0]] * 3
    assert rgba[0, :, 3].tolist() == [0, 0, 204]
    labels = labels_rgba(np.array([[0, 1, 2, 7]]), {1: "#00ff00", 2: "#0000ff"}, 1.0)
    assert labels[0, :, 3].tolist() == [0, 255, 255, 0]
    assert labels[0, 2, :3].tolist() == [0, 0, 255]
    assert hex_to_rgb("#abc") == (170, 187, 204)
    with pytest.raises(ValueError, match="hex colour"):
        hex_to_rgb("red")


def test_label_overlay_is_sampled_not_averaged():
    labels = np.zeros((1, 4, 4), np.uint8)
    labels[0, 0::2, 0::2] = 3
    state = ViewState((4, 4), view_shape=(2, 2))  # zoom 1/2
    block = overlay_image(
        labels[0], state.window(), kind="labels", colour="", opacity=1.0, colours={3: "#ffffff"}
    )
    assert block.shape == (2, 2, 4) and (block[..., 3] == 255).all()
    with pytest.raises(ValueError, match="overlay kind"):
        overlay_image(labels[0], state.window(), kind="mesh", colour="#fff", opacity=1)
