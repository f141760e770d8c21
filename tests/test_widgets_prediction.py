"""Slab prediction after a training: the map equals whole-tomogram segmentation on those slices."""

import threading

import numpy as np
import pytest

from tomoseg_nb.errors import CancelledError
from tomoseg_nb.models import ModelInfo, build_model
from tomoseg_nb.preprocess import Recipe
from tomoseg_nb.segment import FeatureNetwork, segment_array
from tomoseg_nb.volume import write_volume
from tomoseg_nb.widgets._source import SliceSource
from tomoseg_nb.widgets.prediction import (
    MAX_SLICES,
    VOXEL_BUDGET,
    PredictionPanel,
    default_slices,
    predict_slab,
    slab_bounds,
)
from tomoseg_nb.widgets.viewer import SliceViewer

VOXEL_SIZE = 10.0


def run_now(function):
    function()


@pytest.fixture(scope="module")
def tomogram(tmp_path_factory):
    data = np.random.default_rng(0).normal(size=(12, 64, 80)).astype(np.float32)
    path = write_volume(tmp_path_factory.mktemp("tomo") / "tomo.mrc", data, voxel_size=VOXEL_SIZE)
    return data, path


@pytest.fixture(scope="module")
def network():
    """An untrained tiny network: its map is arbitrary but fixed, which is all these tests need."""
    info = ModelInfo(
        feature="membrane",
        arch="tiny",
        voxel_size=VOXEL_SIZE * Recipe().binning,
        recipe=Recipe().to_dict(),
        threshold=0.4,
    )
    return build_model("tiny", seed=0), info


@pytest.mark.parametrize(
    ("depth", "z", "slices", "expected"),
    [
        (12, 6, 4, (4, 8)),
        (12, 0, 4, (0, 4)),
        (12, 11, 4, (8, 12)),
        (12, 5, 50, (0, 12)),
        (12, 5, 0, (5, 6)),
    ],
)
def test_slab_bounds_centre_on_the_slice_and_stay_inside(depth, z, slices, expected):
    assert slab_bounds(depth, z, slices) == expected


def test_slab_prediction_equals_segmentation_of_those_slices(tomogram, network):
    data, path = tomogram
    model, info = network
    reports = []
    prediction = predict_slab(
        model,
        info,
        SliceSource(path),
        z_start=3,
        z_stop=9,
        engine="keras",
        progress=lambda *a: reports.append(a),
    )
    (whole,) = segment_array(
        [FeatureNetwork(model, info)], data, voxel_size=VOXEL_SIZE, engine="keras"
    )
    assert (prediction.feature, prediction.threshold, prediction.z_start) == ("membrane", 0.4, 3)
    assert prediction.z_stop == 9 and prediction.probability.shape == (6, 64, 80)
    np.testing.assert_allclose(prediction.probability, whole[3:9], atol=1e-5)
    assert reports == [(4, 6), (6, 6)]  # four slices at a time


@pytest.mark.parametrize(("z_start", "z_stop"), [(0, 5), (7, 12)])
def test_a_z_context_network_gets_its_neighbouring_slices_mirrored_at_the_ends(
    tomogram, z_start, z_stop
):
    data, path = tomogram
    info = ModelInfo(
        feature="membrane",
        arch="tiny",
        voxel_size=VOXEL_SIZE * Recipe().binning,
        recipe=Recipe().to_dict(),
        training={"config": {"z_context": 1}},
    )
    model = build_model("tiny", seed=1, channels=3)
    prediction = predict_slab(
        model, info, SliceSource(path), z_start=z_start, z_stop=z_stop, engine="keras"
    )
    (whole,) = segment_array(
        [FeatureNetwork(model, info)], data, voxel_size=VOXEL_SIZE, engine="keras"
    )
    assert info.z_context == 1 and prediction.probability.std() > 0
    np.testing.assert_allclose(prediction.probability, whole[z_start:z_stop], atol=1e-5)


def test_slab_prediction_stops_when_cancelled(tomogram, network):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        predict_slab(*network, SliceSource(tomogram[1]), z_start=0, z_stop=4, cancel=cancel)


def test_panel_predicts_around_the_viewers_slice_after_training(tomogram, network):
    source = SliceSource(tomogram[1])
    viewer = SliceViewer(source)
    viewer.go_to(10, 32, 40)
    panel = PredictionPanel(source, viewer=viewer, slices=4, engine="keras", schedule=run_now)
    received = []
    panel.on_prediction(received.append)
    assert panel.predict_button.disabled
    panel.predict()
    assert "train one first" in panel.status.value and not received

    panel.after_training.value = False  # keep the network, predict only when asked
    panel.trained(*network)
    assert panel.task.status == "idle" and not panel.predict_button.disabled
    panel.after_training.value = True
    panel.trained(*network)
    assert panel.task.wait(120) and panel.task.status == "done", panel.status.value
    (prediction,) = received
    assert (prediction.z_start, prediction.z_stop) == slab_bounds(12, 10, 4) == (8, 12)
    assert panel.prediction is prediction and "slices 8-11" in panel.status.value
    assert panel.progress.value == panel.progress.max == 4

    viewer.go_to(1, 32, 40)  # Predict again: the slab follows the slice on show
    panel.predict_button.click()
    assert panel.task.wait(120) and received[-1].z_start == 0


def test_panel_shows_a_failure(tomogram, network):
    model, info = network
    wrong = ModelInfo(
        feature="membrane", arch="tiny", voxel_size=33.0, recipe=info.recipe, threshold=0.5
    )
    panel = PredictionPanel(SliceSource(tomogram[1]), slices=2, schedule=run_now)
    received = []
    panel.on_prediction(received.append)
    panel.trained(model, wrong)
    assert panel.task.wait(60) and panel.task.status == "failed"
    assert "No prediction" in panel.status.value and "33" in panel.status.value
    assert received == [] and not panel.predict_button.disabled


def test_default_slab_depth_keeps_the_prediction_small(tomogram):
    assert default_slices((300, 512, 512)) == MAX_SLICES  # room for suggestions 8 slices apart
    assert default_slices((300, 2048, 2048)) * 2048 * 2048 <= VOXEL_BUDGET
    assert default_slices((5, 64, 64)) == 5 and default_slices((300, 8192, 8192)) == 1
    panel = PredictionPanel(SliceSource(tomogram[1]))
    assert panel.slices.value == 12  # the whole small tomogram
