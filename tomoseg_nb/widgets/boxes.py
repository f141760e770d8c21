"""BoxPicker: box reference particles, background and bad areas on a micrograph for the 2D picker.

Keys and clicks follow the table every canvas widget shares (``keymap``; ``?`` shows it): a click
on a box selects it; adding needs a mode, one per class - ``a`` (or ``g``, ``1``) good particle,
``b`` (``2``) background, ``x`` (``3``) bad - in which a click on empty image places a box, and
Esc goes back to selecting. So the first click on the canvas, which gives it the keys, never adds
or removes a box. Delete or Backspace removes the selected box; Ctrl+Z / z undoes, Shift+Z / y
redoes. Boxes are saved at once when a ``path`` is given. Feed them to the boxer with::

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
from .box_state import BOX_CLASSES, Box, BoxState
from .keymap import HelpOverlay, dispatch
from .view_state import ViewState
from .viewer import SliceViewer

CLASS_COLOURS = {"good": "#3cb44b", "background": "#4363d8", "bad": "#e6194b"}
MODE_LABELS = {
    "select": "select (Esc)",
    "good": "add good particle (a)",
    "background": "add background (b)",
    "bad": "add bad: contamination, aggregate (x)",
}
SELECTED_LINE_PX = 4
MIN_GOOD_AND_BACKGROUND = 5
"""The boxer needs at least this many good and background references (as EMAN2 e2boxer)."""


class BoxPicker(widgets.VBox):
    """Box three kinds of references on a micrograph.

    ``class_buttons`` holds the mode: ``"select"`` or the class a click on empty image boxes.

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
            options=[(MODE_LABELS[m], m) for m in MODE_LABELS],
            value=self.state.mode,
            tooltips=[
                "A click selects a box; it never adds or removes one",
                "A click on empty image boxes an isolated particle, centred",
                "A click on empty image boxes empty ice",
                "A click on empty image boxes what must not be picked",
            ],
        )
        self.help = HelpOverlay("slice viewer", "box picker")
        self.help_button = widgets.Button(
            description="?", tooltip="Keys and mouse (key ?)", layout=widgets.Layout(width="32px")
        )
        self.remove_button = widgets.Button(description="Remove (Delete)")
        self.undo_button = widgets.Button(description="Undo (z)")
        self.redo_button = widgets.Button(description="Redo (y)")
        self.counts = widgets.HTML()
        self.status = widgets.HTML()
        self.class_buttons.observe(self._mode_changed, names="value")
        self.remove_button.on_click(lambda _: self.delete_selected())
        self.undo_button.on_click(lambda _: self.undo())
        self.redo_button.on_click(lambda _: self.redo())
        self.help_button.on_click(lambda _: self.help.toggle())
        self._key_actions = {  # rows of the keymap table, by id
            "box-deselect": self._escape,
            "box-add-good": lambda: self.set_mode("good"),
            "box-add-background": lambda: self.set_mode("background"),
            "box-add-bad": lambda: self.set_mode("bad"),
            "box-delete": self.delete_selected,
            "undo": self.undo,
            "redo": self.redo,
            "help": self.help.toggle,
        }
        self.viewer.help_button.layout.display = "none"  # ours lists the viewer's keys too
        self.viewer.on_click(self.click)
        self.viewer.on_key(lambda key: dispatch(key, self._key_actions))
        self.viewer.add_marks("boxes", self._draw_boxes)
        super().__init__(
            [
                widgets.HBox([self.class_buttons, self.help_button]),
                self.counts,
                self.help,
                self.viewer,
                widgets.HBox([self.remove_button, self.undo_button, self.redo_button]),
                self.status,
            ]
        )
        self._update_counts()

    def click(self, z: int, y: int, x: int) -> None:
        """What a click on pixel ``(y, x)`` does: select the box there, or add one in an add mode."""
        done = self.state.click(y, x)
        if done is None:
            self.status.value = "off the image: nothing boxed"
            return
        action, box = done
        if box is None:
            self.status.value = "selection cleared (a / b / x: add boxes)"
        elif action == "selected":
            self.status.value = f"selected {_describe(box)} (Delete removes it)"
        else:
            self.status.value = f"added {_describe(box)}"
        self._update_counts()
        self.viewer.redraw_marks()

    def set_mode(self, mode: str) -> None:
        """``"select"``, or the class (``"good"``, ``"background"``, ``"bad"``) a click adds."""
        self.class_buttons.value = mode

    def delete_selected(self) -> None:
        """Remove the selected box (undo brings it back)."""
        box = self.state.delete_selected()
        self._edited(None if box is None else ("removed", box), "", "no box selected: click one")

    def undo(self) -> None:
        """Reverse the last add or removal."""
        self._edited(self.state.undo(), "undo: ", "nothing to undo")

    def redo(self) -> None:
        """Do again what the last undo reversed."""
        self._edited(self.state.redo(), "redo: ", "nothing to redo")

    def _edited(self, done: tuple[str, Box] | None, prefix: str, nothing: str) -> None:
        if done is None:
            self.status.value = nothing
            return
        action, box = done
        self.status.value = f"{prefix}{action} {_describe(box)}"
        self._update_counts()
        self.viewer.redraw_marks()

    def _escape(self) -> None:
        """Esc: back to select mode, or (already there) clear the selection."""
        if self.state.mode == "select":
            self.state.selected = None
            self.viewer.redraw_marks()
        self.set_mode("select")

    def _mode_changed(self, change: dict) -> None:
        self.state.mode = change["new"]

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
        selected = self.state.selected
        if selected is not None:
            corner_x, corner_y = view.image_to_canvas(selected.y - size / 2, selected.x - size / 2)
            layer.stroke_style = CLASS_COLOURS[selected.label]
            layer.line_width = SELECTED_LINE_PX
            layer.stroke_rect(corner_x, corner_y, side, side)


def _describe(box: Box) -> str:
    return f"{box.label} box at y {box.y}, x {box.x}"
