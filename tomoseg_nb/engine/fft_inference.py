"""Apply engine networks to batches of tiles by FFT: overlap-save blocks, real FFTs, per-frequency GEMMs.

Each convolution layer cuts its (zero-padded) input into blocks, takes their real 2D FFTs with
``scipy.fft``, mixes channels as one small matrix product per frequency (``(blocks x cin) @
(cin x cout)`` in complex64), transforms back, keeps the valid part of each block and applies the
bias, ReLU and any max-pools before writing into the next layer's zero-padded input. Work items
(a few blocks each) run on ``os.cpu_count()`` threads, each with single-threaded FFTs and BLAS.
Arrays are laid out ``(y, x, tile, channel)``: the transforms run over the two leading axes and
the channel mixing needs no transposes.

The block FFT length is bounded so that one layer's kernel spectra stay under
``SPECTRA_BUDGET_BYTES`` whatever the slice size; spectra are cached per network weights and
block geometry (``CACHE_BYTES`` in all). The transform of the input tiles is computed once and
shared by every network whose first layer has the same block geometry.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.fft
from threadpoolctl import ThreadpoolController

from .network import Conv, Network, Pool, Relu

SPECTRA_BUDGET_BYTES = 64 * 2**20
"""Kernel spectra of one layer at most this big (40 x 40 channels: FFT blocks of at most 102)."""
MAX_FFT_PX = 288
"""Longest block FFT: larger transforms fall out of the CPU caches and run slower per pixel."""
CACHE_BYTES = 1024 * 2**20
"""Kernel spectra kept between calls (least recently used dropped first)."""
CHUNK_BYTES = 16 * 2**20
"""Spectra of one work item (a few blocks), small enough to stay in the CPU caches."""
MIN_GEMM_ROWS = 16
"""Blocks per work item at least, for channel-mixing products that run at full speed."""

_WORKERS = os.cpu_count() or 1
_executor: ThreadPoolExecutor | None = None
_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()
_blas = ThreadpoolController()
_local = threading.local()


def _threads() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(_WORKERS, thread_name_prefix="tomoseg-fft")
    return _executor


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class _Axis:
    """Overlap-save blocks along one axis: ``count`` blocks of ``valid`` outputs, FFT ``fft``."""

    valid: int
    count: int
    fft: int


def _axis_blocks(length: int, kernel: int, multiple: int, max_fft: int) -> _Axis:
    count = 1
    while True:
        valid = _round_up(_round_up(length, count) // count, multiple)
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


def _mix(spectra: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Channel mixing at every frequency: ``(m x cin) @ (cin x cout)`` complex products."""
    cin, cout = kernels.shape[2:]
    if cin == 1:  # first layer: a broadcast product, no matrix calls
        return spectra * kernels
    if cout == 1:  # last layer: a weighted sum over channels
        return np.einsum("yxmc,yxc->yxm", spectra, kernels[..., 0])[..., None]
    return np.matmul(spectra, kernels)


def _forward(blocks: np.ndarray) -> np.ndarray:
    """Real 2D FFT over the two leading axes, as two 1D passes (faster than ``rfft2`` here)."""
    return scipy.fft.fft(scipy.fft.rfft(blocks, axis=1), axis=0, overwrite_x=True)


def _inverse(mixed: np.ndarray, geometry: _Geometry) -> np.ndarray:
    """Valid outputs of blocks, ``(valid_y, valid_x, m, cout)``; only needed rows are finished."""
    columns = scipy.fft.ifft(mixed, axis=0, overwrite_x=True)[: geometry.y.valid]
    return scipy.fft.irfft(columns, n=geometry.x.fft, axis=1)[:, : geometry.x.valid]


def _pool(x: np.ndarray, size: int) -> np.ndarray:
    """Max over ``size x size`` windows of the two leading axes (incomplete windows dropped)."""
    h, w = x.shape[0] // size * size, x.shape[1] // size * size
    pooled = x[0:h:size, 0:w:size].copy()
    for dy in range(size):
        for dx in range(size):
            if dy or dx:
                np.maximum(pooled, x[dy:h:size, dx:w:size], out=pooled)
    return pooled


