"""Apply engine networks to batches of tiles by FFT: overlap-save blocks, pocketfft, per-frequency GEMMs.

Each convolution layer cuts its zero-padded input into blocks; work items run on
``os.cpu_count()`` threads with single-threaded FFTs and BLAS inside. The bias enters every
layer as a DC term of the product spectrum, and a max-pool after a layer is taken before its
ReLU (both are non-decreasing, so they commute), pooling rows while they are contiguous and
writing straight into the next layer's zero-padded input.

* A layer with one input channel (the first) multiplies the input's full 2D spectrum by the
  kernels' spectra packed two output channels per complex number (channel ``2j`` real, ``2j + 1``
  imaginary): both outputs are real, so one in-place complex inverse transform yields two
  channels, about twice as fast as two real inverse transforms. Work item: one block, laid out
  ``(channel pair, y, x)`` so every pass runs along long contiguous rows.
* A layer with several input channels runs in three phases over all blocks of the batch, laid
  out ``(y, x, block, channel)`` so the channel mixing needs no transposes: (1) real FFT of each
  block along x; (2) per few x frequencies, in place and cache-sized: FFT along y, one
  ``(blocks x cin) @ (cin x cout)`` complex64 product per frequency, inverse FFT along y;
  (3) per group of blocks: inverse real FFT along x of the valid rows, activation, pools.

Blocks are as large as the memory bounds allow: a transform costs about the same per pixel at
every size measured (64 to 576 pixels with ``scipy.fft``), while the ``kernel - 1`` pixels of
overlap per block are pure waste. One layer's kernel spectra stay under ``SPECTRA_BUDGET_BYTES``
whatever the slice size; spectra are cached per network weights and block geometry
(``CACHE_BYTES`` in all); large work arrays are kept between calls (``WORKSPACE_BYTES``), since
the first touch of fresh memory costs more than an FFT pass over it. The transform of the input
blocks is computed once and shared by every network whose first layer has the same blocks.
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
PAIR_BYTES = 16 * 2**20
"""Scratch spectra of one pass of a one-input layer (one block, its channel pairs; 40 channels:
all of them up to 300 x 300 blocks, so each output pixel is written once, whole)."""
WORKSPACE_BYTES = 256 * 2**20
"""Work arrays kept between calls, per thread (see ``_workspace``)."""
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
_local = threading.local()


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


def _cached(key: tuple, compute) -> np.ndarray:
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = compute()
    with _cache_lock:
        _cache[key] = value
        while sum(item.nbytes for item in _cache.values()) > CACHE_BYTES and len(_cache) > 1:
            _cache.popitem(last=False)
    return value


def _kernel_spectra(network: Network, index: int, conv: Conv, geometry: _Geometry) -> np.ndarray:
    """``conj(rfft2(kernel))`` on the block grid, ``(fy, fx // 2 + 1, cin, cout)`` complex64."""

    def compute() -> np.ndarray:
        spectra = scipy.fft.rfft2(
            conv.kernel, s=(geometry.y.fft, geometry.x.fft), axes=(0, 1), workers=_WORKERS
        )
        return np.conjugate(spectra, out=spectra)  # correlation, as Keras computes it

    return _cached((network.fingerprint, index, geometry.y.fft, geometry.x.fft), compute)


def _pair_spectra(network: Network, index: int, conv: Conv, geometry: _Geometry) -> np.ndarray:
    """Full spectra of a one-input layer's kernels, two output channels per complex number.

    ``(ceil(cout / 2), fy, fx)``: channel ``2j`` in the real part, ``2j + 1`` in the imaginary
    part. Both outputs are real, so one complex inverse transform yields the pair, at about half
    the cost of two real inverse transforms.
    """

    def compute() -> np.ndarray:
        kernels = conv.kernel[:, :, 0, :]
        if kernels.shape[-1] % 2:
            kernels = np.concatenate([kernels, np.zeros_like(kernels[..., :1])], axis=-1)
        spectra = scipy.fft.fft2(
            kernels, s=(geometry.y.fft, geometry.x.fft), axes=(0, 1), workers=_WORKERS
        )
        np.conjugate(spectra, out=spectra)
        pairs = spectra[..., 0::2] + np.complex64(1j) * spectra[..., 1::2]
        return np.ascontiguousarray(np.moveaxis(pairs, -1, 0))

    return _cached((network.fingerprint, index, geometry.y.fft, geometry.x.fft, "pairs"), compute)


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
    shape = (*stage.geometry.padded, *x.shape[2:])
    key = f"layer 0 input {x.shape} at {stage.geometry.pad_before}"  # same region every time
    buffer = _workspace(key, shape, np.float32, zeros=True)
    py, px = stage.geometry.pad_before
    buffer[py : py + x.shape[0], px : px + x.shape[1]] = x
    return buffer


def _split(count: int, size: int) -> list[slice]:
    """``count`` items in runs of at most ``size``, at least one run per worker where possible."""
    size = max(1, min(size, -(-count // _WORKERS)))
    return [slice(a, min(a + size, count)) for a in range(0, count, size)]


def _workspace(name: str, shape: tuple[int, ...], dtype: type, *, zeros: bool = False):
    """An array of this thread kept between calls, by name and shape.

    The first touch of fresh memory (a page fault per 4 KiB) costs more than the FFT passes over
    it, so every large array is reused. Arrays made with ``zeros`` keep their zero padding: callers
    only ever write the same inner region of them.
    """
    store = getattr(_local, "store", None)
    if store is None:
        store = _local.store = {}
    key = (name, shape, np.dtype(dtype).str)
    array = store.get(key)
    if array is None:
        size = math.prod(shape) * np.dtype(dtype).itemsize
        if sum(item.nbytes for item in store.values()) + size > WORKSPACE_BYTES:
            store.clear()
        array = store[key] = np.zeros(shape, dtype) if zeros else np.empty(shape, dtype)
    return array


def _blocks(buffer: np.ndarray, geometry: _Geometry, chosen: list) -> np.ndarray:
    """The input blocks of the chosen (row, column, tile) instances, ``(ly, lx, k, cin)``."""
    if geometry.y.count == geometry.x.count == 1:
        return buffer[:, :, chosen[0][2] : chosen[-1][2] + 1]  # the padded tiles are the blocks
    ly = geometry.y.valid + geometry.kernel[0] - 1
    lx = geometry.x.valid + geometry.kernel[1] - 1
    blocks = _workspace("blocks", (ly, lx, len(chosen), buffer.shape[3]), np.float32)
    for k, (i, j, b) in enumerate(chosen):
        y0, x0 = i * geometry.y.valid, j * geometry.x.valid
        blocks[:, :, k] = buffer[y0 : y0 + ly, x0 : x0 + lx, b]
    return blocks


def _runs(chosen: list) -> list[slice]:
    """Runs of instances at the same block position on consecutive tiles."""
    runs, start = [], 0
    for k in range(1, len(chosen) + 1):
        if k == len(chosen) or chosen[k] != (*chosen[k - 1][:2], chosen[k - 1][2] + 1):
            runs.append(slice(start, k))
            start = k
    return runs


def _finish(stage: _Stage, rows: np.ndarray, chosen: list, target, offset, channels: slice) -> None:
    """Activation and pools of inverse-transformed blocks ``(valid_y, >= valid_x, k, c)``.

    Writes each block's outputs into ``target[..., tile, channels]``. A leading max-pool is
    taken first (a ReLU is non-decreasing, so it commutes with the max), over row pairs while
    rows are contiguous, then over columns straight into the target; ``rows`` is overwritten.
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
    width = stage.geometry.x.valid
    for run in _runs(chosen):
        i, j, b = chosen[run.start]
        k = slice(run.start, run.stop)  # blocks of consecutive tiles at one position: one call
        y0, x0 = offset[0] + i * vy, offset[1] + j * vx
        h, w = min(vy, out_h - i * vy), min(vx, out_w - j * vx)
        out = target[y0 : y0 + h, x0 : x0 + w, b : b + run.stop - run.start, channels]
        if rest:  # uncommon layer stacks: finish each block on its own
            block = rows[:, 0:width:size, k].copy()
            for dx in range(1, size):
                np.maximum(block, rows[:, dx:width:size, k], out=block)
            if conv.relu:
                np.maximum(block, 0.0, out=block)
            out[...] = _apply(block, rest)[:h, :w]
            continue
        if size == 1 and conv.relu:
            np.maximum(rows[:h, :w, k], 0.0, out=out)
            continue
        if size == 1:
            np.copyto(out, rows[:h, :w, k])
            continue
        np.maximum(rows[:h, 0 : w * size : size, k], rows[:h, 1 : w * size : size, k], out=out)
        for dx in range(2, size):
            np.maximum(out, rows[:h, dx : w * size : size, k], out=out)
        if conv.relu:
            np.maximum(out, 0.0, out=out)


def _run_stage(
    network: Network,
    stage: _Stage,
    buffer: np.ndarray,
    target: np.ndarray,
    offset: tuple[int, int],
    shared: dict | None,
) -> None:
    """Run one convolution stage from ``buffer`` into ``target`` (at ``offset``)."""
    run = _run_first if stage.conv.channels[0] == 1 else _run_mixing
    run(network, stage, buffer, target, offset, shared)


def _run_first(network, stage, buffer, target, offset, shared) -> None:
    """A layer with one input channel: the input's full spectrum times pairs of kernels.

    Each work item takes one block and a few channel pairs, laid out ``(pair, y, x)`` so every
    pass runs over long contiguous rows: product, DC bias, complex inverse transforms in place
    in a cache-sized scratch array, then the pools straight into the target.
    """
    geometry = stage.geometry
    fy, fx = geometry.y.fft, geometry.x.fft
    pairs = _pair_spectra(network, stage.index, stage.conv, geometry)
    cout = stage.conv.channels[1]
    bias = np.zeros(2 * len(pairs), np.float32)
    bias[:cout] = stage.conv.bias
    dc = (bias[0::2] + np.complex64(1j) * bias[1::2]) * np.float32(fy * fx)
    instances = stage.instances(buffer.shape[2])
    key = (geometry, buffer.shape)
    if shared is not None and key in shared:
        spectra = shared[key]
    else:
        spectra = np.empty((len(instances), fy, fx), np.complex64)

        def forward(part: slice) -> None:
            blocks = _blocks(buffer, geometry, instances[part])[..., 0]
            spectra[part] = np.moveaxis(scipy.fft.fft2(blocks, s=(fy, fx), axes=(0, 1)), -1, 0)

        _parallel(forward, _split(len(instances), 8))
        if shared is not None:
            shared[key] = spectra
    chunks = _split_runs(len(pairs), max(1, PAIR_BYTES // (fy * fx * 8)))

    def item(k: int) -> None:
        for chunk in chunks:  # the block's outputs stay in the caches while its channels arrive
            work = _workspace("pairs", (chunk.stop - chunk.start, fy, fx), np.complex64)
            np.multiply(spectra[k], pairs[chunk], out=work)
            work[:, 0, 0] += dc[chunk]
            scipy.fft.ifft(work, axis=1, overwrite_x=True)
            scipy.fft.ifft(work[:, : geometry.y.valid], axis=2, overwrite_x=True)
            planes = work[:, : geometry.y.valid].view(np.float32)  # (pair, y, 2 x): re, im
            _finish_planes(stage, planes, instances[k], target, offset, 2 * chunk.start)

    _parallel(item, list(range(len(instances))))


def _finish_planes(stage: _Stage, planes, instance, target, offset, first: int) -> None:
    """``_finish`` for pair-packed planes ``(pair, valid_y, 2 fx)``: channels ``first + 2j (+1)``."""
    conv, after = stage.conv, stage.after
    count = min(2 * len(planes), conv.channels[1] - first)
    size = after[0].size if after and isinstance(after[0], Pool) else 1
    if after[1 if size > 1 else 0 :]:  # uncommon layer stacks: one channel at a time
        for c in range(count):
            rows = planes[c // 2, :, c % 2 :: 2, None, None]
            _finish(stage, rows, [instance], target, offset, slice(first + c, first + c + 1))
        return
    if size > 1:  # pool pairs of rows first, while they are contiguous
        pooled = planes[:, 0::size]
        for dy in range(1, size):
            np.maximum(pooled, planes[:, dy::size], out=pooled)
        planes = pooled
    i, j, b = instance
    vy, vx = stage.geometry.y.valid // size, stage.geometry.x.valid // size
    y0, x0 = offset[0] + i * vy, offset[1] + j * vx
    h, w = min(vy, stage.out_shape[0] - i * vy), min(vx, stage.out_shape[1] - j * vx)
    step = 2 * size  # floats from one output column to the next: (re, im) per input column
    pooled = _workspace("pooled", (count, h, w), np.float32)  # contiguous planes, in the caches
    for c in range(count):
        pair, half = divmod(c, 2)
        columns = [planes[pair, :h, half + 2 * dx : step * w : step] for dx in range(size)]
        np.maximum(columns[0], columns[-1], out=pooled[c])
        for more in columns[1:-1]:
            np.maximum(pooled[c], more, out=pooled[c])
    if conv.relu:
        np.maximum(pooled, 0.0, out=pooled)
    # one pass writing whole pixels: channel-by-channel writes would each touch every cache line
    target[y0 : y0 + h, x0 : x0 + w, b, first : first + count] = pooled.transpose(1, 2, 0)


def _run_mixing(network, stage, buffer, target, offset, shared) -> None:
    """A layer with several input channels, in batches of blocks (phases 1-3, module docstring)."""
    del shared  # only first layers see the shared input
    geometry = stage.geometry
    kernels = _kernel_spectra(network, stage.index, stage.conv, geometry)
    fy, fxh = geometry.spectrum
    ly = geometry.y.valid + geometry.kernel[0] - 1
    cin, cout = stage.conv.channels
    dc = stage.conv.bias * np.float32(geometry.y.fft * geometry.x.fft)  # +bias at every pixel
    instances = stage.instances(buffer.shape[2])
    per_block = fy * fxh * max(cin, cout) * 8
    for batch in _split_runs(len(instances), max(1, WORK_BYTES // per_block)):
        chosen = instances[batch]
        spectra = _workspace("spectra", (fy, fxh, len(chosen), cin), np.complex64)
        spectra[ly:] = 0  # the y transform below runs in place over the zero-padded rows
        rows = _workspace("rows", (fy, fxh, len(chosen), cout), np.complex64)

        def forward(part: slice, spectra=spectra, chosen=chosen) -> None:
            blocks = _blocks(buffer, geometry, chosen[part])
            spectra[:ly, :, part] = scipy.fft.rfft(blocks, n=geometry.x.fft, axis=1)

        def mix(part: slice, spectra=spectra, rows=rows) -> None:
            scipy.fft.fft(spectra[:, part], axis=0, overwrite_x=True)
            np.matmul(spectra[:, part], kernels[:, part], out=rows[:, part])
            if part.start == 0:
                rows[0, 0] += dc
            scipy.fft.ifft(rows[:, part], axis=0, overwrite_x=True)

        def inverse(part: slice, rows=rows, chosen=chosen) -> None:
            blocks = scipy.fft.irfft(rows[: geometry.y.valid, :, part], n=geometry.x.fft, axis=1)
            _finish(stage, blocks, chosen[part], target, offset, slice(None))

        _parallel(forward, _split(len(chosen), 8))
        width = max(1, COLUMN_BYTES // (fy * len(chosen) * max(cin, cout) * 8))
        _parallel(mix, _split_runs(fxh, width))
        _parallel(inverse, _split(len(chosen), max(1, BLOCK_BYTES // 2 // per_block)))


def _split_runs(count: int, size: int) -> list[slice]:
    return [slice(a, min(a + size, count)) for a in range(0, count, size)]


def run_networks(networks: list[Network], tiles: np.ndarray) -> list[np.ndarray]:
    """Raw outputs ``(n, ty / stride, tx / stride)`` of each network on tiles ``(n, ty, tx)``.

    Tile sides must be multiples of each network's stride. Outputs equal the Keras model applied
    to each tile with "same" zero padding at the tile edges. Tiles ``(n, ty, tx, c)`` feed
    networks with ``c`` input channels (z context): their first layer mixes the channels per
    frequency like any later layer (``_run_mixing``).
    """
    tiles = np.asarray(tiles, dtype=np.float32)
    channels = 1 if tiles.ndim == 3 else tiles.shape[-1]
    for network in networks:
        if network.in_channels != channels:
            raise ValueError(
                f"a network takes {network.in_channels} input channel(s); the tiles have {channels}"
            )
    # One BLAS thread per worker: OpenBLAS's own threads on 40 x 40 products cost more than
    # they save (7x slower measured on 2 cores); parallelism comes from the work items instead.
    with _blas.limit(limits=1, user_api="blas"):
        # (y, x, tile, channel): the layout of every layer's input
        layout = (
            np.moveaxis(tiles, 0, -1)[..., None] if tiles.ndim == 3 else tiles.transpose(1, 2, 0, 3)
        )
        image = np.ascontiguousarray(layout, dtype=np.float32)
        shared: dict = {}  # first-layer input transforms, reused by networks with the same blocks
        outputs = []
        for network in networks:
            leading, stages = _plan(network, image.shape[:2])
            buffer = _padded_input(stages[0], _apply(image.copy(), leading))
            for number, stage in enumerate(stages):
                if number + 1 < len(stages):
                    following = stages[number + 1]
                    offset = following.geometry.pad_before
                    target = _workspace(
                        f"layer {number + 1} input {stage.out_shape} at {offset}",
                        (*following.geometry.padded, len(tiles), stage.conv.channels[1]),
                        np.float32,
                        zeros=True,
                    )
                else:
                    target = np.empty((*stage.out_shape, len(tiles), 1), np.float32)
                    offset = (0, 0)
                share = number == 0 and not leading  # the input itself, as every network sees it
                _run_stage(network, stage, buffer, target, offset, shared if share else None)
                buffer = target
            outputs.append(np.moveaxis(buffer[..., 0], -1, 0).copy())
        return outputs
