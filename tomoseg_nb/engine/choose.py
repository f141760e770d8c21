"""Pick the faster convolution engine for a set of networks on this machine.

On a CPU, FFT convolution wins once kernels are large: its cost per pixel grows with the log of
the block size, direct convolution's with the kernel area. ``benchmarks/bench_engine.py
--crossover`` measures where the two meet (16-channel networks, 2 cores, TensorFlow backend;
ratios Keras time / FFT time):

====== ===== ===== ===== ===== ===== =====
kernel 3     5     7     9     11    15
apply  0.49  1.03  1.46  1.35  1.71  6.65
train  0.28  1.24  0.75  0.99  1.00  2.02
====== ===== ===== ===== ===== ===== =====

With 40 channels (EMAN2) the FFT engine is faster still: the channel mixing, the part that grows
with channels squared, is ~100x cheaper than direct convolution, the transforms are not. On a
GPU, cuDNN's direct convolution is used (the FFT engine has not been measured there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import BadInputError
from .network import Conv, Network, Pool, describe_network

ENGINES = ("auto", "keras", "fft")
FFT_MIN_KERNEL_CPU = {"apply": 7, "train": 13}
"""Smallest kernel side (of the costliest layer) for which the FFT engine is used on a CPU."""


def default_device() -> str:
    """``"gpu"`` when the Keras backend sees an accelerator, else ``"cpu"``."""
    import keras

    if keras.backend.backend() == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    devices = keras.distribution.list_devices()
    return "cpu" if all(device.lower().startswith("cpu") for device in devices) else "gpu"


def _dominant_kernel(network: Network) -> int:
    """Kernel side of the layer with the most multiply-adds per input pixel."""
    stride, costs = 1, []
    for step in network.steps:
        if isinstance(step, Conv):
            kh, kw = step.size
            cin, cout = step.channels
            costs.append((kh * kw * cin * cout / stride**2, max(kh, kw)))
        elif isinstance(step, Pool):
            stride *= step.size
    return max(costs)[1]


def choose_engine(
    models: Any | Sequence[Any], device: str | None = None, *, purpose: str = "apply"
) -> str:
    """``"fft"`` or ``"keras"``: the faster engine to apply or train ``models`` on ``device``.

    Parameters
    ----------
    models : keras.Model or sequence of keras.Model
        The networks; one that the FFT engine cannot run gives ``"keras"``.
    device : {"cpu", "gpu"}, optional
        Where they will run; the Keras backend's default device when None.
    purpose : {"apply", "train"}
        Training pays for the transforms three times (forward, both gradients) and so needs
        larger kernels before the FFT wins.

    Returns
    -------
    str
        ``"fft"`` on a CPU when, in every network, the layer with the most arithmetic has a kernel
        of at least ``FFT_MIN_KERNEL_CPU[purpose]`` pixels; otherwise ``"keras"``.
    """
    models = list(models) if isinstance(models, Sequence) else [models]
    device = (device or default_device()).lower()
    if device not in ("cpu", "gpu"):
        raise BadInputError(f"unknown device {device!r}; use 'cpu' or 'gpu'")
    if purpose not in FFT_MIN_KERNEL_CPU:
        raise BadInputError(f"unknown purpose {purpose!r}; use 'apply' or 'train'")
    if device != "cpu" or not models:
        return "keras"
    try:
        networks = [describe_network(model) for model in models]
    except BadInputError:
        return "keras"
    smallest = min(_dominant_kernel(network) for network in networks)
    return "fft" if smallest >= FFT_MIN_KERNEL_CPU[purpose] else "keras"
