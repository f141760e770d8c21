"""Canvas traffic without a browser: record what the kernel sends, and inject browser events.

Used by the benchmark (bytes per redraw) and by tests, which replay exactly the messages the
ipycanvas front end sends (``{"event": "mouse_down", "x": ..., "y": ...}``) so the widgets'
event forwarding is exercised, not bypassed.
"""

from __future__ import annotations

import builtins
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from ipycanvas import MultiCanvas
from ipycanvas.canvas import _CANVAS_MANAGER, COMMANDS
from PIL import Image


@dataclass
class CanvasTraffic:
    """Messages sent to the front end while recording."""

    messages: int = 0
    bytes: int = 0
    images: list[builtins.bytes] = field(default_factory=list)  # the field above shadows bytes
    commands: list[tuple[str, list]] = field(default_factory=list)

    def named(self, name: str) -> list[list]:
        """Arguments of every command called ``name`` (``"strokeRect"``, ``"putImageData"``...)."""
        return [args for command, args in self.commands if command == name]

    def decoded(self) -> list[np.ndarray]:
        """The PNG/JPEG images sent with ``put_image_data``, as arrays."""
        return [np.asarray(Image.open(io.BytesIO(data))) for data in self.images]


@contextmanager
def record_canvas_traffic() -> Iterator[CanvasTraffic]:
    """Count messages and bytes the canvases send (the widgets still work as usual)."""
    traffic = CanvasTraffic()
    original = _CANVAS_MANAGER.send

    def send(content: dict, buffers: list | None = None) -> None:
        buffers = list(buffers or [])
        traffic.messages += 1
        traffic.bytes += sum(memoryview(b).nbytes for b in buffers)
        # The first buffer holds the commands; the others belong to them in order.
        _decode(bytes(buffers[0]), [bytes(b) for b in buffers[1:]], traffic)
        original(content, buffers=buffers)

    _CANVAS_MANAGER.send = send
    try:
        yield traffic
    finally:
        del _CANVAS_MANAGER.send


_NAMES = {index: name for name, index in COMMANDS.items()}


def _decode(commands: bytes, buffers: list[bytes], traffic: CanvasTraffic) -> None:
    decoded = json.loads(commands)
    # hold_canvas sends a list of commands; a lone command is [index, args, n_buffers].
    batch = decoded if decoded and isinstance(decoded[0], list) else [decoded]
    for item in batch:
        name = _NAMES.get(item[0], str(item[0]))
        args = item[1] if len(item) > 1 else []
        count = item[2] if len(item) > 2 else 0
        own, buffers = buffers[:count], buffers[count:]
        if name == "putImageData":
            traffic.images.extend(own)
        # Array arguments travel as buffers; the argument says which one and how to read it.
        args = [
            np.frombuffer(own[a["idx"]], dtype=a["dtype"]).reshape(a["shape"])
            if isinstance(a, dict) and "idx" in a
            else a
            for a in args
        ]
        traffic.commands.append((name, args))


def browser_event(canvas: MultiCanvas, event: str, **fields: object) -> None:
    """Deliver a front-end event (``"mouse_down"``, ``"mouse_move"``, ``"key_down"``...) to a canvas.

    Key events need ``key``, ``shift_key``, ``ctrl_key`` and ``meta_key``; mouse events ``x`` and
    ``y`` in canvas pixels; ``"mouse_wheel"`` the wheel deltas as ``x`` and ``y``.
    """
    if event == "key_down":
        fields = {"shift_key": False, "ctrl_key": False, "meta_key": False, **fields}
    canvas._handle_custom_msg({"event": event, **fields}, [])
