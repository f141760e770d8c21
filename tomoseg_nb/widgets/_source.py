"""Uniform slice access for widgets: a tomogram, a micrograph, an array or a file path.

A micrograph ``(y, x)`` is a volume of one slice, so every viewer handles both the same way.
Slices are read on demand (memory-mapped files stay on disk) and the last few are kept.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInputError
from ..volume import Volume, open_volume

CACHED_SLICES = 4


class SliceSource:
    """Read z slices of a 2D or 3D dataset as float32 arrays, keeping the last few.

    Parameters
    ----------
    data : Volume, array or path
        ``(z, y, x)`` or ``(y, x)``; a path is opened lazily with ``open_volume``.
    name : str, optional
        Shown in messages; defaults to the file stem.
    """

    def __init__(self, data: Volume | np.ndarray | str | os.PathLike, name: str | None = None):
        if isinstance(data, str | os.PathLike):
            data = open_volume(Path(data), ndim=None)
        self.voxel_size = float(data.voxel_size) if isinstance(data, Volume) else 1.0
        self.name = name or (data.name if isinstance(data, Volume) else "array")
        self._array: Any = data.data if isinstance(data, Volume) else data
        if not hasattr(self._array, "shape") or len(self._array.shape) not in (2, 3):
            shape = getattr(self._array, "shape", None)
            raise BadInputError(
                f"{self.name}: shape {shape} is neither a 2D image nor a 3D volume; pass (y, x) "
                "or (z, y, x) data"
            )
        self.is_2d = len(self._array.shape) == 2
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    @property
    def dtype(self) -> np.dtype:
        """Stored type (a probability map may hold integers: ``maps.decode_probabilities``)."""
        return np.dtype(self._array.dtype)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(z, y, x)``, with z = 1 for a 2D image."""
        shape = tuple(int(n) for n in self._array.shape)
        return (1, *shape) if self.is_2d else shape  # type: ignore[return-value]

    def slice(self, z: int) -> np.ndarray:
        """Slice ``z`` as float32 (read-only view of the cache; copy before changing it)."""
        if z in self._cache:
            self._cache.move_to_end(z)
            return self._cache[z]
        raw = self._array if self.is_2d else self._array[z]
        image = np.asarray(raw, dtype=np.float32)
        image.flags.writeable = False
        self._cache[z] = image
        while len(self._cache) > CACHED_SLICES:
            self._cache.popitem(last=False)
        return image

    def block(self, z: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Rows ``y0:y1``, columns ``x0:x1`` of slice ``z`` as a new float32 array.

        Reads the data directly, not the cache, so another thread (training) may call it.
        """
        source = self._array if self.is_2d else self._array[z]
        return np.array(source[y0:y1, x0:x1], dtype=np.float32)

    def region(self, z: int, y0: int, x0: int, size: int, fill: float) -> np.ndarray:
        """The ``size x size`` block of slice ``z`` from ``(y0, x0)``; outside pixels are ``fill``."""
        _, height, width = self.shape
        out = np.full((size, size), fill, dtype=np.float32)
        ys, xs = max(0, y0), max(0, x0)
        ye, xe = min(height, y0 + size), min(width, x0 + size)
        if ys < ye and xs < xe:
            out[ys - y0 : ye - y0, xs - x0 : xe - x0] = self.block(z, ys, ye, xs, xe)
        return out

    def slab(self, z: int, thickness: int) -> np.ndarray:
        """Mean of ``thickness`` slices centred on ``z`` (cut at the ends of the volume).

        Averaging a few slices lifts faint membranes and filaments out of the noise, as
        e2tomoseg's and IMOD's slab views do; 1 is slice ``z`` itself.
        """
        if thickness <= 1 or self.is_2d:
            return self.slice(z)
        low = max(0, z - (thickness - 1) // 2)
        high = min(self.shape[0], low + thickness)
        return np.mean(np.asarray(self._array[low:high], dtype=np.float32), axis=0)

    def section(self, plane: str, index: int) -> np.ndarray:
        """A side view as float32: ``"xz"`` is row ``index`` of every slice, ``(z, x)``; ``"yz"``
        column ``index``, transposed to ``(y, z)`` so y runs down as in the slice view."""
        if plane == "xz":
            return np.array(self._array[:, index, :], dtype=np.float32)
        if plane == "yz":
            return np.array(self._array[:, :, index], dtype=np.float32).T
        raise ValueError(f"side view {plane!r}: use 'xz' or 'yz'")

    def value(self, z: int, y: int, x: int) -> float:
        """One voxel."""
        return float(self.slice(z)[y, x])


def as_source(
    data: SliceSource | Volume | np.ndarray | str | os.PathLike, name: str | None = None
) -> SliceSource:
    """``data`` as a SliceSource; an existing one is shared (one reader and cache per tomogram)."""
    return data if isinstance(data, SliceSource) else SliceSource(data, name=name)
