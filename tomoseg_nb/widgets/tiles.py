"""TilePicker: click on the slice viewer to place tiles of a feature, positive or negative.

Click empty slice: a tile of the current feature's size, positive or negative by the mode (keys
p / n switch it; ipycanvas mouse events carry no modifier keys). Click a tile of the current
feature: remove it (u or Undo brings it back with its mask). The counters show progress against
the protocol's ~10 positive and ~100 negative tiles; the list jumps to a tile.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
from ipycanvas import Canvas

from ..annotations import Project, Tile
from ..errors import TomosegError
from .tile_state import TileState, persist
from .view_state import ViewState
from .viewer import SliceViewer

NEGATIVE_DASH = [6, 4]


class TilePicker(widgets.VBox):
    """Choose tiles for every feature of a project on a slice viewer.

    Parameters
    ----------
    project : Project
        The annotation project (saved on every change).
    viewer : SliceViewer, optional
        Default: a new viewer on the project's tomogram.
    feature : str, optional
        Feature to start with (default the first).
    """

    def __init__(
        self, project: Project, viewer: SliceViewer | None = None, *, feature: str | None = None
    ):
        if viewer is None:
            if project.tomogram is None:
                raise TomosegError(
                    f"{project.folder}: the project names no tomogram; pass viewer=SliceViewer(...)"
                )
            viewer = SliceViewer(project.tomogram)
        self.project = project
        self.viewer = viewer
        self.state = TileState(project, feature)
        self._select_callbacks: list[Callable[[Tile | None], None]] = []

        self.feature_dropdown = widgets.Dropdown(
            options=list(project.features), value=self.state.feature, description="feature"
        )
        self.mode_buttons = widgets.ToggleButtons(
            options=[("positive (p)", True), ("negative (n)", False)],
            value=True,
            tooltips=["Tile contains the feature", "Tile has none of the feature"],
        )
        self.counts = widgets.HTML()
        self.new_name = widgets.Text(placeholder="new feature, e.g. membrane", description="")
        self.new_colour = widgets.ColorPicker(value="#e6194b", concise=True)
        self.new_size = widgets.BoundedIntText(
            value=64, min=8, max=1024, description="tile px", layout=widgets.Layout(width="140px")
        )
        self.add_button = widgets.Button(description="Add feature")
        self.tile_list = widgets.Select(options=[], rows=8, layout=widgets.Layout(width="340px"))
        self.goto_button = widgets.Button(description="Go to")
        self.remove_button = widgets.Button(description="Remove")
        self.undo_button = widgets.Button(description="Undo (u)")
        self.status = widgets.HTML()

        self.feature_dropdown.observe(self._feature_changed, names="value")
        self.mode_buttons.observe(self._mode_changed, names="value")
        self.add_button.on_click(lambda _: self._add_feature())
        self.tile_list.observe(self._list_selected, names="value")
        self.goto_button.on_click(lambda _: self.go_to(self.tile_list.value))
        self.remove_button.on_click(lambda _: self._remove_selected())
        self.undo_button.on_click(lambda _: self.undo())
        viewer.on_click(self.click)
        viewer.on_key(self._key)
        viewer.add_marks("tiles", self._draw_tiles)

        super().__init__(
            [
                widgets.HBox([self.feature_dropdown, self.mode_buttons]),
                self.counts,
                widgets.HBox([self.new_name, self.new_colour, self.new_size, self.add_button]),
                viewer,
                widgets.HBox(
                    [
                        self.tile_list,
                        widgets.VBox([self.goto_button, self.remove_button, self.undo_button]),
                    ]
                ),
                self.status,
            ]
        )
        self.refresh()

    # actions -------------------------------------------------------------------------------------
    def click(self, z: int, y: int, x: int) -> None:
        """What a click on voxel ``(z, y, x)`` of the viewer does (add or remove a tile)."""
        try:
            action, tile = self.state.click(z, y, x)
        except TomosegError as error:
            self.status.value = f"<b>Not done:</b> {error}"
            return
        self.status.value = f"{action} {_describe(tile)}"
        self.refresh()
        if action == "added" and tile.positive:
            self.select(tile.id)

    def undo(self) -> None:
        """Reverse the last add or remove."""
        done = self.state.undo()
        if done is None:
            self.status.value = "nothing to undo"
        else:
            self.status.value = f"undo: {done[0]} {_describe(done[1])}"
        self.refresh()

    def select(self, tile_id: str | None) -> None:
        """Make ``tile_id`` the selected tile (highlighted; the mask painter follows)."""
        self.state.selected = tile_id
        if tile_id is not None and tile_id in {value for _, value in self.tile_list.options}:
            self.tile_list.value = tile_id
        self.viewer.redraw_marks()
        tile = next((t for t in self.project.tiles if t.id == tile_id), None)
        for callback in self._select_callbacks:
            callback(tile)

    def on_select(self, callback: Callable[[Tile | None], None]) -> None:
        """Call ``callback(tile)`` when a tile is selected (None: selection cleared)."""
        self._select_callbacks.append(callback)

    def go_to(self, tile_id: str | None) -> None:
        """Show the tile's slice, centred on it."""
        tile = next((t for t in self.project.tiles if t.id == tile_id), None)
        if tile is not None:
            self.viewer.go_to(tile.z, tile.y, tile.x)

    def add_feature(self, name: str, *, colour: str | None = None, tile_size: int = 64) -> None:
        """Add a feature to the project and make it current."""
        self.project.add_feature(name, colour=colour, tile_size=tile_size)
        persist(self.project)
        self.feature_dropdown.options = list(self.project.features)
        self.feature_dropdown.value = name

    # callbacks -----------------------------------------------------------------------------------
    def _add_feature(self) -> None:
        try:
            self.add_feature(
                self.new_name.value.strip(),
                colour=self.new_colour.value,
                tile_size=self.new_size.value,
            )
        except TomosegError as error:
            self.status.value = f"<b>Not added:</b> {error}"
            return
        self.new_name.value = ""
        self.status.value = f"added feature {self.state.feature}"

    def _feature_changed(self, change: dict) -> None:
        self.state.feature = change["new"]
        self.refresh()

    def _mode_changed(self, change: dict) -> None:
        self.state.positive = bool(change["new"])

    def _list_selected(self, change: dict) -> None:
        if change["new"] is not None and change["new"] != self.state.selected:
            self.select(change["new"])

    def _remove_selected(self) -> None:
        if self.tile_list.value is None:
            return
        tile = self.state.remove(self.tile_list.value)
        self.status.value = f"removed {_describe(tile)}"
        self.refresh()
        self.select(None)

    def _key(self, key: str) -> bool:
        if key in ("p", "n"):
            self.mode_buttons.value = key == "p"
            return True
        if key == "u":
            self.undo()
            return True
        return False

    def refresh(self) -> None:
        """Update counters, tile list and outlines (after the project changed elsewhere)."""
        self.counts.value = self.state.counts_text()
        options = [
            (_describe(t, self.project.mask(t.id).any() if t.positive else False), t.id)
            for t in self.state.tiles()
        ]
        selected = self.state.selected
        self.tile_list.options = options
        self.tile_list.value = selected if selected in {v for _, v in options} else None
        self.viewer.redraw_marks()

    def _draw_tiles(self, layer: Canvas, view: ViewState) -> None:
        for tile in self.state.tiles_on_slice(view.z):
            feature = self.project.features.get(tile.feature)
            y0, _, x0, _ = tile.bounds
            left, top = view.image_to_canvas(y0 - 0.5, x0 - 0.5)
            side = tile.size * view.scale
            current = tile.feature == self.state.feature
            layer.stroke_style = feature.colour if feature is not None else "#ffffff"
            layer.global_alpha = 1.0 if current else 0.5
            layer.line_width = 3 if tile.id == self.state.selected else (2 if current else 1)
            layer.set_line_dash([] if tile.positive else NEGATIVE_DASH)
            layer.stroke_rect(left, top, side, side)
        layer.global_alpha = 1.0
        layer.set_line_dash([])


def _describe(tile: Tile, painted: bool = False) -> str:
    sign = "+" if tile.positive else "-"
    todo = " (painted)" if painted else (" (to paint)" if tile.positive else "")
    return f"{sign} {tile.feature} z {tile.z}, y {tile.y}, x {tile.x}{todo}"
