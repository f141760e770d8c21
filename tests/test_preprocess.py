"""Preprocessing: the EMAN2 filters' gains, normalisation, clamping, binning, slab independence."""

import numpy as np
import pytest

from tomoseg_nb.errors import BadInputError
from tomoseg_nb.preprocess import (
    DEFAULT_RECIPE,
    Recipe,
    bin_slices,
    preprocess_slab,
    preprocess_slice,
    stack_z_context,
    upsample_to,
)


def _amplitudes(image, frequencies_px):
    """Amplitude of x-cosines with ``k`` cycles across the image."""
    spectrum = np.abs(np.fft.rfft(image.mean(axis=0)))
    return np.array([spectrum[k] for k in frequencies_px])


def test_defaults_are_eman2():
    assert Recipe() == DEFAULT_RECIPE
    assert (Recipe().lowpass, Recipe().highpass_px, Recipe().clamp_sigma) == (0.25, 5.0, 3.0)
    assert Recipe().scale == pytest.approx(1 / 3)
    assert Recipe().binning == 1 and Recipe().name == "eman2"


def test_recipe_dict_round_trip_and_validation():
    recipe = Recipe(binning=2, lowpass=0.2)
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    with pytest.raises(BadInputError, match="unknown preprocessing"):
        Recipe.from_dict({"lowpas": 0.2})
    for bad in [{"binning": 0}, {"lowpass": 0.7}, {"scale": 0}, {"highpass_px": -1}]:
        with pytest.raises(BadInputError):
            Recipe(**bad)


def test_filter_gains_match_the_gaussian_definitions():
    """EMAN2 (current code): lowpass 1/e at 0.25 cycles/px, highpass 1/e at 2.5 / nx."""
    nx = 200
    x = np.arange(nx)
    cycles = [1, 5, 20, 50, 80]  # frequencies k / nx cycles per pixel
    image = sum(np.cos(2 * np.pi * k * x / nx) for k in cycles)
    image = np.tile(image, (16, 1))
    unclamped = Recipe(clamp_sigma=0)
    out = _amplitudes(preprocess_slice(image, unclamped), cycles)
    f = np.array(cycles) / nx
    gain = np.exp(-((f / 0.25) ** 2)) * (1 - np.exp(-((f / (2.5 / nx)) ** 2)))
    np.testing.assert_allclose(out / out[2], gain / gain[2], rtol=1e-3)
    assert out[0] < 0.2 * out[2]  # 1 Fourier pixel: mostly removed by the highpass
    assert out[4] < 0.4 * out[2]  # 0.4 cycles/px: mostly removed by the lowpass


def test_output_is_normalised_clamped_and_scaled():
    rng = np.random.default_rng(1)
    image = rng.normal(5.0, 2.0, size=(128, 96)) + rng.standard_cauchy(size=(128, 96))
    out = preprocess_slice(image)
    assert out.dtype == np.float32 and out.shape == (128, 96)
    assert np.abs(out).max() <= 1.0 + 1e-6  # clamped at 3 sigma, divided by 3
    assert np.isclose(np.abs(out).max(), 1.0)  # the outliers do hit the clamp
    unclamped = preprocess_slice(image, Recipe(clamp_sigma=0, scale=1.0))
    assert unclamped.mean() == pytest.approx(0, abs=1e-5)
    assert unclamped.std() == pytest.approx(1, abs=1e-4)


def test_slab_equals_slices_and_is_independent_of_grouping():
    slab = np.random.default_rng(2).normal(size=(5, 64, 80)).astype(np.float32)
    whole = preprocess_slab(slab)
    for z in range(5):
        np.testing.assert_allclose(whole[z], preprocess_slice(slab[z]), atol=1e-6)
    np.testing.assert_allclose(preprocess_slab(slab[1:3]), whole[1:3], atol=1e-6)


