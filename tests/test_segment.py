"""Whole-tomogram application: frame, dtype, equality with in-memory application, safe outputs."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tomoseg_nb.errors import BadInputError, CancelledError, OutputExistsError
from tomoseg_nb.maps import map_path
from tomoseg_nb.models import ModelInfo, build_model
from tomoseg_nb.preprocess import DEFAULT_RECIPE, Recipe
from tomoseg_nb.segment import (
    FeatureNetwork,
    input_binning,
    segment_array,
    segment_volume,
)
from tomoseg_nb.volume import open_volume, write_volume

VOXEL_SIZE = 12.5
ORIGIN = (10.0, -20.0, 30.0)


def _network(
    feature: str, seed: int, voxel_size: float = VOXEL_SIZE, binning: int = 1
) -> FeatureNetwork:
    model = build_model("tiny", seed=seed)
    recipe = Recipe(binning=binning).to_dict()
    return FeatureNetwork(
        model, ModelInfo(feature=feature, arch="tiny", voxel_size=voxel_size, recipe=recipe)
    )


@pytest.fixture(scope="module")
def tomogram_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(5, 70, 54)).astype(np.float32)
    data[:, 20:40, 10:30] += 3.0
    path = tmp_path_factory.mktemp("tomo") / "TS_01.mrc"
    write_volume(path, data, voxel_size=VOXEL_SIZE, origin=ORIGIN)
    return path


@pytest.fixture(scope="module")
def networks():
    return [_network("membrane", 1), _network("ribosome", 2)]


def test_maps_keep_the_frame_and_equal_in_memory_application(tomogram_path, networks, tmp_path):
    paths = segment_volume(networks, tomogram_path, tmp_path, slab_size=2, engine="keras")
    assert paths == [
        map_path(tmp_path, "TS_01", "membrane"),
        map_path(tmp_path, "TS_01", "ribosome"),
    ]
    with open_volume(tomogram_path) as volume:
        expected = segment_array(
            networks, volume.read(), voxel_size=VOXEL_SIZE, slab_size=5, engine="keras"
        )
    for path, reference in zip(paths, expected, strict=True):
        with open_volume(path) as result:
            assert result.shape == (5, 70, 54)
            assert result.voxel_size == pytest.approx(VOXEL_SIZE)
            assert result.origin == pytest.approx(ORIGIN)
            values = result.read()
        assert values.min() >= 0.0 and values.max() <= 1.0
        np.testing.assert_allclose(values, reference, atol=1e-5)
    assert not np.allclose(expected[0], expected[1]), "two different networks gave the same map"


def test_fft_engine_gives_the_keras_maps(tomogram_path, networks, tmp_path):
    with open_volume(tomogram_path) as volume:
        tomogram = volume.read()
    by_keras = segment_array(networks, tomogram, voxel_size=VOXEL_SIZE, engine="keras")
    by_fft = segment_array(networks, tomogram, voxel_size=VOXEL_SIZE, engine="fft")
    for a, b in zip(by_keras, by_fft, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_uint8_output_stores_rounded_probabilities(tomogram_path, networks, tmp_path):
    float_path, byte_path = tmp_path / "f.mrc", tmp_path / "b.mrc"
    segment_volume(networks[:1], tomogram_path, out_paths=[float_path], engine="keras")
    segment_volume(
        networks[:1], tomogram_path, out_paths=[byte_path], dtype="uint8", engine="keras"
    )
    with open_volume(float_path) as f, open_volume(byte_path) as b:
        np.testing.assert_array_equal(b.read(), np.rint(f.read() * 255))


def test_existing_output_is_refused_before_work_and_replaced_with_overwrite(
    tomogram_path, networks, tmp_path
):
    target = tmp_path / "map.mrc"
    target.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        segment_volume(networks[:1], tomogram_path, out_paths=[target])
    assert target.read_bytes() == b"keep me"
    segment_volume(networks[:1], tomogram_path, out_paths=[target], overwrite=True, engine="keras")
    with open_volume(target) as volume:
        assert volume.shape == (5, 70, 54)


def test_cancel_leaves_no_file(tomogram_path, networks, tmp_path):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        segment_volume(networks, tomogram_path, tmp_path / "out", cancel=cancel)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_same_feature_twice_is_refused(tomogram_path, tmp_path):
    with pytest.raises(BadInputError, match="same feature"):
        segment_volume([_network("membrane", 1), _network("membrane", 2)], tomogram_path, tmp_path)


def test_model_at_another_voxel_size_is_binned_or_refused():
    info = _network("membrane", 1, voxel_size=25.0).info
    with pytest.warns(UserWarning, match="binning"):
        assert input_binning(info, 12.5) == 2
    assert input_binning(info, 25.2) == 1
    with pytest.raises(BadInputError, match="resample the tomogram"):
        input_binning(info, 17.0)


def test_binned_network_output_comes_back_at_full_size(tomogram_path):
    network = _network("membrane", 1, voxel_size=2 * VOXEL_SIZE, binning=2)
    with open_volume(tomogram_path) as volume:
        (result,) = segment_array([network], volume.read(), voxel_size=VOXEL_SIZE, engine="keras")
    assert result.shape == (5, 70, 54)
    assert np.isfinite(result).all()


def _z_network(
    feature: str, z_context: int, seed: int = 3, recipe: Recipe = DEFAULT_RECIPE
) -> FeatureNetwork:
    """A tiny network with z context, its sidecar recording the config as training does."""
    from tomoseg_nb.training_config import TrainingConfig

    config = TrainingConfig(arch="tiny", z_context=z_context, recipe=recipe)
    model = build_model("tiny", seed=seed, channels=config.input_channels)
    rng = np.random.default_rng(seed)
    for weight in model.weights:  # the initial weights give near-constant maps
        weight.assign(rng.normal(0.0, 0.2, weight.shape).astype("float32"))
    info = ModelInfo(
        feature=feature,
        arch="tiny",
        voxel_size=VOXEL_SIZE,
        recipe=recipe.to_dict(),
        training={"config": config.to_dict()},
    )
    return FeatureNetwork(model, info)


def test_z_context_travels_with_the_saved_model(tmp_path):
    """Saved with the model, read back at load time; a sidecar without it is a 2D network."""
    import json

    from tomoseg_nb.model_files import sidecar_path, sidecar_z_context
    from tomoseg_nb.models import load_model, save_model

    network = _z_network("membrane", 2)
    path = save_model(network.model, network.info, tmp_path / "membrane.keras")
    assert sidecar_z_context(path) == 2
    loaded = FeatureNetwork.load(path)
    assert loaded.z_context == 2 and loaded.model.input_shape[-1] == 5
    # an older sidecar (no z_context in the recorded config) loads as z context 0
    plain = _network("ribosome", 1)
    old = save_model(plain.model, plain.info, tmp_path / "ribosome.keras")
    data = json.loads(sidecar_path(old).read_text())
    data["training"] = {"config": {"arch": "tiny", "epochs": 20}}
    sidecar_path(old).write_text(json.dumps(data))
    assert FeatureNetwork.load(old).z_context == 0 and sidecar_z_context(old) == 0
    # a sidecar whose z context does not fit the network is refused
    data["training"]["config"]["z_context"] = 1
    sidecar_path(old).write_text(json.dumps(data))
    with pytest.raises(BadInputError, match=r"1 input channel.*z context 1"):
        load_model(old)


def test_saved_z_context_model_segments_with_its_neighbouring_slices(tomogram_path, tmp_path):
    """``segment`` reads z context from the sidecar: each slice is fed with its preprocessed,
    mirrored neighbours, slab boundaries or not; Keras and the FFT engine agree."""
    from tomoseg_nb.models import save_model
    from tomoseg_nb.preprocess import context_indices, preprocess_slice, upsample_to

    network = _z_network("membrane", 2)
    path = save_model(network.model, network.info, tmp_path / "membrane.keras")
    (keras_map,) = segment_volume(
        [path], tomogram_path, tmp_path / "k", slab_size=2, engine="keras"
    )
    (fft_map,) = segment_volume([path], tomogram_path, tmp_path / "f", slab_size=3, engine="fft")
    with open_volume(tomogram_path) as volume:
        data = volume.read()
    prepared = [preprocess_slice(image) for image in data]
    expected = []
    for z in range(len(data)):
        stack = np.stack([prepared[i] for i in context_indices(z, 2, len(data))], axis=-1)
        raw = network.model.predict(stack[None], verbose=0)[0, ..., 0]
        expected.append(upsample_to(np.clip(raw, 0, 1)[None], 2, data.shape[1:])[0])
    with open_volume(keras_map) as k, open_volume(fft_map) as f:
        np.testing.assert_allclose(k.read(), np.stack(expected), atol=2e-5)
        np.testing.assert_allclose(f.read(), k.read(), atol=2e-4)
    in_memory = segment_array([path, _network("ribosome", 1)], data, voxel_size=VOXEL_SIZE)
    np.testing.assert_allclose(in_memory[0], np.stack(expected), atol=2e-4)
    (single,) = segment_array([network], data[2], voxel_size=VOXEL_SIZE, engine="keras")
    assert single.shape == data.shape[1:] and np.isfinite(single).all()


def test_extra_lowpass_channels_travel_with_the_saved_model(tomogram_path, tmp_path):
    """A network of two filterings per slice and z context 1 (6 channels): saved and loaded, fed
    by ``segment`` with the stacks its tiles had; Keras and the FFT engine agree; a sidecar that
    forgets the extra lowpass no longer fits the network and is refused."""
    import json

    from tomoseg_nb.model_files import sidecar_path
    from tomoseg_nb.models import load_model, save_model
    from tomoseg_nb.preprocess import preprocess_slab, stack_z_context, upsample_to, z_window

    recipe = Recipe(extra_lowpass=(0.0,))
    network = _z_network("membrane", 1, recipe=recipe)
    path = save_model(network.model, network.info, tmp_path / "membrane.keras")
    loaded = FeatureNetwork.load(path)
    assert Recipe.from_dict(loaded.info.recipe) == recipe and loaded.model.input_shape[-1] == 6
    (keras_map,) = segment_volume(
        [path], tomogram_path, tmp_path / "k", slab_size=2, engine="keras"
    )
    (fft_map,) = segment_volume([path], tomogram_path, tmp_path / "f", slab_size=3, engine="fft")
    with open_volume(tomogram_path) as volume:
        data = volume.read()
    stacks = stack_z_context(preprocess_slab(data[z_window(0, len(data), 1, len(data))], recipe), 1)
    raw = network.model.predict(stacks, verbose=0)[..., 0]
    expected = upsample_to(np.clip(raw, 0, 1), 2, data.shape[1:])
    with open_volume(keras_map) as k, open_volume(fft_map) as f:
        np.testing.assert_allclose(k.read(), expected, atol=2e-5)
        np.testing.assert_allclose(f.read(), k.read(), atol=2e-4)
    data_json = json.loads(sidecar_path(path).read_text())
    data_json["recipe"]["extra_lowpass"] = []
    sidecar_path(path).write_text(json.dumps(data_json))
    with pytest.raises(BadInputError, match=r"6 input channel.*1 channel\(s\) per slice"):
        load_model(path)


def test_slices_without_the_neighbours_a_network_needs_are_refused(tomogram_path):
    from tomoseg_nb.segment import probability_slices

    with open_volume(tomogram_path) as volume:
        slab = volume.slab(0, 3)
    with pytest.raises(BadInputError, match=r"trained with z context 1.*only 0 were given"):
        probability_slices([_z_network("membrane", 1)], slab, voxel_size=VOXEL_SIZE)
    (maps,) = probability_slices(
        [_z_network("membrane", 1)], slab, voxel_size=VOXEL_SIZE, context=1, engine="keras"
    )
    assert maps.shape == (1, *slab.shape[1:])