def _apply(x: np.ndarray, steps: tuple[Pool | Relu, ...]) -> np.ndarray:
    """The pools and ReLUs between two convolutions, on a float32 array we may overwrite."""
    for step in steps:
        x = step.apply(x) if isinstance(step, Relu) else _pool(x, step.size)
    return x


def _finish(block: np.ndarray, conv: Conv, after: tuple[Pool | Relu, ...]) -> np.ndarray:
    """Bias, activation and the following pools / ReLUs of one output block (a new array).

    A leading max-pool is taken first: adding a per-channel bias and a ReLU are non-decreasing,
    so they commute with the max, and run on four times fewer pixels.
    """
    if after and isinstance(after[0], Pool):
        block, after = _pool(block, after[0].size), after[1:]
        block += conv.bias
    else:
        block = block + conv.bias
    if conv.relu:
        np.maximum(block, 0.0, out=block)
    return _apply(block, after)


@dataclass(frozen=True)
class _Stage:
    """One convolution with the pools / ReLUs after it, on an input of ``shape`` pixels."""

    index: int
    conv: Conv
    after: tuple[Pool | Relu, ...]
    shape: tuple[int, int]
    geometry: _Geometry

    @property
    def factor(self) -> int:
        return math.prod(step.size for step in self.after if isinstance(step, Pool))

    @property
    def out_shape(self) -> tuple[int, int]:
        return self.shape[0] // self.factor, self.shape[1] // self.factor

    def instances(self, batch: int) -> list[tuple[int, int, int]]:
        """(block row, block column, tile) of every block whose output is inside the layer."""
        gy, gx = self.geometry.y, self.geometry.x
        vy, vx = gy.valid // self.factor, gx.valid // self.factor
        return [
            (i, j, b)
            for i in range(gy.count)
            for j in range(gx.count)
            if i * vy < self.out_shape[0] and j * vx < self.out_shape[1]
            for b in range(batch)
        ]

    def chunk(self, count: int) -> int:
        """Blocks per work item: big enough for efficient products, small enough for the caches."""
        cin, cout = self.conv.channels
        per_block = self.geometry.y.fft * (self.geometry.x.fft // 2 + 1) * max(cin, cout) * 8
        size = max(1, CHUNK_BYTES // per_block)
        if cin > 1 and cout > 1:
            size = max(size, MIN_GEMM_ROWS)
        return max(1, min(size, -(-count // _WORKERS)))


def _plan(network: Network, shape: tuple[int, int]) -> tuple[tuple, list[_Stage]]:
    """Leading pools / ReLUs, then one stage per convolution with its block geometry."""
    leading: list[Pool | Relu] = []
    groups: list[tuple[int, Conv, list]] = []
    for index, step in enumerate(network.steps):
        if isinstance(step, Conv):
            groups.append((index, step, []))
        elif groups:
            groups[-1][2].append(step)
        else:
            leading.append(step)
    for step in leading:
        if isinstance(step, Pool):
            shape = (shape[0] // step.size, shape[1] // step.size)
    stages = []
    for index, conv, after in groups:
        factor = math.prod(step.size for step in after if isinstance(step, Pool))
        largest = _max_fft(conv)
        geometry = _Geometry(
            _axis_blocks(shape[0], conv.size[0], factor, largest),
            _axis_blocks(shape[1], conv.size[1], factor, largest),
            conv.size,
            conv.pad_before,
        )
        stages.append(_Stage(index, conv, tuple(after), shape, geometry))
        shape = stages[-1].out_shape
    return tuple(leading), stages


def _padded_input(stage: _Stage, x: np.ndarray) -> np.ndarray:
    buffer = np.zeros((*stage.geometry.padded, *x.shape[2:]), np.float32)
    py, px = stage.geometry.pad_before
    buffer[py : py + x.shape[0], px : px + x.shape[1]] = x
    return buffer


def _gather(buffer: np.ndarray, geometry: _Geometry, chosen: list) -> np.ndarray:
    """The input blocks of the chosen (row, column, tile) instances, zero-padded to the FFT size.

    Each worker thread keeps its buffer: only the block part is ever written, so the zero padding
    around it never needs clearing again.
    """
    ly = geometry.y.valid + geometry.kernel[0] - 1
    lx = geometry.x.valid + geometry.kernel[1] - 1
    shape = (geometry.y.fft, geometry.x.fft, len(chosen), buffer.shape[-1])
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    if shape not in buffers:
        buffers.clear()  # one size at a time per thread bounds the memory
        buffers[shape] = np.zeros(shape, np.float32)
    blocks = buffers[shape]
    for k, (i, j, b) in enumerate(chosen):
        y0, x0 = i * geometry.y.valid, j * geometry.x.valid
        blocks[:ly, :lx, k] = buffer[y0 : y0 + ly, x0 : x0 + lx, b]
    return blocks


def _run_stage(
    network: Network,
    stage: _Stage,
    buffer: np.ndarray,
    target: np.ndarray,
    offset: tuple[int, int],
    shared: dict,
) -> None:
    """Run one convolution stage from ``buffer`` into ``target`` (at ``offset``), in chunks."""
    geometry = stage.geometry
    kernels = _kernel_spectra(network, stage.index, stage.conv, geometry)
    instances = stage.instances(buffer.shape[2])
    size = stage.chunk(len(instances))
    chunks = [slice(a, min(a + size, len(instances))) for a in range(0, len(instances), size)]
    vy = geometry.y.valid // stage.factor
    vx = geometry.x.valid // stage.factor
    out_h, out_w = stage.out_shape
    key = (geometry, buffer.shape) if stage.conv.channels[0] == 1 else None

    def work(part: slice) -> None:
        chosen = instances[part]
        if key is not None and (key, part.start, part.stop) in shared:
            spectra = shared[key, part.start, part.stop]
        else:
            spectra = _forward(_gather(buffer, geometry, chosen))
            if key is not None:
                shared[key, part.start, part.stop] = spectra
        mixed = _mix(spectra, kernels)
        del spectra  # bounds the working set: at most two spectra-sized arrays per thread
        blocks = _inverse(mixed, geometry)
        del mixed
        for k, (i, j, b) in enumerate(chosen):
            result = _finish(blocks[:, :, k], stage.conv, stage.after)
            y0, x0 = i * vy, j * vx
            h, w = min(vy, out_h - y0), min(vx, out_w - x0)
            target[offset[0] + y0 : offset[0] + y0 + h, offset[1] + x0 : offset[1] + x0 + w, b] = (
                result[:h, :w]
            )

    if len(chunks) == 1:
        work(chunks[0])
    else:
        list(_threads().map(work, chunks))


def run_networks(networks: list[Network], tiles: np.ndarray) -> list[np.ndarray]:
    """Raw outputs ``(n, ty / stride, tx / stride)`` of each network on tiles ``(n, ty, tx)``.

    Tile sides must be multiples of each network's stride. Outputs equal the Keras model applied
    to each tile with "same" zero padding at the tile edges.
    """
    # One BLAS thread per worker: OpenBLAS's own threads on 40 x 40 products cost more than
    # they save (7x slower measured on 2 cores); parallelism comes from the work items instead.
    with _blas.limit(limits=1, user_api="blas"):
        image = np.ascontiguousarray(np.moveaxis(tiles, 0, -1)[..., None], dtype=np.float32)
        shared: dict = {}  # first-layer input spectra, reused by networks with the same blocks
        outputs = []
        for network in networks:
            leading, stages = _plan(network, image.shape[:2])
            buffer = _padded_input(stages[0], _apply(image.copy(), leading))
            for number, stage in enumerate(stages):
                if number + 1 < len(stages):
                    following = stages[number + 1]
                    target = np.zeros(
                        (*following.geometry.padded, len(tiles), stage.conv.channels[1]),
                        np.float32,
                    )
                    offset = following.geometry.pad_before
                else:
                    target = np.empty((*stage.out_shape, len(tiles), 1), np.float32)
                    offset = (0, 0)
                share = number == 0 and not leading  # the input itself, as every network sees it
                _run_stage(network, stage, buffer, target, offset, shared if share else {})
                buffer = target
            outputs.append(np.moveaxis(buffer[..., 0], -1, 0).copy())
        return outputs
