"""MaskPainter: paint the feature on each positive tile, magnified, saved after every stroke.

The tile is shown at an integer magnification (nearest neighbour, so every voxel is a visible
square); + / - change it, 0 goes back, and c shows a margin of the slice around the tile (a
feature is easier to trace when you see where it goes). Brush (b), eraser (e) and flood fill (f);
``[`` and ``]`` change the brush; Ctrl+Z / z undo and Shift+Z / y redo, as in every canvas widget
(``keymap``; ? shows the table); n and p go to the next and previous tile. Mouse moves update the
mask on every event (joined by straight segments, so fast strokes have no gaps) but redraw it at
most 30 times a second; the finished stroke is written to the project at once. A closed project
is not painted on.

Canvas events arrive as canvas pixels ``(x, y)``; the painting itself happens in a
``PainterState`` in mask pixels, pixel ``(i, j)`` centred at ``(i, j)``, with a context margin of
``m`` tile pixels: ``mask_y = canvas_y / magnification - 0.5 - m``.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
from ipycanvas import hold_canvas

from ..annotations import Project, Tile
from ..errors import TomosegError
from ..volume import Volume
from ._canvas import Throttle, layered_canvas, put_block
from ._render import auto_contrast, mask_rgba, slice_image
from ._source import SliceSource, as_source
from .keymap import HELP_CHORD, REDO_CHORDS, UNDO_CHORDS, HelpOverlay, chord
from .paint_state import MODES, PainterState
from .tile_state import check_open, persist
from .view_state import ZOOM_LEVELS, Window

DEFAULT_CANVAS_PX = 512
MODE_KEYS = {"b": "paint", "e": "erase", "f": "fill"}
STEP_KEYS = {"n": 1, "p": -1}
ZOOM_KEYS = {"+": 1, "=": 1, "-": -1, "_": -1}
MAGNIFICATIONS = tuple(int(level) for level in ZOOM_LEVELS if level >= 1)
CONTEXT_FRACTION = 4
"""With context on, a margin of a quarter tile is shown on every side (16 px of a 64 px tile)."""
TILE_EDGE_COLOUR = "#ffffff"


class MaskPainter(widgets.VBox):
    """Paint masks on the positive tiles of a feature.

    Parameters
    ----------
    project : Project
        Tiles come from it and masks go back to it (saved after every stroke).
    volume : Volume, array or path, optional
        The tomogram; default the project's.
    feature : str, optional
        Default the project's first feature.
    canvas_px : int
        Approximate canvas edge; the magnification is ``canvas_px // tile_size``.
    """

    def __init__(
        self,
        project: Project,
        volume: SliceSource | Volume | np.ndarray | str | os.PathLike | None = None,
        *,
        feature: str | None = None,
        canvas_px: int = DEFAULT_CANVAS_PX,
        brush_radius: float = 3.0,
        opacity: float = 0.45,
    ):
        if volume is None:
            if project.tomogram is None:
                raise TomosegError(
                    f"{project.folder}: the project names no tomogram; pass volume=..."
                )
            volume = project.tomogram
        self.project = project
        self.source = as_source(volume)
        self.canvas_px = canvas_px
        self.feature = feature if feature is not None else next(iter(project.features), None)
        self.tile: Tile | None = None
        self.magnification = 1
        self.opacity = opacity
        self.lowpass_px = 0.0
        self.context = False
        self.zoom_steps = 0
        self._states: dict[str, PainterState] = {}
        self._brush_radius = brush_radius
        self._mode = "paint"
        self._contrast = (0.0, 1.0)
        self._throttle = Throttle()
        self._cursor_throttle = Throttle()
        self._save_callbacks: list[Callable[[Tile], None]] = []

        self.canvas = layered_canvas(3, canvas_px, canvas_px)
        self.canvas.add_class("tomoseg-painter")
        self.mode_buttons = widgets.ToggleButtons(
            options=[("brush (b)", "paint"), ("eraser (e)", "erase"), ("fill (f)", "fill")],
            value="paint",
        )
        self.brush_slider = widgets.FloatSlider(
            value=brush_radius, min=0.5, max=32.0, step=0.5, description="brush px"
        )
        self.opacity_slider = widgets.FloatSlider(
            value=opacity, min=0.0, max=1.0, step=0.05, description="opacity"
        )
        self.lowpass_slider = widgets.FloatSlider(
            value=0.0,
            min=0.0,
            max=4.0,
            step=0.5,
            description="lowpass px",
            tooltip="Gaussian smoothing of the displayed tile (display only)",
        )
        self.context_checkbox = widgets.Checkbox(
            value=False,
            description="context (c)",
            indent=False,
            tooltip="Show the slice around the tile",
            layout=widgets.Layout(width="110px"),
        )
        self.zoom_in_button = widgets.Button(description="+", layout=widgets.Layout(width="32px"))
        self.zoom_out_button = widgets.Button(description="-", layout=widgets.Layout(width="32px"))
        self.help = HelpOverlay("mask painter")
        self.help_button = widgets.Button(
            description="?", tooltip="Keys and mouse (key ?)", layout=widgets.Layout(width="32px")
        )
        self.undo_button = widgets.Button(description="Undo (z)")
        self.redo_button = widgets.Button(description="Redo (y)")
        self.clear_button = widgets.Button(description="Clear")
        self.previous_button = widgets.Button(description="< Previous (p)")
        self.next_button = widgets.Button(description="Next (n) >")
        self.tile_label = widgets.HTML()
        self.status = widgets.HTML()

        self.mode_buttons.observe(lambda c: self.set_mode(c["new"]), names="value")
        self.brush_slider.observe(lambda c: self.set_brush_radius(c["new"]), names="value")
        self.opacity_slider.observe(self._opacity_changed, names="value")
        self.lowpass_slider.observe(self._lowpass_changed, names="value")
        self.undo_button.on_click(lambda _: self.undo())
        self.redo_button.on_click(lambda _: self.redo())
        self.clear_button.on_click(lambda _: self.clear())
        self.previous_button.on_click(lambda _: self.previous_tile())
        self.next_button.on_click(lambda _: self.next_tile())
        self.context_checkbox.observe(lambda c: self.set_context(c["new"]), names="value")
        self.zoom_in_button.on_click(lambda _: self.zoom(1))
        self.zoom_out_button.on_click(lambda _: self.zoom(-1))
        self.help_button.on_click(lambda _: self.help.toggle())
        self.canvas.on_mouse_down(self._mouse_down)
        self.canvas.on_mouse_move(self._mouse_move)
        self.canvas.on_mouse_up(self._mouse_up)
        self.canvas.on_mouse_out(self._mouse_out)
        self.canvas.on_key_down(self._key_down)
        self.canvas.on_client_ready(self.redraw)

        super().__init__(
            [
                widgets.HBox([self.previous_button, self.tile_label, self.next_button]),
                widgets.HBox(
                    [
                        self.mode_buttons,
                        self.context_checkbox,
                        self.zoom_out_button,
                        self.zoom_in_button,
                        self.help_button,
                    ]
                ),
                self.help,
                widgets.HBox([self.brush_slider, self.opacity_slider, self.lowpass_slider]),
                self.canvas,
                widgets.HBox([self.undo_button, self.redo_button, self.clear_button]),
                self.status,
            ]
        )
        tiles = self.tiles()
        self.show(tiles[0].id if tiles else None)

    # tiles ---------------------------------------------------------------------------------------
    def tiles(self) -> list[Tile]:
        """Positive tiles of the current feature, in the order added."""
        if self.feature is None:
            return []
        return self.project.tiles_of(self.feature, positive=True)

    def set_feature(self, feature: str) -> None:
        """Paint the tiles of another feature."""
        if feature not in self.project.features:
            raise TomosegError(f"no feature '{feature}' in {self.project.folder}")
        self.feature = feature
        tiles = self.tiles()
        self.show(tiles[0].id if tiles else None)

    def show(self, tile_id: str | None) -> None:
        """Paint tile ``tile_id`` (a positive tile; None shows nothing)."""
        tile = next((t for t in self.project.tiles if t.id == tile_id), None)
        if tile is not None and not tile.positive:
            tile = None
        if tile is not None and tile.feature != self.feature:
            self.feature = tile.feature
        self.tile = tile
        if tile is not None:
            self._fit_canvas()
            self._contrast = auto_contrast(self._tile_image(tile))
            if tile.id not in self._states:
                self._states[tile.id] = PainterState(
                    self.project.mask(tile.id), brush_radius=self._brush_radius, mode=self._mode
                )
        self._update_label()
        self.redraw()

    @property
    def margin(self) -> int:
        """Tile pixels of slice shown around the tile on each side (0 without context)."""
        if self.tile is None or not self.context:
            return 0
        return self.tile.size // CONTEXT_FRACTION

    def set_context(self, shown: bool) -> None:
        """Show (or hide) a margin of the slice around the tile."""
        self.context = bool(shown)
        if self.context_checkbox.value != self.context:
            self.context_checkbox.value = self.context
        self._fit_canvas()
        self.redraw()

    def zoom(self, steps: int) -> None:
        """Magnify (positive) or shrink by ``steps`` levels from the size that fits; 0 resets."""
        self.zoom_steps = 0 if steps == 0 else self.zoom_steps + int(steps)
        self._fit_canvas()
        self.redraw()

    def _fit_canvas(self) -> None:
        if self.tile is None:
            return
        side_px = self.tile.size + 2 * self.margin
        fits = max(
            [0] + [i for i, m in enumerate(MAGNIFICATIONS) if m <= self.canvas_px // side_px]
        )
        index = min(max(fits + self.zoom_steps, 0), len(MAGNIFICATIONS) - 1)
        self.zoom_steps = index - fits
        self.magnification = MAGNIFICATIONS[index]
        side = side_px * self.magnification
        if (self.canvas.width, self.canvas.height) != (side, side):
            self.canvas.width = self.canvas.height = side
            self.canvas.layout.width = self.canvas.layout.height = f"{side}px"

    def next_tile(self) -> None:
        """Go to the next positive tile (wrapping round)."""
        self._step(1)

    def previous_tile(self) -> None:
        """Go to the previous positive tile (wrapping round)."""
        self._step(-1)

    def _step(self, step: int) -> None:
        ids = [t.id for t in self.tiles()]
        if not ids:
            self.show(None)
            return
        index = ids.index(self.tile.id) if self.tile is not None and self.tile.id in ids else -1
        self.show(ids[(index + step) % len(ids)])

    @property
    def state(self) -> PainterState | None:
        """The painting state of the tile on show (None without a tile)."""
        if self.tile is None:
            return None
        return self._states[self.tile.id]

    def on_save(self, callback: Callable[[Tile], None]) -> None:
        """Call ``callback(tile)`` after a tile's mask was saved."""
        self._save_callbacks.append(callback)

    # editing -------------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """``"paint"``, ``"erase"`` or ``"fill"`` for every tile."""
        if mode not in MODES:
            raise TomosegError(f"painter mode {mode!r}: use one of {', '.join(MODES)}")
        self._mode = mode
        for state in self._states.values():
            state.mode = mode
        if self.mode_buttons.value != mode:
            self.mode_buttons.value = mode

    def set_brush_radius(self, radius: float) -> None:
        """Brush radius in tile pixels, for every tile."""
        self._brush_radius = max(0.5, float(radius))
        for state in self._states.values():
            state.brush_radius = self._brush_radius
        if self.brush_slider.value != self._brush_radius:
            self.brush_slider.value = self._brush_radius

    def undo(self) -> None:
        """Undo the last edit of this tile (saved)."""
        state = self._editable()
        if state is not None and state.undo():
            self._saved_edit()

    def redo(self) -> None:
        """Redo the last undone edit of this tile (saved)."""
        state = self._editable()
        if state is not None and state.redo():
            self._saved_edit()

    def clear(self) -> None:
        """Erase this tile's mask (saved; undo brings it back)."""
        state = self._editable()
        if state is not None and state.clear():
            self._saved_edit()

    def canvas_to_mask(self, x: float, y: float) -> tuple[float, float]:
        """Mask ``(y, x)`` under canvas point ``(x, y)``."""
        margin = self.margin
        return y / self.magnification - 0.5 - margin, x / self.magnification - 0.5 - margin

    def _editable(self) -> PainterState | None:
        """The state of the tile on show if it may be edited; a closed project says so instead."""
        if self.state is None:
            return None
        try:
            check_open(self.project)
        except TomosegError as error:
            self.status.value = f"<b>Not painted:</b> {html.escape(str(error))}"
            return None
        return self.state

    def _saved_edit(self) -> None:
        self._save()
        self._draw(image=False)

    def _save(self) -> None:
        tile, state = self.tile, self.state
        if tile is None or state is None:
            return
        try:
            self.project.set_mask(tile.id, state.mask)
            persist(self.project)
        except TomosegError as error:
            self.status.value = f"<b>Not saved:</b> {error}"
            return
        self.status.value = f"saved: {int(state.mask.sum())} px painted"
        for callback in self._save_callbacks:
            callback(tile)

    # drawing -------------------------------------------------------------------------------------
    def redraw(self) -> None:
        """Redraw the tile and its mask (also when a browser view connects)."""
        self._draw(image=True)

    def _tile_image(self, tile: Tile, margin: int = 0) -> np.ndarray:
        y0, _, x0, _ = tile.bounds
        fill = float(np.mean(self.source.slice(tile.z)[::16, ::16]))
        return self.source.region(tile.z, y0 - margin, x0 - margin, tile.size + 2 * margin, fill)

    def _window(self, *, context: bool = False) -> Window:
        """Where the tile (or, with ``context``, the tile and its margin) lands on the canvas."""
        size = self.tile.size if self.tile is not None else 1
        margin = self.margin
        scale = float(self.magnification)
        if context:
            return Window(0, size + 2 * margin, 0, size + 2 * margin, 1, scale, 0.0, 0.0)
        return Window(0, size, 0, size, 1, scale, margin * scale, margin * scale)

    def _draw(self, *, image: bool) -> None:
        with hold_canvas():
            if image:
                self.canvas[0].clear()
                if self.tile is not None:
                    low, high = self._contrast
                    window = self._window(context=True)
                    block = slice_image(
                        self._tile_image(self.tile, self.margin),
                        window,
                        low,
                        high,
                        lowpass_px=self.lowpass_px,
                    )
                    put_block(self.canvas[0], block, window)
            layer = self.canvas[1]
            layer.clear()
            tile, state = self.tile, self.state
            if tile is None or state is None:
                return
            if state.mask.any():
                colour = self.project.features[tile.feature].colour
                put_block(layer, mask_rgba(state.mask, colour, self.opacity), self._window())
            if self.margin:
                window = self._window()
                side = tile.size * window.scale
                layer.stroke_style = TILE_EDGE_COLOUR
                layer.line_width = 1
                layer.stroke_rect(window.offset_x, window.offset_y, side, side)

    def _draw_cursor(self, x: float, y: float) -> None:
        with hold_canvas():
            layer = self.canvas[2]
            layer.clear()
            if self.state is not None and self._mode != "fill":
                layer.stroke_style = "#ffff00"
                layer.line_width = 1
                layer.stroke_circle(x, y, self._brush_radius * self.magnification)

    def _update_label(self) -> None:
        tiles = self.tiles()
        if self.tile is None:
            self.tile_label.value = (
                "no positive tile yet: place some with the tile picker"
                if self.feature is not None
                else "no feature yet"
            )
            return
        index = [t.id for t in tiles].index(self.tile.id) + 1
        t = self.tile
        self.tile_label.value = (
            f"<b>{t.feature}</b> tile {index} / {len(tiles)} &nbsp; (z {t.z}, y {t.y}, x {t.x})"
        )

    # events --------------------------------------------------------------------------------------
    def _mouse_down(self, x: float, y: float) -> None:
        state = self._editable()
        if state is None:
            return
        state.press(*self.canvas_to_mask(x, y))
        if state.mode == "fill":
            self._finish_stroke()
        else:
            self._throttle.reset()
            self._draw(image=False)

    def _mouse_move(self, x: float, y: float) -> None:
        state = self.state
        if state is None:
            return
        if state.stroking:
            if state.drag(*self.canvas_to_mask(x, y)) and self._throttle.ready():
                self._draw(image=False)
        elif self._cursor_throttle.ready():
            self._draw_cursor(x, y)

    def _mouse_up(self, x: float, y: float) -> None:
        state = self.state
        if state is not None and state.stroking:
            state.drag(*self.canvas_to_mask(x, y))
            self._finish_stroke()
            self._draw_cursor(x, y)

    def _mouse_out(self, x: float, y: float) -> None:
        self._mouse_up(x, y)
        with hold_canvas():
            self.canvas[2].clear()

    def _finish_stroke(self) -> None:
        state = self.state
        if state is not None and state.release():
            self._save()
        self._draw(image=False)

    def _key_down(self, key: str, shift: bool = False, ctrl: bool = False, meta: bool = False):
        name = chord(key, shift, ctrl, meta)
        if name in UNDO_CHORDS:
            self.undo()
        elif name in REDO_CHORDS:
            self.redo()
        elif name in MODE_KEYS:
            self.set_mode(MODE_KEYS[name])
        elif name in ("[", "]"):
            self.set_brush_radius(self._brush_radius + (1.0 if name == "]" else -1.0))
        elif name in STEP_KEYS:
            self._step(STEP_KEYS[name])
        elif name in ZOOM_KEYS:
            self.zoom(ZOOM_KEYS[name])
        elif name == "0":
            self.zoom(0)
        elif name == "c":
            self.set_context(not self.context)
        elif name == HELP_CHORD:
            self.help.toggle()

    def _opacity_changed(self, change: dict) -> None:
        self.opacity = float(change["new"])
        self._draw(image=False)

    def _lowpass_changed(self, change: dict) -> None:
        self.lowpass_px = float(change["new"])
        self.redraw()
