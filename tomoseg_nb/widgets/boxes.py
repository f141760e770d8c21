"""BoxPicker: box reference particles, background and bad areas on a micrograph for the 2D picker.

Click empty image to place a box of the current class (keys g / b / x, or 1 / 2 / 3); click a box
to remove it. Boxes are saved at once when a ``path`` is given. Feed them to the boxer with::

    references = boxer.collect_references(
        [image], [picker.state.coordinates("good")], [picker.state.coordinates("background")],
        [picker.state.coordinates("bad")], box_px=picker.state.box_size_px)

Reviewing the boxer's picks (accept / reject by clicking) is ``results.PickViewer``.
"""

from __future__ import annotations

import os

import ipywidgets as widgets
import numpy as np
from ipycanvas import Canvas

from ..errors import BadInputError
from ..volume import Volume
from .box_state import BOX_CLASSES, BoxState
from .view_state import ViewState
from .viewer import SliceViewer

CLASS_COLOURS = {"good": "#3cb44b", "background": "#4363d8", "bad": "#e6194b"}
CLASS_LABELS = {
    "good": "good particle (g)",
    "background": "background (b)",
    "bad": "bad: contamination, aggregate (x)",
}
CLASS_KEYS = {
    "g": "good",
    "1": "good",
    "b": "background",
    "2": "background",
    "x": "bad",
    "3": "bad",
}
MIN_GOOD_AND_BACKGROUND = 5
"""The boxer needs at least this many good and background references (as EMAN2 e2boxer)."""


class BoxPicker(widgets.VBox):
    """Box three kinds of references on a micrograph.

    Parameters
    ----------
    micrograph : Volume, array or path
        A 2D image ``(y, x)``.
    box_size_px : int
        Box edge in pixels (about 1.5 particle diameters).
    path : path, optional
        JSON file the boxes are saved to after every change (and loaded from).
    viewer : SliceViewer, optional
        Default: a new viewer on ``micrograph``.
    """

    def __init__(
        self,
        micrograph: Volume | np.ndarray | str | os.PathLike,
        *,
        box_size_px: int,
        path: str | os.PathLike | None = None,
        viewer: SliceViewer | None = None,
    ):
        self.viewer = viewer if viewer is not None else SliceViewer(micrograph)
        if not self.viewer.source.is_2d:
            raise BadInputError(
                f"{self.viewer.source.name}: boxes are placed on 2D micrographs; this is a "
                f"{self.viewer.source.shape} volume"
            )
        self.state = BoxState(
            self.viewer.state.slice_shape,
            box_size_px,
            path=path,
            micrograph=self.viewer.source.name,
        )
        self.class_buttons = widgets.ToggleButtons(
            options=[(CLASS_LABELS[c], c) for c in BOX_CLASSES], value=BOX_CLASSES[0]
        )
        self.counts = widgets.HTML()
        self.status = widgets.HTML()
        self.class_buttons.observe(self._class_changed, names="value")
        self.viewer.on_click(self.click)
        self.viewer.on_key(self._key)
        self.viewer.add_marks("boxes", self._draw_boxes)
        super().__init__([self.class_buttons, self.counts, self.viewer, self.status])
        self._update_counts()

    def click(self, z: int, y: int, x: int) -> None:
        """What a click on pixel ``(y, x)`` does: remove the box there, or place one."""
        done = self.state.click(y, x)
        if done is not None:
            action, box = done
            self.status.value = f"{action} {box.label} box at y {box.y}, x {box.x}"
        self._update_counts()
        self.viewer.redraw_marks()

    def _class_changed(self, change: dict) -> None:
        self.state.label = change["new"]

    def _key(self, key: str) -> bool:
        if key in CLASS_KEYS:
            self.class_buttons.value = CLASS_KEYS[key]
            return True
        return False

    def _update_counts(self) -> None:
        counts = self.state.counts()
        parts = [
            f'<span style="color:{CLASS_COLOURS[c]}">&#9632;</span> {c} {counts[c]}'
            for c in BOX_CLASSES
        ]
        short = [c for c in ("good", "background") if counts[c] < MIN_GOOD_AND_BACKGROUND]
        advice = (
            f" &nbsp; (the picker needs at least {MIN_GOOD_AND_BACKGROUND} {' and '.join(short)})"
            if short
            else ""
        )
        self.counts.value = " &nbsp; ".join(parts) + advice

    def _draw_boxes(self, layer: Canvas, view: ViewState) -> None:
        size = self.state.box_size_px
        side = size * view.scale
        layer.line_width = 2
        for label in BOX_CLASSES:
            centres = self.state.coordinates(label)
            if not len(centres):
                continue
            left, top = view.image_to_canvas(centres[:, 0] - size / 2, centres[:, 1] - size / 2)
            layer.stroke_style = CLASS_COLOURS[label]
            layer.stroke_rects(left, top, side, side)
