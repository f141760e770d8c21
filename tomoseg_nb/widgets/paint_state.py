"""Brush, eraser and flood fill on one boolean tile mask, with undo and redo.

Plain numpy, no widgets (the napari Labels layer pattern): the mask painter forwards mouse events
here and tests drive it with synthetic strokes. Positions are *mask pixel* coordinates ``(y, x)``
(row, column), continuous, with the centre of pixel ``(i, j)`` at exactly ``(i, j)``; a brush of
radius ``r`` paints every pixel whose centre lies within ``r`` of the stroke's path. Successive
drag positions are joined by straight segments, so a stroke has no gaps however few mouse-move
events reach the kernel.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from scipy import ndimage

from ._choice import Choice

MODES = ("paint", "erase", "fill")
HISTORY = 100
"""Undo steps kept per mask."""

MIN_BRUSH_RADIUS = 0.5
"""Radius that paints exactly the pixel under the pointer."""

_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


class PainterState:
    """One tile's mask being painted.

    Parameters
    ----------
    mask : array of bool
        ``(size, size)`` starting mask (copied).
    brush_radius : float
        In mask pixels.
    mode : {"paint", "erase", "fill"}
        What a press does: paint or erase along the stroke, or flood-fill the clicked region.

    Examples
    --------
    >>> state = PainterState(np.zeros((8, 8), bool), brush_radius=0.5)
    >>> state.press(2, 1), state.drag(2, 5), state.release()  # changed, changed, one undo step
    (True, True, True)
    >>> np.flatnonzero(state.mask[2]).tolist()
    [1, 2, 3, 4, 5]
    >>> state.undo(); int(state.mask.sum())
    True
    0
    """

    mode = Choice(MODES, "painter mode")

    def __init__(self, mask: np.ndarray, *, brush_radius: float = 3.0, mode: str = "paint"):
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"a tile mask is 2D, got shape {mask.shape}")
        self.mask = mask.astype(bool, copy=True)
        self.brush_radius = brush_radius
        self.mode = mode
        self._undo: deque[np.ndarray] = deque(maxlen=HISTORY)
        self._redo: deque[np.ndarray] = deque(maxlen=HISTORY)
        self._before: np.ndarray | None = None
        self._last: tuple[float, float] | None = None

    @property
    def brush_radius(self) -> float:
        """Brush radius in mask pixels (at least 0.5, one pixel)."""
        return self._brush_radius

    @brush_radius.setter
    def brush_radius(self, value: float) -> None:
        self._brush_radius = max(MIN_BRUSH_RADIUS, float(value))

    @property
    def stroking(self) -> bool:
        """True between a press and its release."""
        return self._before is not None

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    # strokes ---------------------------------------------------------------------------------
    def press(self, y: float, x: float) -> bool:
        """Button down at mask position ``(y, x)``; returns True if the mask changed."""
        if self.stroking:
            self.release()
        self._before = self.mask.copy()
        if self.mode == "fill":
            self._last = None
            return self._flood(y, x)
        self._last = (y, x)
        return self._stamp((y, x), (y, x))

    def drag(self, y: float, x: float) -> bool:
        """Pointer moved to ``(y, x)`` with the button down: extends the stroke (True if changed)."""
        if not self.stroking or self._last is None:
            return False
        start, self._last = self._last, (y, x)
        return self._stamp(start, (y, x))

    def release(self) -> bool:
        """Button up: ends the stroke. True when it changed the mask (one undo step, save it)."""
        if not self.stroking:
            return False
        before, self._before, self._last = self._before, None, None
        if before is None or np.array_equal(before, self.mask):
            return False
        self._push(before)
        return True

    # one-shot edits --------------------------------------------------------------------------
    def fill(self, y: float, x: float) -> bool:
        """Flood-fill the 4-connected region around ``(y, x)`` with True (one undo step)."""
        before = self.mask.copy()
        if not self._flood(y, x):
            return False
        self._push(before)
        return True

    def clear(self) -> bool:
        """Erase the whole mask (one undo step); True if anything was painted."""
        if not self.mask.any():
            return False
        self._push(self.mask.copy())
        self.mask[:] = False
        return True

    def undo(self) -> bool:
        """Restore the mask before the last edit; True if there was one."""
        if self.stroking:
            self.release()
        if not self._undo:
            return False
        self._redo.append(self.mask)
        self.mask = self._undo.pop()
        return True

    def redo(self) -> bool:
        """Re-apply the last undone edit; True if there was one."""
        if self.stroking:
            self.release()
        if not self._redo:
            return False
        self._undo.append(self.mask)
        self.mask = self._redo.pop()
        return True

    # internals -------------------------------------------------------------------------------
    def _push(self, before: np.ndarray) -> None:
        self._undo.append(before)
        self._redo.clear()

    def _stamp(self, start: tuple[float, float], end: tuple[float, float]) -> bool:
        """Set pixels within the brush radius of segment start-end; True if any changed."""
        radius = self.brush_radius
        height, width = self.mask.shape
        y0 = max(0, int(np.floor(min(start[0], end[0]) - radius)))
        y1 = min(height, int(np.ceil(max(start[0], end[0]) + radius)) + 1)
        x0 = max(0, int(np.floor(min(start[1], end[1]) - radius)))
        x1 = min(width, int(np.ceil(max(start[1], end[1]) + radius)) + 1)
        if y0 >= y1 or x0 >= x1:
            return False
        rows, columns = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        ay, ax = start
        dy, dx = end[0] - ay, end[1] - ax
        length2 = dy * dy + dx * dx
        if length2 > 0:
            t = np.clip(((rows - ay) * dy + (columns - ax) * dx) / length2, 0.0, 1.0)
        else:
            t = 0.0
        distance2 = (rows - (ay + t * dy)) ** 2 + (columns - (ax + t * dx)) ** 2
        inside = distance2 <= radius * radius
        value = self.mode == "paint"
        target = self.mask[y0:y1, x0:x1]
        changed = bool(np.any(target[inside] != value))
        target[inside] = value
        return changed

    def _flood(self, y: float, x: float) -> bool:
        row, column = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
        height, width = self.mask.shape
        if not (0 <= row < height and 0 <= column < width) or self.mask[row, column]:
            return False
        regions, _ = ndimage.label(~self.mask, structure=_FOUR_CONNECTED)
        self.mask |= regions == regions[row, column]
        return True
