"""Pick the faster convolution engine for a set of networks on this machine.

On a CPU, FFT convolution wins once kernels are large: its cost per pixel grows with the log of
the block size, direct convolution's with the kernel area. ``benchmarks/bench_engine.py
--crossover`` measures where the two meet; on a GPU, cuDNN's direct convolution is used (the FFT
engine has not been measured there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import BadInputError
from .network import describe_network

ENGINES = ("auto", "keras", "fft")
FFT_MIN_KERNEL_CPU = 7
"""Smallest kernel side for which the FFT engine is used on a CPU (see the crossover benchmark)."""


def default_device() -> str:
    """``"gpu"`` when the Keras backend sees an accelerator, else ``"cpu"``."""
    import keras

    if keras.backend.backend() == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    devices = keras.distribution.list_devices()
    return "cpu" if all(device.lower().startswith("cpu") for device in devices) else "gpu"


def choose_engine(models: Any | Sequence[Any], device: str | None = None) -> str:
    """``"fft"`` or ``"keras"``: the faster engine to train or apply ``models`` on ``device``.

    Parameters
    ----------
    models : keras.Model or sequence of keras.Model
        The networks; one that the FFT engine cannot run gives ``"keras"``.
    device : {"cpu", "gpu"}, optional
        Where they will run; the Keras backend's default device when None.

    Returns
    -------
    str
        ``"fft"`` on a CPU when every network's largest kernel is at least ``FFT_MIN_KERNEL_CPU``
        pixels, otherwise ``"keras"``.
    """
    models = list(models) if isinstance(models, Sequence) else [models]
    device = (device or default_device()).lower()
    if device not in ("cpu", "gpu"):
        raise BadInputError(f"unknown device {device!r}; use 'cpu' or 'gpu'")
    if device != "cpu" or not models:
        return "keras"
    try:
        networks = [describe_network(model) for model in models]
    except BadInputError:
        return "keras"
    largest = [max(max(conv.size) for conv in network.convolutions) for network in networks]
    return "fft" if min(largest) >= FFT_MIN_KERNEL_CPU else "keras"
