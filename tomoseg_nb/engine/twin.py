"""Train a Conv2D network through its spectral twin: same weights, Fourier-domain convolutions.

``as_fft_model(model)`` builds a twin whose ``SpectralConv2D`` layers hold the model's weights;
train the twin with ``model.fit`` as usual, then ``copy_weights(twin, model)`` and save the plain
Conv2D model, so saved networks never depend on the engine.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadInputError
from .network import describe_network
from .spectral_layers import SpatialMaxPooling2D, SpectralConv2D, ToBatchMajor, ToSpatialMajor


def as_fft_model(model: Any) -> Any:
    """A trainable twin of ``model`` computing its convolutions by DFT, with ``model``'s weights.

    Parameters
    ----------
    model : keras.Model
        A sequential stack of Conv2D ("same"), MaxPooling2D and ReLU layers (see
        ``engine.network``).

    Returns
    -------
    keras.Model
        Same input and output shapes and the same outputs (to float32 rounding); its weighted
        layers are ``SpectralConv2D`` in the order of ``model``'s ``Conv2D`` layers.

    Examples
    --------
    >>> from tomoseg_nb.models import build_model
    >>> model = build_model("tiny", seed=0)
    >>> twin = as_fft_model(model)
    >>> [layer.name for layer in twin.layers if layer.weights] == [
    ...     layer.name for layer in model.layers if layer.weights]
    True
    """
    import keras

    describe_network(model)  # refuses unsupported layers with a clear message
    inputs = keras.Input(shape=model.input_shape[1:], name="slice")
    x = ToSpatialMajor(name="to_spatial_major")(inputs)
    for layer in model.layers:
        config = layer.get_config()
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.layers.Conv2D):
            x = SpectralConv2D(
                config["filters"],
                tuple(config["kernel_size"]),
                activation=config["activation"],
                use_bias=config["use_bias"],
                kernel_initializer=config["kernel_initializer"],
                bias_initializer=config["bias_initializer"],
                name=layer.name,
            )(x)
        elif isinstance(layer, keras.layers.MaxPooling2D):
            x = SpatialMaxPooling2D(config["pool_size"][0], name=layer.name)(x)
        else:  # ReLU / Activation: elementwise, layout-free
            x = type(layer).from_config(config)(x)
    twin = keras.Model(inputs, ToBatchMajor(name="to_batch_major")(x), name=f"{model.name}_fft")
    copy_weights(model, twin)
    return twin


def copy_weights(source: Any, destination: Any) -> None:
    """Copy kernels and biases layer by layer between a Conv2D model and its spectral twin.

    Works in both directions (and between two models of the same architecture).

    Raises
    ------
    BadInputError
        When the two models' weighted layers do not correspond.
    """
    sources = [layer for layer in source.layers if layer.weights]
    destinations = [layer for layer in destination.layers if layer.weights]
    shapes = [[tuple(w.shape) for w in layer.weights] for layer in sources]
    if shapes != [[tuple(w.shape) for w in layer.weights] for layer in destinations]:
        raise BadInputError(
            f"cannot copy weights from {source.name!r} to {destination.name!r}: their layers "
            "differ; copy between a model and its own as_fft_model twin"
        )
    for a, b in zip(sources, destinations, strict=True):
        b.set_weights(a.get_weights())
