"""Apply one or more networks to a stack of slices, in tiles, with Keras or the FFT engine.

Whole-slice semantics: each network sees the slice zero-padded at the bottom and right to a
multiple of its stride (so a max-pool keeps every pixel; Keras alone would drop an odd last row),
with its layers' own "same" zero padding at the slice edges only. The output of a network with
stride ``s`` on a ``(y, x)`` slice is therefore ``(ceil(y / s), ceil(x / s))``, equal to
``model.predict`` on the padded slice. Large slices are cut into tiles that overlap by the
network's reach, so the result does not depend on the tiling. A network with z context takes
``(n, y, x, c)`` stacks (each slice with its neighbours as channels) tiled the same way in y and x.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import BadInputError
from .choose import ENGINES, choose_engine
from .fft_inference import run_networks
from .network import Network, describe_network
from .tiling import plan_tiles

DEFAULT_TILE_PX = 1024
"""Tiles at most this long: bounds the working set for any slice size."""
BATCH_PIXELS = 2**20
"""Input pixels per batch of tiles when ``batch_size`` is not given (bounds the working set: about
400 MB for the EMAN2 network with the FFT engine, with its cached kernel spectra (150 MB) and the
work arrays it keeps between batches)."""


def predict_slices(
    models: Any | Sequence[Any],
    slices: np.ndarray,
    *,
    engine: str = "auto",
    tile_px: int | None = None,
    batch_size: int | None = None,
) -> list[np.ndarray]:
    """Raw network outputs on preprocessed slices, one array per model.

    Parameters
    ----------
    models : keras.Model or sequence of keras.Model
        Networks of Conv2D / MaxPooling2D / ReLU layers with one output channel, all taking the
        input channels ``slices`` has.
    slices : ndarray, shape (n, y, x) or (n, y, x, c)
        Preprocessed float32 slices; ``(n, y, x, c)`` for networks with ``c`` input channels
        (z context: ``preprocess.stack_z_context``).
    engine : {"auto", "keras", "fft"}
        ``"keras"`` calls the Keras model on batches of tiles; ``"fft"`` the FFT engine, which computes the
        input's transform once for all models; ``"auto"`` asks ``choose_engine``.
    tile_px : int, optional
        Longest tile side (default 1024); slices up to this size are processed whole.
    batch_size : int, optional
        Tiles per batch (default: about 1 Mpixel).

    Returns
    -------
    list of ndarray, shape (n, ceil(y / stride), ceil(x / stride))
        Raw float32 outputs (not clipped), equal to the whole-slice ``model.predict`` on the
        slices zero-padded to a multiple of the stride.

    Examples
    --------
    >>> from tomoseg_nb.models import build_model
    >>> maps = predict_slices([build_model("eman2", seed=0)], np.zeros((2, 64, 50), np.float32))
    >>> maps[0].shape
    (2, 32, 25)
    """
    models = list(models) if isinstance(models, Sequence) else [models]
    if not models:
        raise BadInputError("no models given; pass at least one Keras model")
    slices = np.asarray(slices, dtype=np.float32)
    if slices.ndim not in (3, 4) or 0 in slices.shape:
        raise BadInputError(
            f"slices must be a non-empty (n, y, x) stack, or (n, y, x, c) for networks with z "
            f"context; got shape {slices.shape} (add an axis with image[None] for a single slice)"
        )
    if not np.isfinite(slices).all():
        raise BadInputError("slices contain NaN or Inf; check the tomogram and preprocessing")
    if engine not in ENGINES:
        raise BadInputError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "auto":
        engine = choose_engine(models)
    networks = [describe_network(model) for model in models]
    channels = 1 if slices.ndim == 3 else slices.shape[-1]
    for network in networks:
        if network.in_channels != channels:
            raise BadInputError(
                f"a network takes {network.in_channels} input channel(s) but the slices have "
                f"{channels}; a network with z context k takes (n, y, x, 2k + 1) stacks "
                "(segment.probability_slices builds them from the model's sidecar)"
            )
    outputs: dict[int, np.ndarray] = {}
    for stride in sorted({network.stride for network in networks}):
        members = [i for i, network in enumerate(networks) if network.stride == stride]
        results = _predict_group(
            [models[i] for i in members],
            [networks[i] for i in members],
            slices,
            engine,
            tile_px or DEFAULT_TILE_PX,
            batch_size,
        )
        for i, result in zip(members, results, strict=True):
            outputs[i] = result
    return [outputs[i] for i in range(len(models))]  # every model is in one stride group


def _predict_group(
    models: list[Any],
    networks: list[Network],
    slices: np.ndarray,
    engine: str,
    tile_px: int,
    batch_size: int | None,
) -> list[np.ndarray]:
    """Networks of one stride: shared padding, tiling and (FFT) input transforms."""
    import keras

    stride = networks[0].stride
    count, height, width = slices.shape[:3]
    padded_shape = (-(-height // stride) * stride, -(-width // stride) * stride)
    if padded_shape != (height, width):
        padded = np.zeros((count, *padded_shape, *slices.shape[3:]), np.float32)
        padded[:, :height, :width] = slices
        slices = padded
    margin = max(network.margin_px for network in networks)
    (tile_y, tile_x), tiles = plan_tiles(count, padded_shape, tile_px, margin, stride)
    if batch_size is None:
        batch_size = max(1, BATCH_PIXELS // (tile_y * tile_x))
    outputs = [
        np.empty((count, padded_shape[0] // stride, padded_shape[1] // stride), np.float32)
        for _ in networks
    ]
    for first in range(0, len(tiles), batch_size):
        chosen = tiles[first : first + batch_size]
        batch = np.stack([slices[t.index, t.y : t.y + tile_y, t.x : t.x + tile_x] for t in chosen])
        if engine == "fft":
            results = run_networks(networks, batch)
        else:
            # a plain call: no compiled predict function to retrace for every new tile shape
            inputs = batch[..., None] if batch.ndim == 3 else batch
            results = [
                keras.ops.convert_to_numpy(model(inputs, training=False))[..., 0]
                for model in models
            ]
        for output, result in zip(outputs, results, strict=True):
            for tile, tile_output in zip(chosen, result, strict=True):
                (y0, y1), (x0, x1) = tile.core_y, tile.core_x
                output[tile.index, y0 // stride : y1 // stride, x0 // stride : x1 // stride] = (
                    tile_output[
                        (y0 - tile.y) // stride : (y1 - tile.y) // stride,
                        (x0 - tile.x) // stride : (x1 - tile.x) // stride,
                    ]
                )
    return outputs
