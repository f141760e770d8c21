"""The convolution engine equals Keras Conv2D: FFT inference, tiling, spectral training twin."""

import keras
import numpy as np
import pytest
from keras import layers

from tomoseg_nb.engine import (
    as_fft_model,
    choose_engine,
    copy_weights,
    fft_inference,
    predict_slices,
)
from tomoseg_nb.engine.network import describe_network
from tomoseg_nb.engine.tiling import plan_axis
from tomoseg_nb.errors import BadInputError
from tomoseg_nb.models import build_model
from tomoseg_nb.preprocess import Recipe, preprocess_slab, stack_z_context, z_window

TOLERANCE = 1e-4  # relative to the output's largest magnitude, float32


def _randomise(model, seed=0, scale=0.05):
    """Random weights and biases: the built-in initialisers give near-zero outputs."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0.0, scale, weight.shape).astype("float32"))
    return model


def _reference(model, slices, stride):
    """Keras's own whole-slice predict on the slices zero-padded to a multiple of the stride."""
    n, h, w = slices.shape
    padded = np.zeros((n, -(-h // stride) * stride, -(-w // stride) * stride), np.float32)
    padded[:, :h, :w] = slices
    return model.predict(padded[..., None], verbose=0)[..., 0]


def _numpy(tensor) -> np.ndarray:
    """A backend tensor as a host array (a torch tensor on a GPU refuses ``np.asarray``)."""
    return keras.ops.convert_to_numpy(tensor)


def _relative(a, b):
    assert a.shape == b.shape
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def eman2():
    return _randomise(build_model("eman2", seed=0))


@pytest.fixture(scope="module")
def odd_network():
    """Even and rectangular kernels, ReLU layers with options, two pools (stride 4)."""
    model = keras.Sequential(
        [
            keras.Input((None, None, 1)),
            layers.Conv2D(6, 4, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(5, (3, 6), padding="same"),
            layers.ReLU(max_value=0.4),
            layers.MaxPooling2D(2),
            layers.Conv2D(4, 5, padding="same", use_bias=False),
            layers.Activation("relu"),
            layers.Conv2D(1, 1, padding="same"),
        ]
    )
    return _randomise(model, seed=3, scale=0.3)


@pytest.fixture(scope="module")
def slices():
    rng = np.random.default_rng(1)
    return rng.normal(size=(2, 300, 301)).astype(np.float32)


@pytest.mark.parametrize("shape", [(2, 64, 64), (1, 67, 50), (1, 33, 91), (1, 130, 1)])
def test_fft_engine_equals_keras_predict(eman2, shape):
    slices = np.random.default_rng(sum(shape)).normal(size=shape).astype(np.float32)
    reference = _reference(eman2, slices, 2)
    (fft,) = predict_slices([eman2], slices, engine="fft")
    (direct,) = predict_slices(eman2, slices, engine="keras")
    assert fft.shape == (shape[0], -(-shape[1] // 2), -(-shape[2] // 2))
    assert _relative(fft, reference) < TOLERANCE
    assert _relative(direct, reference) < TOLERANCE


def test_tiles_equal_whole_slice(eman2, slices):
    reference = _reference(eman2, slices, 2)
    for engine in ("fft", "keras"):
        (tiled,) = predict_slices(eman2, slices, engine=engine, tile_px=160, batch_size=3)
        assert _relative(tiled, reference) < TOLERANCE, engine


def test_many_overlap_save_blocks_per_layer(eman2, slices, monkeypatch):
    monkeypatch.setattr(fft_inference, "MAX_FFT_PX", 48)  # 34-pixel blocks, 9 x 9 per layer
    monkeypatch.setattr(fft_inference, "WORK_BYTES", 1)  # mixing layers: one block per batch
    monkeypatch.setattr(fft_inference, "PAIR_BYTES", 1)  # first layer: one channel pair per pass
    (fft,) = predict_slices(eman2, slices[:1, :200, :150], engine="fft")
    assert _relative(fft, _reference(eman2, slices[:1, :200, :150], 2)) < TOLERANCE


def test_reused_work_arrays_keep_their_zero_padding(eman2, slices):
    """Work arrays are kept between calls: a second input of the same shape sees no stale data."""
    predict_slices(eman2, slices[:, :70, :90] * 50.0, engine="fft")
    (fft,) = predict_slices(eman2, slices[:, 100:170, :90], engine="fft")
    assert _relative(fft, _reference(eman2, slices[:, 100:170, :90], 2)) < TOLERANCE


@pytest.mark.parametrize(
    "first",
    [
        # odd channel count (the last channel pair is half empty), no pool after the layer
        [layers.Conv2D(3, 5, padding="same", activation="relu")],
        # odd channel count, a clipped ReLU before the pool: the general finishing path
        [layers.Conv2D(5, 7, padding="same"), layers.ReLU(max_value=0.3), layers.MaxPooling2D(2)],
    ],
    ids=["odd-no-pool", "odd-relu-then-pool"],
)
def test_first_layer_variants(first, slices):
    model = keras.Sequential(
        [keras.Input((None, None, 1)), *first, layers.Conv2D(1, 3, padding="same")]
    )
    _randomise(model, seed=9, scale=0.2)
    stride = 2 if any(isinstance(layer, layers.MaxPooling2D) for layer in first) else 1
    part = slices[:, :61, :83]
    (fft,) = predict_slices(model, part, engine="fft")
    assert _relative(fft, _reference(model, part, stride)) < TOLERANCE


def test_other_layer_stacks(odd_network, slices):
    part = slices[:, :97, :203]
    reference = _reference(odd_network, part, 4)
    (whole,) = predict_slices(odd_network, part, engine="fft")
    (tiled,) = predict_slices(odd_network, part, engine="fft", tile_px=72)
    assert whole.shape == (2, 25, 51)
    assert _relative(whole, reference) < TOLERANCE
    assert _relative(tiled, reference) < TOLERANCE


def test_models_of_different_strides_together(eman2, odd_network, slices):
    part = slices[:1, :90, :70]
    fft = predict_slices([eman2, odd_network, eman2], part, engine="fft")
    assert [m.shape for m in fft] == [(1, 45, 35), (1, 23, 18), (1, 45, 35)]
    assert _relative(fft[0], _reference(eman2, part, 2)) < TOLERANCE
    assert _relative(fft[1], _reference(odd_network, part, 4)) < TOLERANCE
    np.testing.assert_array_equal(fft[0], fft[2])


def test_input_transform_is_shared_only_when_the_input_is_the_same(eman2, slices):
    leading_relu = keras.Sequential(
        [
            keras.Input((None, None, 1)),
            layers.ReLU(),  # its first convolution sees relu(slice), not the slice
            layers.Conv2D(4, 15, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(1, 3, padding="same"),
        ]
    )
    _randomise(leading_relu, seed=4)
    part = slices[:1, :80, :60]
    fft = predict_slices([eman2, leading_relu], part, engine="fft")
    assert _relative(fft[0], _reference(eman2, part, 2)) < TOLERANCE
    assert _relative(fft[1], _reference(leading_relu, part, 2)) < TOLERANCE


def test_cached_kernel_spectra_follow_new_weights(slices):
    model = _randomise(build_model("tiny", seed=0), seed=5)
    part = slices[:1, :64, :64]
    predict_slices(model, part, engine="fft")
    _randomise(model, seed=6)
    (fft,) = predict_slices(model, part, engine="fft")
    assert _relative(fft, _reference(model, part, 2)) < TOLERANCE


def test_tile_plan_covers_each_pixel_once_on_the_pooling_grid():
    for length in (64, 130, 1000, 1022):
        plan = plan_axis(length, tile_px=256, margin_px=36, stride=2)
        covered = np.zeros(length, int)
        for start, (begin, end) in zip(plan.starts, plan.cores, strict=True):
            covered[begin:end] += 1
            assert start % 2 == 0 and 0 <= start <= length - plan.size
            assert begin == 0 or begin - start >= 36  # context before, unless at the edge
            assert end == length or start + plan.size - end >= 36
        assert (covered == 1).all() and plan.size <= 256
    with pytest.raises(BadInputError, match="tile_px"):
        plan_axis(1000, tile_px=100, margin_px=36, stride=2)


def test_network_description():
    network = describe_network(build_model("eman2", seed=0))
    assert network.stride == 2
    assert network.margin_px == 36  # 7 + 1 + 2 * 7 + 2 * 7 px, on the pooling grid
    assert [conv.channels for conv in network.convolutions] == [(1, 40), (40, 40), (40, 1)]


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (layers.Conv2D(1, 3, strides=2, padding="same"), "strides"),
        (layers.Conv2D(1, 3, dilation_rate=2, padding="same"), "dilation"),
        (layers.Conv2D(1, 3, padding="valid"), "padding"),
        (layers.Conv2D(1, 3, padding="same", activation="sigmoid"), "activation"),
        (layers.BatchNormalization(), "BatchNormalization"),
        (layers.AveragePooling2D(2), "AveragePooling2D"),
    ],
)
def test_unsupported_layers_are_refused(layer, message):
    model = keras.Sequential([keras.Input((None, None, 1)), layer, layers.Conv2D(1, 3)])
    with pytest.raises(BadInputError, match=message):
        predict_slices(model, np.zeros((1, 16, 16), np.float32), engine="fft")
    with pytest.raises(BadInputError, match=message):
        as_fft_model(model)
    assert choose_engine(model, device="cpu") == "keras"


def test_bad_inputs_are_refused(eman2):
    with pytest.raises(BadInputError, match=r"\(n, y, x\)"):
        predict_slices(eman2, np.zeros((16, 16), np.float32))
    with pytest.raises(BadInputError, match="NaN"):
        predict_slices(eman2, np.full((1, 16, 16), np.nan, np.float32))
    with pytest.raises(BadInputError, match="engine"):
        predict_slices(eman2, np.zeros((1, 16, 16), np.float32), engine="cuda")
    two_channels = keras.Sequential(
        [keras.Input((None, None, 2)), layers.Conv2D(1, 3, padding="same")]
    )
    with pytest.raises(BadInputError, match="takes 2 input channel"):
        predict_slices(two_channels, np.zeros((1, 16, 16), np.float32), engine="fft")
    with pytest.raises(BadInputError, match="takes 1 input channel"):
        predict_slices(eman2, np.zeros((1, 16, 16, 3), np.float32), engine="fft")
    two_outputs = keras.Sequential(
        [keras.Input((None, None, 1)), layers.Conv2D(2, 3, padding="same")]
    )
    with pytest.raises(BadInputError, match="one output channel"):
        predict_slices(two_outputs, np.zeros((1, 16, 16), np.float32), engine="fft")


def test_choose_engine():
    small = keras.Sequential(
        [keras.Input((None, None, 1)), layers.Conv2D(8, 3, padding="same"), layers.Conv2D(1, 3)]
    )
    assert choose_engine(build_model("eman2", seed=0), device="cpu") == "fft"
    assert choose_engine([build_model("eman2", seed=0)], device="gpu") == "keras"
    assert choose_engine([small], device="cpu") == "keras"
    fast = build_model("fast", seed=0)  # 7 x 7 kernels: FFT to apply, Keras to train
    assert choose_engine(fast, device="cpu") == "fft"
    assert choose_engine(fast, device="cpu", purpose="train") == "keras"
    assert choose_engine(build_model("eman2", seed=0), device="cpu", purpose="train") == "fft"
    assert choose_engine(build_model("eman2", seed=0)) in ("fft", "keras")
    with pytest.raises(BadInputError, match="device"):
        choose_engine(small, device="tpu9")
    with pytest.raises(BadInputError, match="purpose"):
        choose_engine(small, device="cpu", purpose="fun")


def _sgd_step(model, x, y):
    """Weight change of one plain SGD step: -lr * gradient, on any Keras backend."""
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    before = [_numpy(w).copy() for w in model.trainable_weights]
    model.train_on_batch(x, y)
    return [_numpy(w) - b for w, b in zip(model.trainable_weights, before, strict=True)]


@pytest.mark.parametrize("arch", ["eman2", "odd"])
def test_spectral_twin_forward_and_gradients_equal_conv2d(arch, eman2, odd_network):
    model = keras.models.clone_model(eman2 if arch == "eman2" else odd_network)
    copy_weights(eman2 if arch == "eman2" else odd_network, model)
    twin = as_fft_model(model)
    stride = 2 if arch == "eman2" else 4
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 12 * stride, 9 * stride, 1)).astype(np.float32)
    y = rng.random((3, 12, 9, 1)).astype(np.float32)
    assert _relative(_numpy(twin(x)), _numpy(model(x))) < TOLERANCE
    steps = _sgd_step(model, x, y), _sgd_step(twin, x, y)
    assert len(steps[0]) == len(steps[1]) == len(model.trainable_weights)
    for direct, spectral in zip(*steps, strict=True):
        assert np.abs(direct).max() > 0
        assert _relative(spectral, direct) < TOLERANCE


def test_twin_trains_and_copies_back_to_conv2d(eman2):
    model = keras.models.clone_model(eman2)
    twin = as_fft_model(model)
    kinds = [type(layer).__name__ for layer in twin.layers if layer.weights]
    assert kinds == ["SpectralConv2D"] * 3
    rng = np.random.default_rng(8)
    x = rng.normal(size=(8, 32, 32, 1)).astype(np.float32)
    y = (rng.random((8, 16, 16, 1)) < 0.5).astype(np.float32)
    twin.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    history = twin.fit(x, y, batch_size=4, epochs=3, verbose=0).history["loss"]
    assert history[-1] < history[0]
    copy_weights(twin, model)
    assert _relative(_numpy(model(x)), _numpy(twin(x))) < TOLERANCE
    with pytest.raises(BadInputError, match="differ"):
        copy_weights(build_model("tiny", seed=0), model)


def _context_stack(volume: np.ndarray, z_context: int, recipe: Recipe) -> np.ndarray:
    """Each slice of ``volume``, preprocessed, with its mirrored neighbours as channels, as
    ``segment`` does."""
    window = volume[z_window(0, len(volume), z_context, len(volume))]
    return stack_z_context(preprocess_slab(window, recipe), z_context)


@pytest.mark.parametrize(
    ("arch", "z_context", "extra_lowpass"),
    [
        ("eman2", 1, ()),
        ("fast", 2, ()),
        ("tiny", 1, ()),
        ("fast", 1, (0.0,)),
        ("tiny", 0, (0.0, 0.4)),
    ],
)
def test_fft_engine_equals_keras_for_z_context_networks(arch, z_context, extra_lowpass):
    """A network with z context or extra lowpass channels has a multi-channel first layer; FFT
    and tiles must still equal Keras's whole-slice predict on the same (n, y, x, c) stacks of a
    random volume, preprocessed as ``segment`` does."""
    recipe = Recipe(extra_lowpass=extra_lowpass)
    channels = (2 * z_context + 1) * recipe.channels_per_slice
    model = _randomise(build_model(arch, seed=0, channels=channels), seed=4)
    volume = np.random.default_rng(5).normal(size=(3, 131, 120)).astype(np.float32)
    stacks = _context_stack(volume, z_context, recipe)
    assert stacks.shape == (3, 131, 120, channels)
    padded = np.zeros((3, 132, 120, channels), np.float32)
    padded[:, :131] = stacks
    reference = model.predict(padded, verbose=0)[..., 0]
    network = describe_network(model)
    assert network.in_channels == channels
    tile_px = 3 * network.margin_px  # smaller than the slice: several overlapping tiles
    for engine in ("fft", "keras"):
        (whole,) = predict_slices(model, stacks, engine=engine)
        assert whole.shape == (3, 66, 60)
        assert _relative(whole, reference) < TOLERANCE, engine
        (tiled,) = predict_slices(model, stacks, engine=engine, tile_px=tile_px, batch_size=5)
        assert _relative(tiled, reference) < TOLERANCE, engine
    twin = as_fft_model(model)
    assert _relative(_numpy(twin(padded[:2])), _numpy(model(padded[:2]))) < TOLERANCE
