"""Read a Keras network as the plain layer stack the engine runs: convolutions, max-pools, ReLUs.

The engine supports any sequential stack of ``Conv2D`` ("same" padding, stride 1, no dilation,
linear or ReLU activation), ``MaxPooling2D`` (square pool, stride equal to the pool, "valid"
padding), ``ReLU`` and ``Activation("relu" | "linear")`` layers, channels last, one output
channel, and one input channel or several (a network with z context takes ``2k + 1`` slices).
Anything else is refused with a message naming the layer, because running
it by FFT or in tiles would silently give a different answer.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BadInputError


@dataclass(frozen=True)
class Conv:
    """A "same" cross-correlation ``y = sum(x * kernel) + bias``, optionally followed by a ReLU.

    ``kernel`` has the ``Conv2D`` layout ``(kh, kw, cin, cout)``. Keras pads ``(k - 1) // 2``
    pixels before and the rest after, which matters for even kernels.
    """

    name: str
    kernel: np.ndarray
    bias: np.ndarray
    relu: bool

    @property
    def size(self) -> tuple[int, int]:
        return int(self.kernel.shape[0]), int(self.kernel.shape[1])

    @property
    def channels(self) -> tuple[int, int]:
        return int(self.kernel.shape[2]), int(self.kernel.shape[3])

    @property
    def pad_before(self) -> tuple[int, int]:
        ky, kx = self.size
        return (ky - 1) // 2, (kx - 1) // 2

    @property
    def reach(self) -> int:
        """How far (in this layer's pixels, either side) an output depends on its input."""
        return max(max(k - 1 - (k - 1) // 2, (k - 1) // 2) for k in self.size)


@dataclass(frozen=True)
class Pool:
    """Max-pool over ``size x size`` windows with stride ``size``, dropping incomplete windows."""

    name: str
    size: int


@dataclass(frozen=True)
class Relu:
    """Keras ``ReLU``: ``max_value`` above it, ``slope * (x - threshold)`` below ``threshold``."""

    name: str
    negative_slope: float = 0.0
    max_value: float | None = None
    threshold: float = 0.0

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Apply in place on a float32 array (returned for chaining)."""
        if self.negative_slope == 0.0 and self.threshold == 0.0:
            np.maximum(x, 0.0, out=x)
        else:
            below = x < self.threshold
            x[below] = (self.negative_slope * (x[below] - self.threshold)).astype(x.dtype)
        if self.max_value is not None:
            np.minimum(x, np.float32(self.max_value), out=x)
        return x


Step = Conv | Pool | Relu


@dataclass(frozen=True)
class Network:
    """A model as the engine sees it.

    Attributes
    ----------
    steps : tuple of Conv, Pool, Relu
        The layers in order.
    stride : int
        Input pixels per output pixel (product of the pool sizes).
    margin_px : int
        Input pixels either side that one output pixel depends on (enough overlap for tiles).
    fingerprint : str
        Digest of the weights, so cached kernel spectra are never reused after training.
    """

    steps: tuple[Step, ...]
    stride: int
    margin_px: int
    fingerprint: str

    @property
    def convolutions(self) -> list[Conv]:
        return [step for step in self.steps if isinstance(step, Conv)]

    @property
    def in_channels(self) -> int:
        """Input channels: 1, or ``2k + 1`` slices for a network with z context ``k``."""
        return self.convolutions[0].channels[0]


def _conv_step(layer: Any) -> Conv:
    config = layer.get_config()
    problems = []
    if tuple(config["strides"]) != (1, 1):
        problems.append(f"strides {tuple(config['strides'])} (only 1 is supported)")
    if tuple(config["dilation_rate"]) != (1, 1):
        problems.append(f"dilation {tuple(config['dilation_rate'])} (only 1 is supported)")
    if config["padding"] != "same":
        problems.append(f"padding {config['padding']!r} (only 'same' keeps the slice size)")
    if config.get("groups", 1) != 1:
        problems.append(f"groups={config['groups']} (only 1 is supported)")
    if config.get("data_format", "channels_last") != "channels_last":
        problems.append("channels_first data format (use channels_last)")
    activation = config["activation"]
    if activation not in ("relu", "linear"):
        problems.append(f"activation {activation!r} (only 'relu' or 'linear')")
    if problems:
        raise BadInputError(
            f"layer {layer.name!r} cannot run in the convolution engine: {'; '.join(problems)}; "
            "rebuild the network from supported layers or use a plain Keras model.predict"
        )
    weights = layer.get_weights()
    kernel = np.ascontiguousarray(weights[0], dtype=np.float32)
    bias = (
        np.asarray(weights[1], dtype=np.float32)
        if len(weights) > 1
        else np.zeros(kernel.shape[-1], np.float32)
    )
    return Conv(layer.name, kernel, bias, activation == "relu")


def _pool_step(layer: Any) -> Pool:
    config = layer.get_config()
    size = tuple(config["pool_size"])
    strides = tuple(config["strides"] or size)
    if (
        size[0] != size[1]
        or strides != size
        or config["padding"] != "valid"
        or config.get("data_format", "channels_last") != "channels_last"
    ):
        raise BadInputError(
            f"layer {layer.name!r}: the engine runs square max-pools with stride equal to the pool "
            f"size and 'valid' padding, channels last; got pool {size}, strides {strides}, "
            f"padding {config['padding']!r}"
        )
    return Pool(layer.name, int(size[0]))


def describe_network(model: Any) -> Network:
    """The engine's view of a Keras model, with the weights copied out as float32 numpy arrays.

    Parameters
    ----------
    model : keras.Model
        A sequential stack of Conv2D / MaxPooling2D / ReLU layers, one output channel.

    Raises
    ------
    BadInputError
        For any other layer type or setting, naming the layer.
    """
    import keras

    steps: list[Step] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.layers.Conv2D) and type(layer).__name__ == "Conv2D":
            steps.append(_conv_step(layer))
        elif isinstance(layer, keras.layers.MaxPooling2D):
            steps.append(_pool_step(layer))
        elif isinstance(layer, keras.layers.ReLU):
            config = layer.get_config()
            steps.append(
                Relu(
                    layer.name,
                    float(config["negative_slope"]),
                    None if config["max_value"] is None else float(config["max_value"]),
                    float(config["threshold"]),
                )
            )
        elif isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] in (
            "relu",
            "linear",
        ):
            if layer.get_config()["activation"] == "relu":
                steps.append(Relu(layer.name))
        else:
            raise BadInputError(
                f"layer {layer.name!r} ({type(layer).__name__}) cannot run in the convolution "
                "engine, which supports Conv2D, MaxPooling2D and ReLU layers only; use a plain "
                "Keras model.predict for this network"
            )
    return _network(steps)


def _network(steps: list[Step]) -> Network:
    convolutions = [step for step in steps if isinstance(step, Conv)]
    if not convolutions:
        raise BadInputError("the network has no Conv2D layer; nothing for the engine to run")
    channels = (convolutions[0].channels[0], convolutions[-1].channels[1])
    if channels[1] != 1:
        raise BadInputError(
            f"the engine applies networks with one output channel; this one has "
            f"{channels[0]} in and {channels[1]} out"
        )
    for before, after in itertools.pairwise(convolutions):
        if after.channels[0] != before.channels[1]:
            raise BadInputError(
                f"layer {after.name!r} expects {after.channels[0]} input channels but receives "
                f"{before.channels[1]}; the engine needs a simple sequential stack"
            )
    stride, margin = 1, 0
    digest = hashlib.blake2b(digest_size=16)
    for step in steps:
        if isinstance(step, Conv):
            margin += step.reach * stride
            digest.update(step.kernel.tobytes())
            digest.update(step.bias.tobytes())
        elif isinstance(step, Pool):
            margin += (step.size - 1) * stride
            stride *= step.size
    margin = -(-margin // stride) * stride  # tiles start on the pooling grid
    return Network(tuple(steps), stride, margin, digest.hexdigest())
