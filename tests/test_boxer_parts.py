"""The boxer's building blocks on hand-made arrays: preprocessing, peaks, augmentation, templates, plots."""

import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy import ndimage

from tomoseg_nb.boxer.augment import augment_boxes
from tomoseg_nb.boxer.networks import PICKER_STRIDE, build_picker, picker_targets
from tomoseg_nb.boxer.peaks import find_peaks
from tomoseg_nb.boxer.pick import AutopickResult
from tomoseg_nb.boxer.preprocess import BoxerRecipe, WorkingFrame, prepare_micrograph
from tomoseg_nb.boxer.template import circular_mask, rotated_templates, template_score_map
from tomoseg_nb.coords import Picks
from tomoseg_nb.errors import BadInputError
from tomoseg_nb.plots.boxer import plot_micrograph_picks, plot_references, plot_score_histograms


def blobs(shape, centres, sigma):
    yy, xx = np.indices(shape)
    image = np.zeros(shape, np.float32)
    for y, x in centres:
        image += np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))
    return image


def test_prepare_micrograph_scale_and_frame():
    rng = np.random.default_rng(0)
    centres = [(100.0, 150.0), (300.0, 333.0)]
    image = blobs((480, 520), centres, 8) + 0.05 * rng.standard_normal((480, 520))
    prepared, frame = prepare_micrograph(image, box_px=120)  # 120 px box -> 48 px: scale 0.4
    assert prepared.shape == (192, 216) and prepared.dtype == np.float32  # 208 -> FFT-friendly 216
    assert abs(float(np.median(prepared))) < 0.05 and prepared.max() == 4.0  # clipped
    prepared, frame = prepare_micrograph(image, box_px=120, recipe=BoxerRecipe(clip_sigma=1e3))
    for centre in centres:
        working = frame.to_working(np.array([centre]))[0]
        peak = np.unravel_index(
            np.argmax(
                np.where(
                    np.hypot(*(np.indices(prepared.shape) - working[:, None, None])) < 6,
                    prepared,
                    -np.inf,
                )
            ),
            prepared.shape,
        )
        assert np.allclose(frame.to_source(np.array([peak]))[0], centre, atol=3.0)


def test_working_frame_round_trip():
    frame = WorkingFrame(step=(2.5, 2.4), offset=(0.5, 0.5), source_shape=(100, 100))
    points = np.array([[10.0, 20.0], [55.5, 3.25]])
    assert np.allclose(frame.to_source(frame.to_working(points)), points)


def test_recipe_validation_and_round_trip():
    recipe = BoxerRecipe(working_box_px=24, lowpass_px=0.5)
    assert BoxerRecipe.from_dict(recipe.to_dict()) == recipe
    with pytest.raises(BadInputError, match="even"):
        BoxerRecipe(working_box_px=31)
    with pytest.raises(BadInputError, match="highpass_px > lowpass_px"):
        BoxerRecipe(highpass_px=1.0, lowpass_px=2.0)


def test_find_peaks_greedy_and_sub_pixel():
    score = blobs((64, 64), [(20.3, 20.0), (45.0, 50.6)], 2.0)
    score[25, 24] = 0.9 * score.max()  # a weaker maximum next to a stronger one: suppressed
    coordinates, values = find_peaks(score, threshold_sigma=2.0, min_distance_px=8)
    assert len(coordinates) == 2 and values[0] >= values[1]
    assert np.allclose(coordinates[0], [20.3, 20.0], atol=0.3)
    assert np.allclose(coordinates[1], [45.0, 50.6], atol=0.3)
    none, _ = find_peaks(np.zeros((16, 16)), threshold_sigma=1.0, min_distance_px=3)
    assert none.shape == (0, 2)


def test_augment_shifts_move_the_content():
    point = np.zeros((1, 48, 48), np.float32)
    point[0, 22:27, 22:27] = 1.0  # centred on pixel 24 = size // 2, where references are cut
    samples, shifts = augment_boxes(point, 50, 32, max_shift_px=4, rng=np.random.default_rng(0))
    assert samples.shape == (50, 32, 32) and np.abs(shifts).max() <= 4
    for sample, shift in zip(samples, shifts, strict=True):
        yy, xx = np.indices(sample.shape)
        smooth = ndimage.gaussian_filter(sample, 1.5)  # against the added noise
        weight = smooth * (smooth > 0.4 * smooth.max())
        centre = np.array([(yy * weight).sum(), (xx * weight).sum()]) / weight.sum()
        assert np.allclose(centre, np.array([16.0, 16.0]) + shift, atol=1.0)


