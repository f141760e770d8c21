"""SliceViewer: browse a tomogram or micrograph slice by slice, with overlays and a value readout.

The canvas has three layers: the greyscale slice, the overlays (probability or label maps), and
marks that tools draw (tiles, boxes, picks). Drag pans, the wheel zooms at the pointer one level
per notch, up/down (PageUp/PageDown, w/s) change slice, +/- zoom, 0 or Home fits, ? shows the
keys (``keymap``). A click without a drag is handed to the tools registered with ``on_click``. All
of that state is a ``ViewState``; this class only renders it and forwards events.

For a tomogram, XZ and YZ side views through the pointer (membranes and filaments are judged
there) sit below and to the right of the slice, at the same zoom; a click on one goes to that
slice. A slab of a few slices can be averaged for display, and probability overlays have a
threshold slider.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
from ipycanvas import Canvas, hold_canvas

from ..maps import decode_probabilities
from ..volume import Volume
from ._canvas import Throttle, layered_canvas, put_block
from ._render import auto_contrast, overlay_image, palette_colour, slice_image
from ._source import SliceSource, as_source
from .keymap import HELP_CHORD, HelpOverlay, chord
from .view_state import ViewState, Window

DEFAULT_VIEW_SHAPE = (640, 640)
"""Canvas ``(height, width)`` in pixels; a redraw never sends more pixels than this."""

SIDE_VIEW_PX = 160
"""Depth of the XZ and YZ side views in canvas pixels (z runs across it at the slice's zoom)."""

CURSOR_COLOUR = "#ffd700"
SIDE_VIEW_INTERVAL_S = 0.1
"""Side views follow the pointer at most this often: each is a read across every slice."""

MarksDrawer = Callable[[Canvas, ViewState], None]
ClickCallback = Callable[[int, int, int], None]


@dataclass
class Overlay:
    """A map drawn over the slices: probabilities in one colour, or labels in a palette.

    ``z`` set means a single-slice map (a training preview) that is shown on that slice only.
    """

    name: str
    source: SliceSource
    kind: str = "probability"
    colour: str = "#e6194b"
    opacity: float = 0.5
    threshold: float = 0.0
    colours: Mapping[int, str] | None = None
    z: int | None = None
    visible: bool = True

    def slice_at(self, z: int) -> np.ndarray | None:
        """The map on slice ``z``, or None when it has nothing there.

        Probability maps come back in [0, 1] however they are stored (``maps.decode_probabilities``).
        """
        if self.source.is_2d:
            if self.z is not None and self.z != z:
                return None
            z = 0
        data = self.source.slice(z)
        if self.kind == "probability":
            return decode_probabilities(data, self.source.dtype)
        return data

    def section(self, plane: str, index: int) -> np.ndarray | None:
        """The map in a side view (``SliceSource.section``); None for a single-slice map."""
        if self.source.is_2d:
            return None
        data = self.source.section(plane, index)
        if self.kind == "probability":
            return decode_probabilities(data, self.source.dtype)
        return data


def _zoom_text(scale: float) -> str:
    return f"zoom {scale:g}x" if scale >= 1 else f"zoom 1/{round(1 / scale)}"


class SliceViewer(widgets.VBox):
    """Browse slices of a tomogram (or one micrograph) with zoom, pan, contrast and overlays.

    Parameters
    ----------
    volume : Volume, array or path
        ``(z, y, x)`` tomogram or ``(y, x)`` micrograph.
    view_shape : (int, int)
        Canvas ``(height, width)`` in pixels.
    contrast : (float, float), optional
        Display limits; default from percentiles of the middle slice.

    Examples
    --------
    >>> viewer = SliceViewer(tomogram)  # doctest: +SKIP
    >>> viewer.add_overlay("membrane", probability_map, colour="#e6194b")  # doctest: +SKIP
    >>> viewer  # doctest: +SKIP
    """

    def __init__(
        self,
        volume: SliceSource | Volume | np.ndarray | str | os.PathLike,
        *,
        view_shape: tuple[int, int] = DEFAULT_VIEW_SHAPE,
        contrast: tuple[float, float] | None = None,
        side_views: bool = False,
    ):
        self.source = as_source(volume)
        n_slices, height, width = self.source.shape
        self.state = ViewState((height, width), n_slices=n_slices, view_shape=view_shape)
        self.canvas = layered_canvas(3, *self.state.view_shape)
        self.overlays: dict[str, Overlay] = {}
        self._marks: dict[str, MarksDrawer] = {}
        self._click_callbacks: list[ClickCallback] = []
        self._key_callbacks: list[Callable[[str], bool]] = []
        self._view_callbacks: list[Callable[[ViewState], None]] = []
        self._throttle = Throttle()
        self._pending = False
        self._readout_pixel: tuple[int, int, int] | None = None
        self.lowpass_px = 0.0
        self.slab_slices = 1
        self.cursor = (height // 2, width // 2)
        self._side_throttle = Throttle(SIDE_VIEW_INTERVAL_S)
        view_height, view_width = self.state.view_shape
        # Side views: section, overlays, cursor lines.
        self.xz_canvas = layered_canvas(3, SIDE_VIEW_PX, view_width)
        self.yz_canvas = layered_canvas(3, view_height, SIDE_VIEW_PX)

        middle = self.source.slice(self.state.z)
        self.contrast = contrast or auto_contrast(middle)
        full = auto_contrast(middle, (0.0, 100.0))
        low, high = min(full[0], self.contrast[0]), max(full[1], self.contrast[1])

        self.z_slider = widgets.IntSlider(
            value=self.state.z,
            min=0,
            max=n_slices - 1,
            description="z",
            continuous_update=True,
            layout=widgets.Layout(width="320px", display="flex" if n_slices > 1 else "none"),
        )
        self.contrast_slider = widgets.FloatRangeSlider(
            value=self.contrast,
            min=low,
            max=high,
            step=(high - low) / 1000,
            description="contrast",
            readout_format=".3g",
            continuous_update=False,
            layout=widgets.Layout(width="400px"),
        )
        self.auto_button = widgets.Button(description="Auto", tooltip="Contrast from this slice")
        self.lowpass_slider = widgets.FloatSlider(
            value=0.0,
            min=0.0,
            max=8.0,
            step=0.5,
            description="lowpass px",
            tooltip="Gaussian smoothing for display only (sigma in pixels)",
            continuous_update=False,
            layout=widgets.Layout(width="260px"),
        )
        self.fit_button = widgets.Button(description="Fit", tooltip="Whole slice (key 0 or Home)")
        self.slab_slider = widgets.IntSlider(
            value=1,
            min=1,
            max=max(1, min(15, n_slices - (1 - n_slices % 2))),
            step=2,
            description="slab",
            tooltip="Average this many slices around z (display only)",
            continuous_update=False,
            layout=widgets.Layout(width="220px", display="flex" if n_slices > 2 else "none"),
        )
        self.side_checkbox = widgets.Checkbox(
            value=side_views and n_slices > 1,
            description="XZ / YZ",
            indent=False,
            tooltip="Side views through the pointer",
            layout=widgets.Layout(width="90px", display="flex" if n_slices > 1 else "none"),
        )
        self.help = HelpOverlay("slice viewer")
        self.help_button = widgets.Button(
            description="?", tooltip="Keys and mouse (key ?)", layout=widgets.Layout(width="32px")
        )
        self.zoom_label = widgets.Label(_zoom_text(self.state.scale))
        self.readout = widgets.HTML("&nbsp;")
        self.overlay_box = widgets.VBox()

        self.z_slider.observe(lambda change: self.set_z(change["new"]), names="value")
        self.contrast_slider.observe(self._contrast_changed, names="value")
        self.lowpass_slider.observe(self._lowpass_changed, names="value")
        self.auto_button.on_click(lambda _: self.auto_contrast())
        self.fit_button.on_click(lambda _: self._fit())
        self.slab_slider.observe(self._slab_changed, names="value")
        self.side_checkbox.observe(lambda _: self._side_views_toggled(), names="value")
        self.help_button.on_click(lambda _: self.help.toggle())
        self.xz_canvas.on_mouse_down(lambda x, y: self._side_click("xz", x, y))
        self.yz_canvas.on_mouse_down(lambda x, y: self._side_click("yz", x, y))
        for canvas, name in (
            (self.canvas, "slice"),
            (self.xz_canvas, "xz"),
            (self.yz_canvas, "yz"),
        ):
            canvas.add_class(f"tomoseg-{name}")  # for pages and tests that look for them
            if canvas is not self.canvas:
                canvas.on_client_ready(self._redraw_side_views)

        self.canvas.on_mouse_down(self._mouse_down)
        self.canvas.on_mouse_move(self._mouse_move)
        self.canvas.on_mouse_up(self._mouse_up)
        self.canvas.on_mouse_out(self._mouse_out)
        self.canvas.on_mouse_wheel(self._mouse_wheel)
        self.canvas.on_key_down(self._key_down)
        self.canvas.on_client_ready(self.redraw)

        toolbar = widgets.HBox(
            [self.z_slider, self.zoom_label, self.fit_button, self.side_checkbox, self.help_button]
        )
        display_row = widgets.HBox(
            [self.contrast_slider, self.auto_button, self.lowpass_slider, self.slab_slider]
        )
        self.views = widgets.GridBox(
            [self.canvas, self.yz_canvas, self.xz_canvas], layout=widgets.Layout(grid_gap="4px")
        )
        super().__init__(
            [toolbar, display_row, self.help, self.views, self.readout, self.overlay_box]
        )
        self._show_side_views()
        self.redraw()

    # public API --------------------------------------------------------------------------------
    @property
    def z(self) -> int:
        """Current slice."""
        return self.state.z

    def current_slice(self) -> np.ndarray:
        """The slice on show, float32: slice z, or the mean of the slab around it (read-only)."""
        return self.source.slab(self.state.z, self.slab_slices)

    @property
    def side_views(self) -> bool:
        """Whether the XZ and YZ side views are shown."""
        return bool(self.side_checkbox.value)

    def set_cursor(self, y: int, x: int) -> None:
        """Cut the side views through row ``y`` and column ``x`` (the pointer does this)."""
        height, width = self.state.slice_shape
        self.cursor = (min(max(int(y), 0), height - 1), min(max(int(x), 0), width - 1))
        if self.side_views:
            with hold_canvas():
                self._draw_side_views()
                self._draw_marks()

    def side_view_states(self) -> tuple[ViewState, ViewState]:
        """Where the XZ and YZ views look: same zoom as the slice, x (or y) aligned with it, the
        current slice in the middle of their depth."""
        n_slices, (height, width) = self.state.n_slices, self.state.slice_shape
        view_height, view_width = self.state.view_shape
        xz = ViewState(
            (n_slices, width),
            view_shape=(SIDE_VIEW_PX, view_width),
            zoom_index=self.state.zoom_index,
        )
        xz.centre_y, xz.centre_x = float(self.state.z), self.state.centre_x
        yz = ViewState(
            (height, n_slices),
            view_shape=(view_height, SIDE_VIEW_PX),
            zoom_index=self.state.zoom_index,
        )
        yz.centre_y, yz.centre_x = self.state.centre_y, float(self.state.z)
        return xz, yz

    def set_z(self, z: int) -> None:
        """Show slice ``z``."""
        if self.state.set_z(z):
            self._view_changed()

    def go_to(self, z: int, y: float, x: float) -> None:
        """Show slice ``z`` centred on ``(y, x)`` (jump to a tile or a pick)."""
        self.state.set_z(z)
        self.state.centre_on(y, x)
        self._view_changed()

    def auto_contrast(self) -> None:
        """Contrast limits from percentiles of the current slice."""
        self.contrast = auto_contrast(self.current_slice())
        low, high = self.contrast
        self.contrast_slider.min = min(self.contrast_slider.min, low)
        self.contrast_slider.max = max(self.contrast_slider.max, high)
        self.contrast_slider.value = self.contrast  # redraws the slice when it changed

    def add_overlay(
        self,
        name: str,
        data: Volume | np.ndarray | str | os.PathLike,
        *,
        kind: str = "probability",
        colour: str | None = None,
        opacity: float = 0.5,
        threshold: float = 0.0,
        colours: Mapping[int, str] | None = None,
        z: int | None = None,
    ) -> Overlay:
        """Draw ``data`` over the slices (replacing an overlay of the same name).

        Parameters
        ----------
        data : Volume, array or path
            Same ``(z, y, x)`` shape as the volume, or one ``(y, x)`` slice.
        kind : {"probability", "labels"}
            Probabilities in [0, 1] are drawn in ``colour`` with alpha ``opacity * p``; labels
            (integers, 0 = nothing) in ``colours`` (default palette).
        threshold : float
            Probabilities below it are not drawn.
        z : int, optional
            For a single ``(y, x)`` slice: the slice it belongs to (shown there only).
        """
        if kind not in ("probability", "labels"):
            raise ValueError(f"overlay kind {kind!r}: use 'probability' or 'labels'")
        source = as_source(data, name=name)
        expected = self.source.shape[1:] if source.is_2d else self.source.shape
        if source.shape[-len(expected) :] != tuple(expected):
            raise ValueError(
                f"overlay '{name}' has shape {source.shape} but the "
                f"viewer shows {self.source.shape}; overlays must match the volume (or one slice)"
            )
        if colour is None:
            colour = palette_colour(len(self.overlays) + 1)
        overlay = Overlay(name, source, kind, colour, opacity, threshold, colours, z)
        self.overlays[name] = overlay
        self._rebuild_overlay_controls()
        self.redraw_overlays()
        return overlay

    def remove_overlay(self, name: str) -> None:
        """Stop drawing the overlay ``name`` (no error when absent)."""
        if self.overlays.pop(name, None) is not None:
            self._rebuild_overlay_controls()
            self.redraw_overlays()

    def add_marks(self, name: str, draw: MarksDrawer) -> None:
        """Let a tool draw on the top layer: ``draw(layer, view_state)`` in canvas coordinates."""
        self._marks[name] = draw
        self.redraw_marks()

    def remove_marks(self, name: str) -> None:
        """Remove a tool's marks."""
        if self._marks.pop(name, None) is not None:
            self.redraw_marks()

    def on_click(self, callback: ClickCallback) -> None:
        """Call ``callback(z, row, column)`` when a voxel is clicked (pressed and released in place)."""
        self._click_callbacks.append(callback)

    def on_key(self, callback: Callable[[str], bool]) -> None:
        """Offer keys the viewer does not use to ``callback(key)``; it returns True if it used it.

        ``key`` is the browser's key name, or ``"Ctrl+z"``-style for shortcuts (``keymap.chord``).
        """
        self._key_callbacks.append(callback)

    def on_view_change(self, callback: Callable[[ViewState], None]) -> None:
        """Call ``callback(view_state)`` after the slice, zoom or pan changed."""
        self._view_callbacks.append(callback)

    def visible_region(self, max_px: int | None = None) -> tuple[int, int, int, int]:
        """Rows ``y0:y1`` and columns ``x0:x1`` on screen, at most ``max_px`` square around the centre."""
        window = self.state.window()
        height, width = self.state.slice_shape
        if window is None:
            y0, y1, x0, x1 = 0, height, 0, width
        else:
            y0, y1, x0, x1 = window.y0, window.y1, window.x0, window.x1
        if max_px is not None:
            y0, y1 = _centred_span(y0, y1, self.state.centre_y, max_px, height)
            x0, x1 = _centred_span(x0, x1, self.state.centre_x, max_px, width)
        return y0, y1, x0, x1

    # drawing -----------------------------------------------------------------------------------
    def redraw(self) -> None:
        """Redraw every layer (also called when a browser view connects)."""
        with hold_canvas():
            self._draw_slice()
            self._draw_overlays()
            self._draw_marks()
            if self.side_views:
                self._draw_side_views()
        self._pending = False
        self.zoom_label.value = _zoom_text(self.state.scale)

    def redraw_overlays(self) -> None:
        """Redraw the overlay layer only (and the side views, which show the overlays too)."""
        with hold_canvas():
            self._draw_overlays()
            if self.side_views:
                self._draw_side_views()

    def redraw_marks(self) -> None:
        """Redraw the marks layer only (after a tool changed its marks)."""
        with hold_canvas():
            self._draw_marks()

    def _draw_slice(self) -> None:
        layer = self.canvas[0]
        layer.clear()
        window = self.state.window()
        if window is not None:
            low, high = self.contrast
            block = slice_image(self.current_slice(), window, low, high, lowpass_px=self.lowpass_px)
            put_block(layer, block, window)

    def _draw_overlays(self) -> None:
        layer = self.canvas[1]
        layer.clear()
        window = self.state.window()
        if window is None:
            return
        for overlay in self.overlays.values():
            data = overlay.slice_at(self.state.z) if overlay.visible else None
            if data is not None:
                put_block(layer, self._overlay_block(overlay, data, window), window)

    @staticmethod
    def _overlay_block(overlay: Overlay, data: np.ndarray, window: Window) -> np.ndarray:
        return overlay_image(
            data,
            window,
            kind=overlay.kind,
            colour=overlay.colour,
            opacity=overlay.opacity,
            threshold=overlay.threshold,
            colours=overlay.colours,
        )

    def _draw_marks(self) -> None:
        layer = self.canvas[2]
        layer.clear()
        if self.side_views:
            self._draw_cursor_ticks(layer)
        for draw in self._marks.values():
            draw(layer, self.state)

    def _draw_cursor_ticks(self, layer: Canvas) -> None:
        # Ticks on the edges, not a crosshair: the slice under the pointer stays unobstructed.
        x, y = self.state.image_to_canvas(*self.cursor)
        height, width = self.state.view_shape
        layer.stroke_style = CURSOR_COLOUR
        layer.line_width = 2
        layer.stroke_lines(np.array([[x, 0], [x, 8]], dtype=np.float64))
        layer.stroke_lines(np.array([[x, height - 8], [x, height]], dtype=np.float64))
        layer.stroke_lines(np.array([[0, y], [8, y]], dtype=np.float64))
        layer.stroke_lines(np.array([[width - 8, y], [width, y]], dtype=np.float64))

    def _draw_side_views(self) -> None:
        low, high = self.contrast
        cursor_y, cursor_x = self.cursor
        z = self.state.z
        xz, yz = self.side_view_states()
        for canvas, plane, index, view, crossing in (
            (self.xz_canvas, "xz", cursor_y, xz, (z, cursor_x)),
            (self.yz_canvas, "yz", cursor_x, yz, (cursor_y, z)),
        ):
            canvas[0].clear()
            canvas[1].clear()
            window = view.window()
            if window is not None:
                block = slice_image(self.source.section(plane, index), window, low, high)
                put_block(canvas[0], block, window)
                for overlay in self.overlays.values():
                    data = overlay.section(plane, index) if overlay.visible else None
                    if data is not None:
                        put_block(canvas[1], self._overlay_block(overlay, data, window), window)
            # Lines through the current slice and where the other side view cuts.
            x, y = view.image_to_canvas(*crossing)
            height, width = view.view_shape
            lines = canvas[2]
            lines.clear()
            lines.stroke_style = CURSOR_COLOUR
            lines.line_width = 1
            lines.stroke_line(0, y, width, y)
            lines.stroke_line(x, 0, x, height)

    # events --------------------------------------------------------------------------------------
    def _view_changed(self) -> None:
        if self.z_slider.value != self.state.z:
            self.z_slider.value = self.state.z
        self.redraw()
        if self.state.pointer is not None:  # a key changed z under a still pointer
            self._update_readout(*self.state.pointer)
        for callback in self._view_callbacks:
            callback(self.state)

    def _mouse_down(self, x: float, y: float) -> None:
        self.state.press(x, y)

    def _mouse_move(self, x: float, y: float) -> None:
        if self.state.drag(x, y):
            self._pending = True
            if self._throttle.ready():
                self.redraw()
        self._update_readout(x, y)
        pixel = self.state.pixel_at(x, y)
        if self.side_views and pixel is not None and self._side_throttle.ready():
            self.set_cursor(*pixel)

    def _mouse_up(self, x: float, y: float) -> None:
        if self.state.drag(x, y):
            self._pending = True
        click = self.state.release(x, y)
        if self._pending:
            self._view_changed()
        if click is not None:
            for callback in self._click_callbacks:
                callback(*click)

    def _mouse_out(self, x: float, y: float) -> None:
        self.state.cancel_gesture()
        if self._pending:
            self._view_changed()

    def _mouse_wheel(self, delta_x: float, delta_y: float) -> None:
        if self.state.wheel(delta_y):
            self._view_changed()

    def _key_down(self, key: str, shift: bool = False, ctrl: bool = False, meta: bool = False):
        name = chord(key, shift, ctrl, meta)
        if name == key and self.state.key(key):
            self._view_changed()
            return
        for callback in self._key_callbacks:
            if callback(name):
                return
        if name == HELP_CHORD:
            self.help.toggle()

    def _side_click(self, plane: str, x: float, y: float) -> None:
        view = self.side_view_states()[0 if plane == "xz" else 1]
        row, column = view.canvas_to_image(x, y)
        self.set_z(round(row if plane == "xz" else column))

    def _slab_changed(self, change: dict) -> None:
        self.slab_slices = int(change["new"])
        with hold_canvas():
            self._draw_slice()

    def _show_side_views(self) -> None:
        display = "flex" if self.side_views else "none"
        self.xz_canvas.layout.display = self.yz_canvas.layout.display = display
        # Fixed columns: "auto" ones would stretch and push YZ away from the slice.
        columns = [f"{self.state.view_shape[1]}px"] + [f"{SIDE_VIEW_PX}px"] * self.side_views
        self.views.layout.grid_template_columns = " ".join(columns)

    def _redraw_side_views(self) -> None:
        if self.side_views:
            with hold_canvas():
                self._draw_side_views()

    def _side_views_toggled(self) -> None:
        self._show_side_views()
        self.redraw()

    def _fit(self) -> None:
        self.state.fit()
        self._view_changed()

    def _contrast_changed(self, change: dict) -> None:
        self.contrast = tuple(change["new"])
        with hold_canvas():
            self._draw_slice()
            if self.side_views:
                self._draw_side_views()

    def _lowpass_changed(self, change: dict) -> None:
        self.lowpass_px = float(change["new"])
        with hold_canvas():
            self._draw_slice()

    def _update_readout(self, x: float, y: float) -> None:
        pixel = self.state.pixel_at(x, y)
        key = None if pixel is None else (self.state.z, *pixel)
        if key == self._readout_pixel:
            return
        self._readout_pixel = key
        self.readout.value = "&nbsp;" if key is None else self.readout_text(*key)

    def readout_text(self, z: int, row: int, column: int) -> str:
        """What the readout shows for voxel ``(z, row, column)``: position and values."""
        parts = [f"z {z}  y {row}  x {column}", f"value {self.source.value(z, row, column):.4g}"]
        for overlay in self.overlays.values():
            data = overlay.slice_at(z)
            if data is not None:
                parts.append(f"{html.escape(overlay.name)} {float(data[row, column]):.3g}")
        return "<code>" + " &nbsp;|&nbsp; ".join(parts) + "</code>"

    def _rebuild_overlay_controls(self) -> None:
        rows = []
        for overlay in self.overlays.values():
            show = widgets.Checkbox(value=overlay.visible, description=overlay.name, indent=False)
            opacity = widgets.FloatSlider(
                value=overlay.opacity,
                min=0.0,
                max=1.0,
                step=0.05,
                description="opacity",
                continuous_update=False,
            )
            swatch = widgets.HTML(
                f'<span style="display:inline-block;width:14px;height:14px;'
                f'background:{overlay.colour}"></span>'
            )
            show.observe(_setter(self, overlay, "visible"), names="value")
            opacity.observe(_setter(self, overlay, "opacity"), names="value")
            row = [swatch, show, opacity]
            if overlay.kind == "probability":
                threshold = widgets.FloatSlider(
                    value=overlay.threshold,
                    min=0.0,
                    max=1.0,
                    step=0.05,
                    description="p >=",
                    tooltip="Hide probabilities below this",
                    continuous_update=False,
                )
                threshold.observe(_setter(self, overlay, "threshold"), names="value")
                row.append(threshold)
            rows.append(widgets.HBox(row))
        self.overlay_box.children = rows


def _setter(viewer: SliceViewer, overlay: Overlay, attribute: str) -> Callable[[dict], None]:
    def set_and_redraw(change: dict) -> None:
        setattr(overlay, attribute, change["new"])
        viewer.redraw_overlays()

    return set_and_redraw


def _centred_span(start: int, stop: int, centre: float, max_px: int, size: int) -> tuple[int, int]:
    if stop - start <= max_px:
        return start, stop
    first = min(max(0, round(centre) - max_px // 2), max(0, size - max_px))
    return first, min(size, first + max_px)