def test_binning_is_average_pooling():
    image = np.arange(7 * 9, dtype=np.float32).reshape(7, 9)
    binned = bin_slices(image, 2)
    assert binned.shape == (3, 4)
    assert binned[0, 0] == np.mean(image[:2, :2])
    assert binned[2, 3] == np.mean(image[4:6, 6:8])
    out = preprocess_slice(np.random.default_rng(3).normal(size=(64, 66)), Recipe(binning=2))
    assert out.shape == (32, 33)
    with pytest.raises(BadInputError, match="cannot bin"):
        bin_slices(np.ones((3, 3)), 4)


def test_flat_slice_gives_zeros_and_bad_values_are_refused():
    assert not preprocess_slice(np.full((32, 32), 7.0)).any()
    image = np.zeros((32, 32))
    image[3, 3] = np.nan
    with pytest.raises(BadInputError, match="NaN"):
        preprocess_slice(image)
    with pytest.raises(BadInputError, match="2D"):
        preprocess_slice(np.zeros((2, 32, 32)))


def test_upsample_keeps_pixel_areas_and_pads_dropped_rows():
    maps = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    up = upsample_to(maps, 2, (5, 7))
    assert up.shape == (1, 5, 7)
    # Pixel-area zoom: each input pixel's centre keeps its value between neighbours.
    assert up[0, 0, 0] == pytest.approx(0.0)
    assert up[0, 4, 6] == pytest.approx(5.0)
    np.testing.assert_array_equal(upsample_to(maps, 1, (2, 3)), maps)


def test_extra_lowpass_channels_are_the_slice_under_each_recipe():
    """Each extra channel is the slice preprocessed with that lowpass and the rest unchanged."""
    import dataclasses
    import json

    slab = np.random.default_rng(7).normal(size=(3, 60, 52)).astype(np.float32)
    recipe = Recipe(binning=2, extra_lowpass=(0.0, 0.4))
    assert recipe.channels_per_slice == 3 and Recipe().channels_per_slice == 1
    out = preprocess_slab(slab, recipe)
    assert out.shape == (3, 30, 26, 3) and out.dtype == np.float32
    for channel, lowpass in enumerate((0.25, 0.0, 0.4)):
        alone = dataclasses.replace(recipe, lowpass=lowpass, extra_lowpass=())
        np.testing.assert_array_equal(out[..., channel], preprocess_slab(slab, alone))
    np.testing.assert_array_equal(preprocess_slice(slab[1], recipe), out[1])
    assert not np.allclose(out[..., 0], out[..., 1])  # the channels differ
    recorded = json.loads(json.dumps(recipe.to_dict()))
    assert recorded["extra_lowpass"] == [0.0, 0.4]
    assert Recipe.from_dict(recorded) == recipe
    assert Recipe().to_dict()["extra_lowpass"] == []
    older = {k: v for k, v in Recipe().to_dict().items() if k != "extra_lowpass"}
    assert Recipe.from_dict(older) == Recipe()  # a sidecar from before the option


@pytest.mark.parametrize("bad", [(0.7,), (-0.1,), ("0.2",), 0.2, None])
def test_bad_extra_lowpass_is_refused(bad):
    with pytest.raises(BadInputError, match="lowpass"):
        Recipe(extra_lowpass=bad)


def test_z_context_stacks_channels_slice_by_slice():
    """Channel ``j c + i`` is channel ``i`` of slice ``z - k + j``."""
    slab = np.zeros((4, 2, 2, 2), np.float32)
    for z in range(4):
        slab[z, ..., 0], slab[z, ..., 1] = 10 * z, 10 * z + 1
    stacked = stack_z_context(slab, 1)
    assert stacked.shape == (2, 2, 2, 6)
    assert stacked[0, 0, 0].tolist() == [0, 1, 10, 11, 20, 21]
    assert stacked[1, 1, 1].tolist() == [10, 11, 20, 21, 30, 31]
    np.testing.assert_array_equal(stack_z_context(slab, 0), slab)
    plain = stack_z_context(slab[..., 0], 1)
    np.testing.assert_array_equal(plain, stacked[..., ::2])
    with pytest.raises(BadInputError, match="at least 5 slices"):
        stack_z_context(slab, 2)