def test_picker_targets():
    targets = picker_targets(np.array([[0.0, 0.0], [4.0, -4.0]]), 2, 32)
    assert targets.shape == (2, 16, 16, 1)
    assert np.unravel_index(np.argmax(targets[0, ..., 0]), (16, 16)) in {
        (7, 7),
        (7, 8),
        (8, 7),
        (8, 8),
    }
    peak = np.unravel_index(np.argmax(targets[1, ..., 0]), (16, 16))
    assert peak[0] > 8 and peak[1] < 7
    assert not picker_targets(None, 3, 32).any()


def test_picker_is_fully_convolutional():
    import keras

    picker = build_picker((4, 4), seed=0)
    kinds = {type(layer).__name__ for layer in picker.layers}
    assert kinds <= {"InputLayer", "Conv2D", "MaxPooling2D"}
    output = keras.ops.convert_to_numpy(picker(np.zeros((1, 40, 56, 1), np.float32)))
    assert output.shape == (1, 40 // PICKER_STRIDE, 56 // PICKER_STRIDE, 1)


def test_template_matching_finds_rotated_copies():
    rng = np.random.default_rng(1)

    def particle(shape, y, x, angle_deg):
        # A big blob with a small side lobe: no rotation maps it onto itself.
        a = np.deg2rad(angle_deg)
        lobe = (y + 9 * np.sin(a), x + 9 * np.cos(a))
        return blobs(shape, [(y, x)], 4.0) + 0.6 * blobs(shape, [lobe], 2.0)

    reference = particle((48, 48), 24, 24, 0)
    truth = [(40, 40), (110, 60), (70, 120)]
    image = sum(
        particle((160, 160), y, x, a) for (y, x), a in zip(truth, (0, 90, 200), strict=True)
    )
    image += 0.05 * rng.standard_normal(image.shape).astype(np.float32)
    templates = rotated_templates(reference[None], 32, angle_step_deg=30)
    assert templates.shape == (12 + 1, 32, 32)
    score = template_score_map(image, templates)
    assert score.max() <= 1.0 + 1e-5
    coordinates, _ = find_peaks(score, threshold_sigma=3.0, min_distance_px=16)
    found = coordinates[:3]
    for centre in truth:
        assert np.min(np.hypot(*(found - centre).T)) < 2.0
    assert circular_mask(4).sum() == 12


def test_plots_return_figures():
    rng = np.random.default_rng(0)
    refs = {
        "good": rng.normal(size=(6, 32, 32)),
        "background": rng.normal(size=(5, 32, 32)),
        "bad": np.zeros((0, 32, 32)),
    }
    assert isinstance(plot_references(refs), Figure)
    candidates = Picks(
        np.array([[10.0, 10.0], [50.0, 60.0]]), scores=np.array([2.0, 1.0]), tomogram="m"
    )
    result = AutopickResult(
        candidates=candidates,
        classifier_scores=np.array([0.9, 0.1]),
        threshold=1.0,
        classifier_threshold=0.5,
        score_map=np.zeros((32, 32)),
        frame=WorkingFrame((1.0, 1.0), (0.0, 0.0), (64, 64)),
        box_px=16.0,
    )
    figure = plot_micrograph_picks(
        rng.normal(size=(64, 64)), result, truth=np.array([[10.0, 10.0]])
    )
    assert "1 kept, 1 vetoed" in figure.axes[0].get_title()
    histograms = plot_score_histograms([result, result])
    assert len(histograms.axes) == 2 and "2 of 4 vetoed" in histograms.axes[1].get_title()


def test_package_exports_the_functions():
    import tomoseg_nb.boxer as boxer
    import tomoseg_nb.boxer.pick  # noqa: F401 (a loaded submodule must not shadow a function)

    for name in boxer.__all__:
        assert not isinstance(getattr(boxer, name), type(boxer)), name
    assert boxer.autopick.__name__ == "autopick"
