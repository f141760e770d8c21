"""Apply engine networks to batches of tiles by FFT: overlap-save blocks, real FFTs, per-frequency GEMMs.

Each convolution layer cuts its zero-padded input into blocks and runs in three phases, each
split into work items on ``os.cpu_count()`` threads (single-threaded FFTs and BLAS inside):

1. real FFT of every block along x;
2. per chunk of x frequencies, for all blocks at once: FFT along y, channel mixing as one
   ``(blocks x cin) @ (cin x cout)`` complex64 product per frequency (the bias enters as a DC
   term), inverse FFT along y, keeping only the rows of valid outputs;
3. per group of blocks: inverse real FFT along x, then max-pool and ReLU (pooling first: they
   commute, and rows are pooled while contiguous) written straight into the next layer's input.

Phase 2 works on a few frequency columns at a time, so its transforms, products and inverse
transforms stay in the CPU caches. Arrays are laid out ``(y, x, block, channel)``: the transforms
run over the leading axes and the channel mixing needs no transposes.

Blocks are as large as the memory bounds allow, because a transform costs about the same per
pixel at every size measured (64 to 576 pixels, ~3 ns per pixel-channel with ``scipy.fft`` on
one core) while the overlap of ``kernel - 1`` pixels per block is pure waste. One layer's kernel
spectra stay under ``SPECTRA_BUDGET_BYTES`` whatever the slice size; spectra are cached per
network weights and block geometry (``CACHE_BYTES`` in all). The x transform of the input blocks
is computed once and shared by every network whose first layer has the same block geometry.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import product

import numpy as np
import scipy.fft
from threadpoolctl import ThreadpoolController

from .network import Conv, Network, Pool, Relu

SPECTRA_BUDGET_BYTES = 160 * 2**20
"""Kernel spectra of one layer at most this big (40 x 40 channels: FFT blocks of 144 x 144)."""
BLOCK_BYTES = 16 * 2**20
"""Spectrum of one block, all its channels, at most this big (40 channels: 270 x 270 blocks)."""
MAX_FFT_PX = 1024
"""Longest block FFT along either axis."""
WORK_BYTES = 96 * 2**20
"""Spectra of the blocks processed together in one layer (more blocks: larger, faster GEMMs)."""
COLUMN_BYTES = 4 * 2**20
"""Spectra of one work item of phase 2 (a few frequency columns of every block): cache-sized."""
CACHE_BYTES = 1024 * 2**20
"""Kernel spectra kept between calls (least recently used dropped first)."""

_FAST_SIZES = sorted(
    2**a * 3**b * 5**c
    for a, b, c in product(range(1, 13), range(8), range(6))
    if 2**a * 3**b * 5**c <= 4096
)
"""Even FFT lengths with factors 2, 3 and 5 only: fast in pocketfft, whole real spectra."""

_WORKERS = os.cpu_count() or 1
_executor: ThreadPoolExecutor | None = None
_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()
_blas = ThreadpoolController()


def _threads() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(_WORKERS, thread_name_prefix="tomoseg-fft")
    return _executor


def _parallel(function, items: list) -> None:
    if len(items) == 1:
        function(items[0])
    else:
        list(_threads().map(function, items))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _fast_size(length: int) -> int:
    return next((size for size in _FAST_SIZES if size >= length), length)


@dataclass(frozen=True)
class _Axis:
    """Overlap-save blocks along one axis: ``count`` blocks of ``valid`` outputs, FFT ``fft``."""

    valid: int
    count: int
    fft: int


def _axis_options(length: int, kernel: int, multiple: int) -> list[_Axis]:
    """Every distinct way to cut ``length`` into blocks (outputs a multiple of ``multiple``)."""
    options: dict[int, _Axis] = {}
    for count in range(1, length + 1):
        valid = _round_up(-(-length // count), multiple)
        if (count - 1) * valid >= length:
            continue  # fewer blocks already cover the axis with these outputs
        if valid not in options:
            options[valid] = _Axis(valid, count, _fast_size(valid + kernel - 1))
        if valid <= multiple:
            break
    return list(options.values())


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

    @property
    def spectrum(self) -> tuple[int, int]:
        return self.y.fft, self.x.fft // 2 + 1


def _geometry(shape: tuple[int, int], conv: Conv, multiple: int) -> _Geometry:
    """The blocks with the fewest transformed pixels whose spectra fit the memory bounds."""
    cin, cout = conv.channels
    best: tuple[tuple[int, int], _Geometry] | None = None
    for y, x in product(
        _axis_options(shape[0], conv.size[0], multiple),
        _axis_options(shape[1], conv.size[1], multiple),
    ):
        geometry = _Geometry(y, x, conv.size, conv.pad_before)
        frequencies = math.prod(geometry.spectrum)
        smallest = y.valid <= multiple and x.valid <= multiple
        if not smallest and (
            max(y.fft, x.fft) > MAX_FFT_PX
            or frequencies * cin * cout * 8 > SPECTRA_BUDGET_BYTES
            or frequencies * max(cin, cout) * 8 > BLOCK_BYTES
        ):
            continue
        cost = (y.count * y.fft * x.count * x.fft, y.count * x.count)
        if best is None or cost < best[0]:
            best = (cost, geometry)
    assert best is not None  # the smallest blocks are always allowed
    return best[1]


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
        stages.append(_Stage(index, conv, tuple(after), shape, _geometry(shape, conv, factor)))
        shape = stages[-1].out_shape
    return tuple(leading), stages


def _padded_input(stage: _Stage, x: np.ndarray) -> np.ndarray:
    buffer = np.zeros((*stage.geometry.padded, *x.shape[2:]), np.float32)
    py, px = stage.geometry.pad_before
    buffer[py : py + x.shape[0], px : px + x.shape[1]] = x
    return buffer


def _split(count: int, size: int) -> list[slice]:
    """``count`` items in runs of at most ``size``, at least one run per worker where possible."""
    size = max(1, min(size, -(-count // _WORKERS)))
    return [slice(a, min(a + size, count)) for a in range(0, count, size)]


def _forward_x(buffer: np.ndarray, geometry: _Geometry, chosen: list) -> np.ndarray:
    """Real FFT along x of the chosen blocks, ``(block rows, fx // 2 + 1, len(chosen), cin)``."""
    ly = geometry.y.valid + geometry.kernel[0] - 1
    lx = geometry.x.valid + geometry.kernel[1] - 1
    if geometry.y.count == geometry.x.count == 1:
        blocks = buffer[:, :, chosen[0][2] : chosen[-1][2] + 1]  # the padded tiles are the blocks
    else:
        blocks = np.empty((ly, lx, len(chosen), buffer.shape[3]), np.float32)
        for k, (i, j, b) in enumerate(chosen):
            y0, x0 = i * geometry.y.valid, j * geometry.x.valid
            blocks[:, :, k] = buffer[y0 : y0 + ly, x0 : x0 + lx, b]
    return scipy.fft.rfft(blocks, n=geometry.x.fft, axis=1)


def _finish(stage: _Stage, rows: np.ndarray, chosen: list, target, offset) -> None:
    """Activation and pools of inverse-transformed blocks ``(valid_y, fx, k, cout)``, written out.

    A leading max-pool is taken first (a ReLU is non-decreasing, so it commutes with the max),
    over row pairs while rows are contiguous, then over columns straight into the target.
    """
    conv, after = stage.conv, stage.after
    vy, vx = stage.geometry.y.valid // stage.factor, stage.geometry.x.valid // stage.factor
    out_h, out_w = stage.out_shape
    size = after[0].size if after and isinstance(after[0], Pool) else 1
    rest = after[1:] if size > 1 else after
    if size > 1:
        pooled = rows[0::size]
        for dy in range(1, size):
            np.maximum(pooled, rows[dy::size], out=pooled)
        rows = pooled
    if conv.relu:
        np.maximum(rows, 0.0, out=rows)
    width = stage.geometry.x.valid
    for k, (i, j, b) in enumerate(chosen):
        y0, x0 = i * vy, j * vx
        h, w = min(vy, out_h - y0), min(vx, out_w - x0)
        if rest:  # uncommon layer stacks: finish each block on its own
            block = rows[:, 0:width:size, k].copy()
            for dx in range(1, size):
                np.maximum(block, rows[:, dx:width:size, k], out=block)
            block = _apply(block, rest)
            target[offset[0] + y0 : offset[0] + y0 + h, offset[1] + x0 : offset[1] + x0 + w, b] = (
                block[:h, :w]
            )
            continue
        out = target[offset[0] + y0 : offset[0] + y0 + h, offset[1] + x0 : offset[1] + x0 + w, b]
        if size == 1:
            out[...] = rows[:h, :w, k]
        else:
            np.maximum(rows[:h, 0 : w * size : size, k], rows[:h, 1 : w * size : size, k], out=out)
            for dx in range(2, size):
                np.maximum(out, rows[:h, dx : w * size : size, k], out=out)


def _run_stage(
    network: Network,
    stage: _Stage,
    buffer: np.ndarray,
    target: np.ndarray,
    offset: tuple[int, int],
    shared: dict | None,
) -> None:
    """Run one convolution stage from ``buffer`` into ``target`` (at ``offset``)."""
    geometry = stage.geometry
    kernels = _kernel_spectra(network, stage.index, stage.conv, geometry)
    fy, fxh = geometry.spectrum
    cin, cout = stage.conv.channels
    instances = stage.instances(buffer.shape[2])
    per_block = fy * fxh * max(cin, cout) * 8
    for batch in _split_runs(len(instances), max(1, WORK_BYTES // per_block)):
        chosen = instances[batch]
        key = (geometry, buffer.shape, batch.start, batch.stop)
        if shared is not None and key in shared:
            spectra = shared[key]
        else:
            spectra = _forward_all(buffer, geometry, chosen)
            if shared is not None:
                shared[key] = spectra
        rows = _mix_columns(stage, spectra, kernels)
        groups = _split(len(chosen), max(1, BLOCK_BYTES // per_block))
        _parallel(
            lambda part, rows=rows, chosen=chosen: _inverse_x(
                stage, rows[:, :, part], chosen[part], target, offset
            ),
            groups,
        )


def _inverse_x(stage: _Stage, rows: np.ndarray, chosen: list, target, offset) -> None:
    """Phase 3: inverse x transform of a group of blocks, then activation and pools."""
    _finish(stage, scipy.fft.irfft(rows, n=stage.geometry.x.fft, axis=1), chosen, target, offset)


def _split_runs(count: int, size: int) -> list[slice]:
    return [slice(a, min(a + size, count)) for a in range(0, count, size)]


def _forward_all(buffer: np.ndarray, geometry: _Geometry, chosen: list) -> np.ndarray:
    """Phase 1: x transforms of the chosen blocks, ``(block rows, fx // 2 + 1, blocks, cin)``."""
    parts = _split(len(chosen), 8)
    if len(parts) == 1:
        return _forward_x(buffer, geometry, chosen)
    ly = geometry.y.valid + geometry.kernel[0] - 1
    spectra = np.empty(
        (ly, geometry.x.fft // 2 + 1, len(chosen), buffer.shape[3]), np.complex64
    )

    def forward(part: slice) -> None:
        spectra[:, :, part] = _forward_x(buffer, geometry, chosen[part])

    _parallel(forward, parts)
    return spectra


def _mix_columns(stage: _Stage, spectra: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Phase 2: y transform, channel mixing, bias and inverse y transform, by frequency columns.

    Returns the valid output rows, ``(valid_y, fx // 2 + 1, blocks, cout)``, still transformed
    along x.
    """
    geometry = stage.geometry
    fy, fxh = geometry.spectrum
    blocks, (cin, cout) = spectra.shape[2], stage.conv.channels
    rows = np.empty((geometry.y.valid, fxh, blocks, cout), np.complex64)
    dc = stage.conv.bias * np.float32(geometry.y.fft * geometry.x.fft)  # +bias at every pixel
    width = max(1, COLUMN_BYTES // (fy * blocks * max(cin, cout) * 8))

    _parallel(
        lambda part: _mix_part(spectra[:, part], kernels[:, part], dc, rows[:, part], part.start),
        _split_runs(fxh, width),
    )
    return rows


def _mix_part(
    spectra: np.ndarray, kernels: np.ndarray, dc: np.ndarray, rows: np.ndarray, first: int
) -> None:
    """Phase 2 on a few frequency columns (``first`` is the index of the first one)."""
    columns = scipy.fft.fft(spectra, n=kernels.shape[0], axis=0)
    if kernels.shape[2] == 1:  # first layer: a broadcast product, no matrix calls
        mixed = columns * kernels
    else:
        mixed = np.matmul(columns, kernels)
    del columns
    if first == 0:
        mixed[0, 0] += dc
    rows[...] = scipy.fft.ifft(mixed, axis=0, overwrite_x=True)[: rows.shape[0]]


def run_networks(networks: list[Network], tiles: np.ndarray) -> list[np.ndarray]:
    """Raw outputs ``(n, ty / stride, tx / stride)`` of each network on tiles ``(n, ty, tx)``.

    Tile sides must be multiples of each network's stride. Outputs equal the Keras model applied
    to each tile with "same" zero padding at the tile edges.
    """
    # One BLAS thread per worker: OpenBLAS's own threads on 40 x 40 products cost more than
    # they save (7x slower measured on 2 cores); parallelism comes from the work items instead.
    with _blas.limit(limits=1, user_api="blas"):
        image = np.ascontiguousarray(np.moveaxis(tiles, 0, -1)[..., None], dtype=np.float32)
        shared: dict = {}  # first-layer input transforms, reused by networks with the same blocks
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
                _run_stage(network, stage, buffer, target, offset, shared if share else None)
                buffer = target
            outputs.append(np.moveaxis(buffer[..., 0], -1, 0).copy())
        return outputs
