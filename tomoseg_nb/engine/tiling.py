"""Cut slices into overlapping tiles whose stitched outputs equal whole-slice application.

Each tile keeps a margin of at least the network's reach around the part of the output it is
responsible for (its *core*), except where the tile touches the slice edge, where the network's
own zero padding applies exactly as on the whole slice. Tiles start on the pooling grid (multiples
of the network's stride), so max-pool windows are the same as in the whole slice, and all tiles of
a slice have one size, so a compiled network is reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from ..errors import BadInputError


@dataclass(frozen=True)
class AxisTiles:
    """Tiles along one axis of length ``length`` (input pixels, a multiple of the stride).

    Attributes
    ----------
    size : int
        Length of every tile.
    starts : tuple of int
        Where each tile starts.
    cores : tuple of (int, int)
        The span ``[begin, end)`` whose output each tile provides; together they cover the axis
        exactly once.
    """

    size: int
    starts: tuple[int, ...]
    cores: tuple[tuple[int, int], ...]


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def plan_axis(length: int, tile_px: int, margin_px: int, stride: int) -> AxisTiles:
    """Tiles of at most ``tile_px`` covering ``length`` pixels with ``margin_px`` of context.

    The axis is split into as few, equal cores as fit in ``tile_px - 2 * margin_px``; each tile is
    its core plus the margin, slid inwards at the slice edges (so every tile has the same size).
    """
    if length % stride or margin_px % stride:
        raise ValueError("length and margin must be multiples of the stride")
    tile_px = tile_px // stride * stride
    if length <= tile_px:
        return AxisTiles(length, (0,), ((0, length),))
    usable = tile_px - 2 * margin_px
    smallest = 2 * margin_px + max(margin_px, stride)  # at most 9x the work of one whole slice
    if tile_px < smallest:
        raise BadInputError(
            f"tile_px={tile_px} leaves too little room inside the {margin_px}-pixel margin this "
            f"network needs on each side; use tile_px of at least {smallest}"
        )
    count = -(-length // usable)
    core = _round_up(-(-length // count), stride)
    size = min(length, core + 2 * margin_px)
    cores = tuple(
        (begin, min(begin + core, length)) for begin in range(0, length, core) if begin < length
    )
    starts = tuple(min(max(begin - margin_px, 0), length - size) for begin, _ in cores)
    return AxisTiles(size, starts, cores)


@dataclass(frozen=True)
class Tile:
    """One tile of one slice: where to read it and which output region it provides."""

    index: int  # slice
    y: int  # tile start
    x: int
    core_y: tuple[int, int]  # output span, input pixels of the (padded) slice
    core_x: tuple[int, int]


def plan_tiles(
    count: int, shape: tuple[int, int], tile_px: int, margin_px: int, stride: int
) -> tuple[tuple[int, int], list[Tile]]:
    """Tile size ``(ty, tx)`` and the tiles of ``count`` slices of ``shape`` (multiples of stride)."""
    along_y = plan_axis(shape[0], tile_px, margin_px, stride)
    along_x = plan_axis(shape[1], tile_px, margin_px, stride)
    tiles = [
        Tile(index, y, x, core_y, core_x)
        for index in range(count)
        for (y, core_y), (x, core_x) in product(
            zip(along_y.starts, along_y.cores, strict=True),
            zip(along_x.starts, along_x.cores, strict=True),
        )
    ]
    return (along_y.size, along_x.size), tiles
