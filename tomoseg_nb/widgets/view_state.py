"""Where a slice viewer looks: current slice, zoom, pan, and the mouse gestures that change them.

Plain Python, no widgets: the viewer forwards canvas events here and redraws what this says, and
tests drive it with synthetic events. Two coordinate frames appear:

- *canvas* ``(x, y)``: pixels of the canvas element, x to the right, y down, as ipycanvas reports
  them (continuous; ``(0, 0)`` is the top-left corner of the canvas).
- *image* ``(y, x)``: pixels of the slice, the centre of a pixel at its integer index, so pixel
  ``(i, j)`` covers ``[i - 0.5, i + 0.5) x [j - 0.5, j + 0.5)``.

Zoom moves between fixed levels ``1/k`` and ``k`` so that a zoomed-out slice is binned by an exact
integer before it is sent (block means, which also average the noise) and a zoomed-in one is drawn
at an exact integer magnification by the browser: no resampling blur, and at most one canvas worth
of pixels leaves the kernel per redraw, whatever the size of the tomogram.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

Position = TypeVar("Position", float, np.ndarray)
"""One image or canvas coordinate, or an array of them (tools draw many marks at once)."""

ZOOM_LEVELS = (
    1 / 16,
    1 / 12,
    1 / 8,
    1 / 6,
    1 / 5,
    1 / 4,
    1 / 3,
    1 / 2,
    1.0,
    2.0,
    3.0,
    4.0,
    6.0,
    8.0,
    12.0,
    16.0,
    24.0,
    32.0,
)
"""Canvas pixels per image pixel."""

CLICK_TOLERANCE_PX = 4.0
"""A press and release closer than this (canvas pixels) is a click; farther is a drag (pan)."""

WHEEL_NOTCH_PX = 100.0
"""Wheel delta (pixel mode) of one mouse-wheel notch in Chrome and Firefox; trackpads send many
small deltas, which add up to a zoom level per this much."""

WHEEL_NOTCH_MIN_PX = 40.0
"""A single wheel event at least this large is one notch, one zoom level, whatever its size
(browsers and mice report 50 to 150 per notch; counting them as 100s made one notch two levels)."""

Z_KEYS = {"ArrowUp": 1, "PageUp": 1, "w": 1, "ArrowDown": -1, "PageDown": -1, "s": -1}
ZOOM_KEYS = {"+": 1, "=": 1, "-": -1, "_": -1}
FIT_KEYS = ("0", "Home")


@dataclass(frozen=True)
class Window:
    """The block of a slice to send for one redraw and where it lands on the canvas.

    Rows ``y0:y1`` and columns ``x0:x1`` of the slice, averaged in ``binning x binning`` blocks
    (the last block of a row or column may be partial). Sent pixel ``(r, c)`` is drawn with its
    top-left corner at canvas ``(offset_x + c * scale, offset_y + r * scale)``, ``scale`` canvas
    pixels wide.
    """

    y0: int
    y1: int
    x0: int
    x1: int
    binning: int
    scale: float
    offset_x: float
    offset_y: float

    @property
    def sent_shape(self) -> tuple[int, int]:
        """Shape of the binned block that is sent."""
        return (
            -(-(self.y1 - self.y0) // self.binning),
            -(-(self.x1 - self.x0) // self.binning),
        )


@dataclass
class ViewState:
    """Current slice, zoom and pan of a viewer, and the gestures that change them.

    Parameters
    ----------
    slice_shape : (int, int)
        ``(height, width)`` of one slice in pixels.
    n_slices : int
        Number of z slices (1 for a micrograph).
    view_shape : (int, int)
        ``(height, width)`` of the canvas in canvas pixels.

    Examples
    --------
    >>> state = ViewState((1024, 1024), n_slices=64, view_shape=(512, 512))
    >>> state.scale, state.z
    (0.5, 32)
    >>> state.canvas_to_image(256.0, 256.0)
    (511.5, 511.5)
    """

    slice_shape: tuple[int, int]
    n_slices: int = 1
    view_shape: tuple[int, int] = (640, 640)
    z: int = -1
    zoom_index: int = -1
    centre_y: float = 0.0
    centre_x: float = 0.0
    pointer: tuple[float, float] | None = None
    _press: tuple[float, float] | None = field(default=None, repr=False)
    _last: tuple[float, float] | None = field(default=None, repr=False)
    _dragging: bool = field(default=False, repr=False)
    _wheel: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.slice_shape = (int(self.slice_shape[0]), int(self.slice_shape[1]))
        self.view_shape = (int(self.view_shape[0]), int(self.view_shape[1]))
        if min(self.slice_shape) < 1 or min(self.view_shape) < 1 or self.n_slices < 1:
            raise ValueError(
                f"slice shape {self.slice_shape}, view shape {self.view_shape} and "
                f"{self.n_slices} slices: all must be at least 1"
            )
        if self.z < 0:
            self.z = self.n_slices // 2
        self.set_z(self.z)
        if self.zoom_index < 0:
            self.fit()

    # geometry -------------------------------------------------------------------------------
    @property
    def scale(self) -> float:
        """Canvas pixels per image pixel."""
        return ZOOM_LEVELS[self.zoom_index]

    def fit(self) -> None:
        """Largest zoom level at which the whole slice fits the canvas, centred."""
        fits = min(v / s for v, s in zip(self.view_shape, self.slice_shape, strict=True))
        self.zoom_index = max(
            [0] + [i for i, level in enumerate(ZOOM_LEVELS) if level <= fits + 1e-9]
        )
        self.centre_y = (self.slice_shape[0] - 1) / 2
        self.centre_x = (self.slice_shape[1] - 1) / 2

    def canvas_to_image(self, x: float, y: float) -> tuple[float, float]:
        """Image ``(y, x)`` (continuous) under canvas point ``(x, y)``."""
        height, width = self.view_shape
        return (
            self.centre_y + (y - height / 2) / self.scale,
            self.centre_x + (x - width / 2) / self.scale,
        )

    def image_to_canvas(self, y: Position, x: Position) -> tuple[Position, Position]:
        """Canvas ``(x, y)`` of image point ``(y, x)`` (or of arrays of points)."""
        height, width = self.view_shape
        return (
            width / 2 + (x - self.centre_x) * self.scale,
            height / 2 + (y - self.centre_y) * self.scale,
        )

    def pixel_at(self, x: float, y: float) -> tuple[int, int] | None:
        """Slice pixel ``(row, column)`` under canvas point ``(x, y)``, or None off the slice."""
        image_y, image_x = self.canvas_to_image(x, y)
        row, column = math.floor(image_y + 0.5), math.floor(image_x + 0.5)
        if 0 <= row < self.slice_shape[0] and 0 <= column < self.slice_shape[1]:
            return row, column
        return None

    def window(self) -> Window | None:
        """What to send for the current view; None when no part of the slice is visible."""
        scale = self.scale
        binning = round(1 / scale) if scale < 1 else 1
        height, width = self.view_shape
        lo_y, lo_x = self.canvas_to_image(0.0, 0.0)
        hi_y, hi_x = self.canvas_to_image(float(width), float(height))
        spans = []
        for lo, hi, size in ((lo_y, hi_y, self.slice_shape[0]), (lo_x, hi_x, self.slice_shape[1])):
            first = max(0, math.floor(lo + 0.5))
            last = min(size - 1, math.floor(hi + 0.5))
            if first > last:
                return None
            # Blocks anchored at pixel 0 so panning never changes which pixels are averaged.
            start = first // binning * binning
            stop = min(size, (last // binning + 1) * binning)
            spans.append((start, stop))
        (y0, y1), (x0, x1) = spans
        offset_x, offset_y = self.image_to_canvas(y0 - 0.5, x0 - 0.5)
        return Window(y0, y1, x0, x1, binning, binning * scale, offset_x, offset_y)

    # changes ---------------------------------------------------------------------------------
    def set_z(self, z: int) -> bool:
        """Go to slice ``z`` (clamped to the volume); True when it changed."""
        z = min(max(int(z), 0), self.n_slices - 1)
        changed = z != self.z
        self.z = z
        return changed

    def step_z(self, steps: int) -> bool:
        """Move ``steps`` slices up (positive) or down; True when it changed."""
        return self.set_z(self.z + steps)

    def zoom_by(self, steps: int, x: float | None = None, y: float | None = None) -> bool:
        """Zoom ``steps`` levels in (positive) or out, keeping the image point under ``(x, y)``.

        Without a point the canvas centre stays put. True when the zoom changed.
        """
        index = min(max(self.zoom_index + int(steps), 0), len(ZOOM_LEVELS) - 1)
        if index == self.zoom_index:
            return False
        height, width = self.view_shape
        x = width / 2 if x is None else x
        y = height / 2 if y is None else y
        anchor_y, anchor_x = self.canvas_to_image(x, y)
        self.zoom_index = index
        self.centre_y = anchor_y - (y - height / 2) / self.scale
        self.centre_x = anchor_x - (x - width / 2) / self.scale
        self._clamp_centre()
        return True

    def pan_by(self, dx: float, dy: float) -> bool:
        """Move the slice by ``(dx, dy)`` canvas pixels (it follows the mouse); True if it moved."""
        before = (self.centre_y, self.centre_x)
        self.centre_x -= dx / self.scale
        self.centre_y -= dy / self.scale
        self._clamp_centre()
        return before != (self.centre_y, self.centre_x)

    def centre_on(self, y: float, x: float) -> None:
        """Show image point ``(y, x)`` at the canvas centre (jump to a tile or a pick)."""
        self.centre_y, self.centre_x = float(y), float(x)
        self._clamp_centre()

    def _clamp_centre(self) -> None:
        # The centre stays on the slice, so the slice can never be panned out of sight.
        self.centre_y = min(max(self.centre_y, -0.5), self.slice_shape[0] - 0.5)
        self.centre_x = min(max(self.centre_x, -0.5), self.slice_shape[1] - 0.5)

    # gestures --------------------------------------------------------------------------------
    def press(self, x: float, y: float) -> None:
        """Mouse button down at canvas ``(x, y)``."""
        self._press = self._last = self.pointer = (x, y)
        self._dragging = False

    def drag(self, x: float, y: float) -> bool:
        """Mouse moved to canvas ``(x, y)``; pans while the button is down. True if the view moved."""
        self.pointer = (x, y)
        if self._press is None or self._last is None:
            return False
        if not self._dragging:
            distance = math.hypot(x - self._press[0], y - self._press[1])
            if distance < CLICK_TOLERANCE_PX:
                return False
            self._dragging = True
        dx, dy = x - self._last[0], y - self._last[1]
        self._last = (x, y)
        return self.pan_by(dx, dy)

    def release(self, x: float, y: float) -> tuple[int, int, int] | None:
        """Mouse button up at canvas ``(x, y)``.

        Returns the clicked voxel ``(z, row, column)`` when the press did not turn into a drag
        and landed on the slice, otherwise None.
        """
        if self._press is None:
            return None
        clicked = not self._dragging
        if self._dragging:
            self.drag(x, y)
        self._press = self._last = None
        self._dragging = False
        pixel = self.pixel_at(x, y) if clicked else None
        return None if pixel is None else (self.z, *pixel)

    def cancel_gesture(self) -> None:
        """The mouse left the canvas: forget a pending press (so no click fires later) and the
        pointer (so a key press does not read out a voxel the mouse has left)."""
        self._press = self._last = self.pointer = None
        self._dragging = False

    def wheel(self, delta_y: float) -> bool:
        """Mouse wheel turned by ``delta_y`` (browser units); zooms at the pointer.

        One notch is one zoom level: browsers report 50-150 per notch in pixel mode and 3 per
        notch in line mode (Firefox), so any event that large is one level. Trackpad deltas are
        small and accumulate. True if the zoom changed.
        """
        if delta_y == 0:
            return False
        if abs(delta_y) < 4:
            delta_y *= WHEEL_NOTCH_PX / 3
        if abs(delta_y) >= WHEEL_NOTCH_MIN_PX:
            self._wheel = 0.0
            steps = 1 if delta_y > 0 else -1
        else:
            self._wheel += delta_y
            steps = int(self._wheel / WHEEL_NOTCH_PX)
            if steps == 0:
                return False
            self._wheel -= steps * WHEEL_NOTCH_PX
        x, y = self.pointer if self.pointer is not None else (None, None)
        return self.zoom_by(-steps, x, y)

    def key(self, key: str) -> bool:
        """Keyboard shortcut: up/down, PageUp/PageDown, w/s change slice; +/- zoom; 0, Home fit.

        True when the view changed.
        """
        if key in Z_KEYS:
            return self.step_z(Z_KEYS[key])
        if key in ZOOM_KEYS:
            return self.zoom_by(ZOOM_KEYS[key])
        if key in FIT_KEYS:
            before = (self.zoom_index, self.centre_y, self.centre_x)
            self.fit()
            return before != (self.zoom_index, self.centre_y, self.centre_x)
        return False
