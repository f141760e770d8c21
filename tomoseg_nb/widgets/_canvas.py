"""Thin ipycanvas helpers shared by the widgets: layered canvases, placed images, throttling."""

from __future__ import annotations

import time

import numpy as np
from ipycanvas import Canvas, MultiCanvas
from ipywidgets import Layout

from .view_state import Window


def layered_canvas(n_layers: int, height: int, width: int) -> MultiCanvas:
    """A stack of ``n_layers`` transparent canvases; events come from the top one."""
    canvas = MultiCanvas(
        n_layers,
        width=width,
        height=height,
        layout=Layout(width=f"{width}px", height=f"{height}px", flex="0 0 auto"),
    )
    return canvas


def put_block(layer: Canvas, block: np.ndarray, window: Window) -> None:
    """Draw ``block`` (uint8 grey or RGBA) where ``window`` says, scaled without smoothing.

    ipycanvas's ``put_image_data`` honours the canvas transform, so the browser does the integer
    magnification and the kernel never sends more pixels than the slice block itself.
    """
    layer.save()
    layer.image_smoothing_enabled = False
    layer.set_transform(window.scale, 0, 0, window.scale, window.offset_x, window.offset_y)
    layer.put_image_data(np.ascontiguousarray(block), 0, 0)
    layer.restore()


class Throttle:
    """Let an action through at most once per ``interval_s`` (mouse moves arrive faster than
    redraws need to happen; the state is updated on every event, the canvas only when due)."""

    def __init__(self, interval_s: float = 1 / 30):
        self.interval_s = interval_s
        self._last = -float("inf")

    def ready(self) -> bool:
        """True (and restart the interval) when the last pass is older than the interval."""
        now = time.perf_counter()
        if now - self._last < self.interval_s:
            return False
        self._last = now
        return True

    def reset(self) -> None:
        """Make the next ``ready()`` pass."""
        self._last = -float("inf")
