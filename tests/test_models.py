"""Network builders, the EMAN2 loss, geometry helpers, and saving with the JSON sidecar."""

import json

import keras
import numpy as np
import pytest

from tomoseg_nb.errors import BadInputError, MissingInputError, OutputExistsError
from tomoseg_nb.models import (
    ARCHITECTURES,
    DEFAULT_ARCH,
    IGNORE,
    ModelInfo,
    build_model,
    eman2_loss,
    load_model,
    output_stride,
    probability,
    receptive_field,
    save_model,
    sidecar_path,
)
from tomoseg_nb.preprocess import Recipe


def test_eman2_network_is_exactly_the_seed():
    model = build_model("eman2", seed=0)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert [c.filters for c in convs] == [40, 40, 1]
    assert all(tuple(c.kernel_size) == (15, 15) and c.padding == "same" for c in convs)
    assert [c.activation.__name__ for c in convs] == ["relu", "relu", "linear"]
    assert [type(layer).__name__ for layer in model.layers[1:]] == [
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "Conv2D",
    ]
    assert len(pools) == 1 and tuple(pools[0].pool_size) == (2, 2)
    for conv in convs:
        init = conv.kernel_initializer
        assert isinstance(init, keras.initializers.TruncatedNormal) and init.stddev == 0.01
        assert not np.any(keras.ops.convert_to_numpy(conv.bias))
        kernel = keras.ops.convert_to_numpy(conv.kernel)
        # Truncated at 2 sigma (std 0.88 sigma). Keras' torch backend redraws at most 4 times,
        # so a few in a million values may lie beyond.
        assert np.mean(np.abs(kernel) > 0.02 + 1e-6) < 1e-4
        assert 0.0080 < kernel.std() < 0.0096
    assert model.input_shape == (None, None, None, 1)
    assert model.predict(np.zeros((1, 64, 48, 1)), verbose=0).shape == (1, 32, 24, 1)
    assert DEFAULT_ARCH in ARCHITECTURES


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_architectures_use_only_engine_friendly_layers(arch):
    model = build_model(arch, seed=1)
    allowed = (keras.layers.InputLayer, keras.layers.Conv2D, keras.layers.MaxPooling2D)
    assert all(isinstance(layer, allowed) for layer in model.layers)
    assert output_stride(model) == 2
    again = build_model(arch, seed=1)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert ARCHITECTURES[arch].learning_rate > 0 and ARCHITECTURES[arch].description


def test_receptive_fields():
    assert receptive_field(build_model("eman2")) == 72
    assert receptive_field(build_model("fast")) == 44
    assert receptive_field(build_model("tiny")) == 22


def test_receptive_field_bounds_what_an_output_pixel_sees():
    """Changing every input pixel outside the field leaves the centre output unchanged."""
    model = build_model("tiny", seed=2)
    field_px = receptive_field(model)
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 96, 96, 1)).astype(np.float32)
    centre = 48  # output pixel 24 covers input pixels 48 and 49

    def changed_outside(half_width):
        other = rng.normal(size=image.shape).astype(np.float32)
        lo, hi = centre - half_width, centre + 2 + half_width
        other[:, lo:hi, lo:hi] = image[:, lo:hi, lo:hi]
        a = model.predict(image, verbose=0)[0, 24, 24, 0]
        b = model.predict(other, verbose=0)[0, 24, 24, 0]
        return not np.isclose(a, b, rtol=0, atol=1e-6)

    assert not changed_outside(field_px // 2)
    assert changed_outside(field_px // 2 - 4)


def test_unknown_architecture():
    with pytest.raises(BadInputError, match=r"unknown architecture 'resnet'.*eman2"):
        build_model("resnet")


def test_eman2_loss_value_and_registration():
    y = np.array([[0.0, 1.0]], np.float32)
    yhat = np.array([[0.5, 2.0]], np.float32)  # 2 counts as 1: no penalty above 1
    loss = float(keras.ops.convert_to_numpy(eman2_loss(y, yhat)))
    assert loss == pytest.approx(np.log(0.125), rel=1e-5)
    assert keras.saving.get_registered_object("tomoseg_nb>eman2_loss") is eman2_loss


def test_eman2_loss_leaves_ignored_pixels_out():
    y = np.array([[0.0, 1.0, IGNORE, IGNORE]], np.float32)
    yhat = np.array([[0.5, 2.0, 0.9, -3.0]], np.float32)  # ignored pixels: no matter how wrong
    loss = float(keras.ops.convert_to_numpy(eman2_loss(y, yhat)))
    assert loss == pytest.approx(np.log(0.125), rel=1e-5)
    everything_ignored = np.full((1, 4), IGNORE, np.float32)
    assert np.isfinite(float(keras.ops.convert_to_numpy(eman2_loss(everything_ignored, yhat))))


def test_probability_clips():
    np.testing.assert_array_equal(probability([-0.5, 0.25, 1.7]), np.float32([0, 0.25, 1]))
    assert probability([[1.0]]).dtype == np.float32


def _info(**changes):
    values = {
        "feature": "membrane",
        "arch": "tiny",
        "voxel_size": 10.0,
        "recipe": Recipe().to_dict(),
        "threshold": 0.45,
        "history": {"loss": [-1.0, -2.0]},
    }
    return ModelInfo(**{**values, **changes})


def test_save_and_load_round_trip(tmp_path):
    model = build_model("tiny", seed=3)
    model.compile(optimizer="adam", loss=eman2_loss)
    path = save_model(model, _info(), tmp_path / "membrane.keras")
    assert sidecar_path(path).is_file()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    loaded, info = load_model(path)
    assert info == _info(created=info.created, versions=info.versions)
    assert info.versions["keras"] == keras.__version__
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["format"] == "tomoseg_nb.model" and sidecar["format_version"] == 1
    assert sidecar["recipe"]["highpass_px"] == 5.0
    with pytest.raises(OutputExistsError):
        save_model(model, _info(), path)
    save_model(model, _info(threshold=0.6), path, overwrite=True)
    assert load_model(path)[1].threshold == 0.6


def test_load_refuses_foreign_and_incomplete_models(tmp_path):
    model = build_model("tiny", seed=3)
    with pytest.raises(MissingInputError):
        load_model(tmp_path / "absent.keras")
    with pytest.raises(BadInputError, match=r"\.keras"):
        save_model(model, _info(), tmp_path / "model.h5")

    bare = tmp_path / "bare.keras"
    model.save(bare)
    with pytest.raises(BadInputError, match=r"sidecar bare\.json is missing"):
        load_model(bare)

    path = save_model(model, _info(), tmp_path / "m.keras")
    sidecar = sidecar_path(path)
    good = sidecar.read_text()
    for text, message in [
        ("{broken", "not readable JSON"),
        ('{"format": "other"}', "not a tomoseg_nb model sidecar"),
        (good.replace('"format_version": 1', '"format_version": 7'), "format version 7"),
        (good.replace('"feature": "membrane"', '"feature": ""'), "lacks a feature"),
        (good.replace('"output_stride": 2', '"output_stride": 4'), "do not belong together"),
    ]:
        sidecar.write_text(text)
        with pytest.raises(BadInputError, match=message):
            load_model(path)
    sidecar.write_text(good)
    path.write_bytes(b"not a zip archive")
    with pytest.raises(BadInputError, match="not a loadable Keras model"):
        load_model(path)
