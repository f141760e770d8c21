"""Apply engine networks to batches of tiles by FFT: overlap-save blocks, real FFTs, per-frequency GEMMs.

Each convolution layer cuts its (zero-padded) input into blocks, takes their real 2D FFTs with
``scipy.fft`` (all cores), mixes channels as one small matrix product per frequency
(``(blocks x cin) @ (cin x cout)`` in complex64, frequencies split over threads), transforms back,
keeps the ``valid`` part of each block and applies the bias, ReLU and any max-pools before writing
into the next layer's zero-padded input. Arrays are laid out ``(y, x, tile, channel)`` so that the
transforms run over the two leading axes and the channel mixing needs no transposes.

The block FFT length is bounded so that one layer's kernel spectra stay under
``SPECTRA_BUDGET_BYTES`` whatever the slice size; spectra are cached per network weights and
block geometry (``CACHE_BYTES`` in all). The transform of the input tiles is computed once and
shared by every network whose first layer has the same block geometry.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from threading import Lock

import numpy as np
import scipy.fft

from .network import Conv, Network, Pool, Relu

SPECTRA_BUDGET_BYTES = 128 * 2**20
"""Kernel spectra of one layer at most this big (the 40 x 40 channel layer: 144-point FFT blocks)."""
MAX_FFT_PX = 288
"""Longest block FFT: larger transforms fall out of the CPU caches and run slower per pixel."""
CACHE_BYTES = 1024 * 2**20
"""Kernel spectra kept between calls (least recently used dropped first)."""

_WORKERS = os.cpu_count() or 1
_executor: ThreadPoolExecutor | None = None
_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
_cache_lock = Lock()


def _threads() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(_WORKERS, thread_name_prefix="tomoseg-fft")
    return _executor


def _parallel(function, length: int) -> None:
    """Call ``function(slice)`` on ``_WORKERS`` parts of ``range(length)`` at once."""
    parts = min(_WORKERS, length)
    if parts <= 1:
        function(slice(0, length))
        return
    bounds = np.linspace(0, length, parts + 1).astype(int)
    list(_threads().map(function, [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]))


@dataclass(frozen=True)
class _Axis:
    """Overlap-save blocks along one axis: ``count`` blocks of ``valid`` outputs, FFT ``fft``."""

    valid: int
    count: int
    fft: int


def _axis_blocks(length: int, kernel: int, multiple: int, max_fft: int) -> _Axis:
    count = 1
    while True:
        valid = -(-(-(-length // count)) // multiple) * multiple
        fft = scipy.fft.next_fast_len(valid + kernel - 1, real=True)
        if fft <= max_fft or valid <= multiple:
            return _Axis(valid, count, fft)
        count += 1


def _max_fft(conv: Conv) -> int:
    cin, cout = conv.channels
    side = math.isqrt(int(2 * SPECTRA_BUDGET_BYTES / (8 * cin * cout)))
    return max(16, min(MAX_FFT_PX, side))


@dataclass(frozen=True)
class _Geometry:
    y: _Axis
    x: _Axis
    kernel: tuple[int, int]
    pad_before: tuple[int, int]

    @property
    def padded(self) -> tuple[int, int]:
        """Shape of the zero-padded input buffer the blocks are read from."""
        return (
            self.y.count * self.y.valid + self.kernel[0] - 1,
            self.x.count * self.x.valid + self.kernel[1] - 1,
        )


def _kernel_spectra(network: Network, index: int, conv: Conv, geometry: _Geometry) -> np.ndarray:
    """``conj(rfft2(kernel))`` on the block grid, ``(fy, fx // 2 + 1, cin, cout)`` complex64."""
    key = (network.fingerprint, index, geometry.y.fft, geometry.x.fft)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    spectra = scipy.fft.rfft2(
        conv.kernel, s=(geometry.y.fft, geometry.x.fft), axes=(0, 1), workers=_WORKERS
    )
    np.conjugate(spectra, out=spectra)  # correlation, as Keras computes it
    with _cache_lock:
        _cache[key] = spectra
        while sum(value.nbytes for value in _cache.values()) > CACHE_BYTES and len(_cache) > 1:
            _cache.popitem(last=False)
    return spectra


def _input_buffer(geometry: _Geometry, batch: int, channels: int) -> np.ndarray:
    return np.zeros((*geometry.padded, batch, channels), np.float32)


def _block_spectra(buffer: np.ndarray, geometry: _Geometry) -> np.ndarray:
    """FFT of every block: ``(fy, fx // 2 + 1, blocks * batch, cin)`` complex64."""
    gy, gx = geometry.y, geometry.x
    length_y = gy.valid + geometry.kernel[0] - 1
    length_x = gx.valid + geometry.kernel[1] - 1
    blocks = np.empty((length_y, length_x, gy.count * gx.count, *buffer.shape[2:]), np.float32)
    for i in range(gy.count):
        for j in range(gx.count):
            y0, x0 = i * gy.valid, j * gx.valid
            blocks[:, :, i * gx.count + j] = buffer[y0 : y0 + length_y, x0 : x0 + length_x]
    blocks = blocks.reshape(length_y, length_x, -1, buffer.shape[-1])
    rows = scipy.fft.rfft(blocks, n=gx.fft, axis=1, workers=_WORKERS)
    return scipy.fft.fft(rows, n=gy.fft, axis=0, workers=_WORKERS, overwrite_x=True)


def _mix(spectra: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Per-frequency channel mixing ``(m x cin) @ (cin x cout)``, frequencies split over threads."""
    fy, fxh, m, _ = spectra.shape
    out = np.empty((fy, fxh, m, kernels.shape[-1]), np.complex64)
    if kernels.shape[2] == 1:

        def part(rows: slice) -> None:
            np.multiply(spectra[rows], kernels[rows], out=out[rows])
    else:

        def part(rows: slice) -> None:
            np.matmul(spectra[rows], kernels[rows], out=out[rows])

    _parallel(part, fy)
    return out


def _inverse(mixed: np.ndarray, geometry: _Geometry) -> np.ndarray:
    """Valid outputs of every block, ``(valid_y, valid_x, blocks * batch, cout)`` float32."""
    columns = scipy.fft.ifft(mixed, axis=0, workers=_WORKERS, overwrite_x=True)[: geometry.y.valid]
    out = scipy.fft.irfft(columns, n=geometry.x.fft, axis=1, workers=_WORKERS)
    return out[:, : geometry.x.valid]


def _pool(x: np.ndarray, size: int) -> np.ndarray:
    """Max over ``size x size`` windows of the two leading axes (incomplete windows dropped)."""
    h, w = x.shape[0] // size * size, x.shape[1] // size * size
    pooled = x[0:h:size, 0:w:size].copy()
    for dy in range(size):
        for dx in range(size):
            if dy or dx:
                np.maximum(pooled, x[dy:h:size, dx:w:size], out=pooled)
    return pooled


def _apply(x: np.ndarray, steps: list[Pool | Relu]) -> np.ndarray:
    """The pools and ReLUs between two convolutions, on a float32 array we may overwrite."""
    for step in steps:
        x = step.apply(x) if isinstance(step, Relu) else _pool(x, step.size)
    return x


def _stages(network: Network) -> tuple[list[Pool | Relu], list[tuple[int, Conv, list]]]:
    """Split the steps into leading non-convolutions and (conv, following steps) stages."""
    leading: list[Pool | Relu] = []
    stages: list[tuple[int, Conv, list]] = []
    for index, step in enumerate(network.steps):
        if isinstance(step, Conv):
            stages.append((index, step, []))
        elif stages:
            stages[-1][2].append(step)
        else:
            leading.append(step)
    return leading, stages


def _geometry(conv: Conv, shape: tuple[int, int], after: list) -> _Geometry:
    factor = math.prod(step.size for step in after if isinstance(step, Pool))
    max_fft = _max_fft(conv)
    return _Geometry(
        _axis_blocks(shape[0], conv.size[0], factor, max_fft),
        _axis_blocks(shape[1], conv.size[1], factor, max_fft),
        conv.size,
        conv.pad_before,
    )


def run_networks(networks: list[Network], tiles: np.ndarray) -> list[np.ndarray]:
    """Raw outputs ``(n, ty / stride, tx / stride)`` of each network on tiles ``(n, ty, tx)``.

    Tile sides must be multiples of each network's stride. Outputs equal the Keras model applied
    to each tile with "same" zero padding at the tile edges.
    """
    batch = tiles.shape[0]
    image = np.ascontiguousarray(np.moveaxis(tiles, 0, -1)[..., None], dtype=np.float32)
    shared: dict[_Geometry, np.ndarray] = {}
    outputs = []
    for network in networks:
        leading, stages = _stages(network)
        x = _apply(image.copy(), leading)
        shape = x.shape[:2]
        first = _geometry(stages[0][1], shape, stages[0][2])
        buffer = _input_buffer(first, batch, 1)
        py, px = first.pad_before
        buffer[py : py + shape[0], px : px + shape[1]] = x
        for number, (index, conv, after) in enumerate(stages):
            geometry = _geometry(conv, shape, after)
            if number == 0 and not leading:
                if geometry not in shared:
                    shared[geometry] = _block_spectra(buffer, geometry)
                spectra = shared[geometry]
            else:
                spectra = _block_spectra(buffer, geometry)
            mixed = _mix(spectra, _kernel_spectra(network, index, conv, geometry))
            del spectra
            blocks = _inverse(mixed, geometry)
            del mixed
            factor = math.prod(step.size for step in after if isinstance(step, Pool))
            out_shape = (shape[0] // factor, shape[1] // factor)
            if number + 1 < len(stages):
                following = _geometry(stages[number + 1][1], out_shape, stages[number + 1][2])
                buffer = _input_buffer(following, batch, conv.channels[1])
                offset = following.pad_before
            else:
                buffer = np.empty((*out_shape, batch, conv.channels[1]), np.float32)
                offset = (0, 0)
            _scatter(blocks, geometry, conv, after, factor, out_shape, buffer, offset, batch)
            shape = out_shape
        outputs.append(np.moveaxis(buffer[..., 0], -1, 0).copy())
    return outputs


def _scatter(blocks, geometry, conv, after, factor, out_shape, buffer, offset, batch) -> None:
    """Bias, ReLU and pools on each block; write its part of the layer output into ``buffer``."""
    gy, gx = geometry.y, geometry.x
    vy, vx = gy.valid // factor, gx.valid // factor
    blocks = blocks.reshape(gy.valid, gx.valid, gy.count * gx.count, batch, -1)
    items = [
        (i, j, b)
        for i in range(gy.count)
        for j in range(gx.count)
        for b in range(batch)
        if i * vy < out_shape[0] and j * vx < out_shape[1]
    ]

    def part(chosen: slice) -> None:
        for i, j, b in items[chosen]:
            y0, x0 = i * vy, j * vx
            h, w = min(vy, out_shape[0] - y0), min(vx, out_shape[1] - x0)
            result = blocks[:, :, i * gx.count + j, b] + conv.bias
            if conv.relu:
                np.maximum(result, 0.0, out=result)
            result = _apply(result, after)
            buffer[offset[0] + y0 : offset[0] + y0 + h, offset[1] + x0 : offset[1] + x0 + w, b] = (
                result[:h, :w]
            )

    _parallel(part, len(items))
