"""TilePicker: click tiles on the slice viewer to select them; add and remove them deliberately.

A click on a tile of the current feature selects it (the mask painter follows). Adding needs a
mode: ``a`` (positive) or ``x`` (negative) makes a click on empty slice place a tile, Esc goes
back to selecting; ipycanvas mouse events carry no modifier keys, so a mode it is. Delete or
Backspace removes the selected tile; Ctrl+Z / z undoes, Shift+Z / y redoes (``keymap`` holds the
one table every canvas widget shares; ``?`` shows it). The first click on the canvas, which gives
it the keys, therefore never adds or removes anything. The counters show progress against the
protocol's ~10 positive and ~100 negative tiles; the list jumps to a tile.

After a training, ``set_prediction`` hands the picker a feature's probability map; *Suggest tiles*
then shows the places where it is least sure (``TileState.suggest``), outlined in yellow, and
*Accept +* / *Accept -* adds the one shown (a positive starts its mask from the prediction, for
the mask painter to correct), *Next* moves on. Accepting is an ordinary add: undo takes it back
and shows the suggestion again, redo accepts it again.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
from ipycanvas import Canvas

from ..annotations import Project, Tile
from ..errors import TomosegError
from .keymap import DELETE_CHORDS, HELP_CHORD, REDO_CHORDS, UNDO_CHORDS, HelpOverlay
from .tile_state import TileState, check_open, persist
from .view_state import ViewState
from .viewer import SliceViewer

MODE_KEYS = {"a": "positive", "x": "negative", "Escape": "select"}
STEP_KEYS = {"n": 1, "p": -1}

NEGATIVE_DASH = [6, 4]
SUGGESTION_COLOUR = "#ffd700"
SUGGESTION_DASH = [2, 3]


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
            options=[
                ("select (Esc)", "select"),
                ("add + (a)", "positive"),
                ("add - (x)", "negative"),
            ],
            value="select",
            tooltips=[
                "A click selects a tile; it never adds or removes one",
                "A click on empty slice adds a tile that contains the feature",
                "A click on empty slice adds a tile with none of the feature",
            ],
        )
        self.help = HelpOverlay("slice viewer", "tile picker")
        self.help_button = widgets.Button(description="?", tooltip="Keys and mouse (key ?)")
        self.help_button.layout.width = "32px"
        self.counts = widgets.HTML()
        self.new_name = widgets.Text(placeholder="new feature, e.g. membrane", description="")
        self.new_colour = widgets.ColorPicker(value="#e6194b", concise=True)
        self.new_size = widgets.BoundedIntText(
            value=64, min=8, max=1024, description="tile px", layout=widgets.Layout(width="140px")
        )
        self.add_button = widgets.Button(description="Add feature")
        self.tile_list = widgets.Select(options=[], rows=8, layout=widgets.Layout(width="340px"))
        self.goto_button = widgets.Button(description="Go to")
        self.remove_button = widgets.Button(description="Remove (Delete)")
        self.undo_button = widgets.Button(description="Undo (z)")
        self.redo_button = widgets.Button(description="Redo (y)")
        self.status = widgets.HTML()
        self.predictions: dict[str, tuple[np.ndarray, float, int]] = {}
        self._accepted = False  # the list moved on by itself: Next shows the current one first
        self.suggest_button = widgets.Button(
            description="Suggest tiles",
            tooltip="Where the network of this feature is least sure (needs a prediction)",
            disabled=True,
        )
        self.next_suggestion_button = widgets.Button(description="Next", disabled=True)
        self.accept_positive_button = widgets.Button(
            description="Accept +", tooltip="Add it as a positive tile, mask from the prediction"
        )
        self.accept_negative_button = widgets.Button(
            description="Accept -", tooltip="Add it as a negative tile"
        )
        self.accept_positive_button.disabled = self.accept_negative_button.disabled = True

        self.feature_dropdown.observe(self._feature_changed, names="value")
        self.mode_buttons.observe(self._mode_changed, names="value")
        self.add_button.on_click(lambda _: self._add_feature())
        self.tile_list.observe(self._list_selected, names="value")
        self.goto_button.on_click(lambda _: self.go_to(self.tile_list.value))
        self.remove_button.on_click(lambda _: self._remove_selected())
        self.undo_button.on_click(lambda _: self.undo())
        self.redo_button.on_click(lambda _: self.redo())
        self.help_button.on_click(lambda _: self.help.toggle())
        self.suggest_button.on_click(lambda _: self.suggest())
        self.next_suggestion_button.on_click(lambda _: self.next_suggestion())
        self.accept_positive_button.on_click(lambda _: self.accept_suggestion(True))
        self.accept_negative_button.on_click(lambda _: self.accept_suggestion(False))
        viewer.help_button.layout.display = "none"  # the picker's ? shows the viewer's keys too
        viewer.on_click(self.click)
        viewer.on_key(self._key)
        viewer.add_marks("tiles", self._draw_tiles)

        super().__init__(
            [
                widgets.HBox([self.feature_dropdown, self.mode_buttons, self.help_button]),
                self.counts,
                self.help,
                widgets.HBox([self.new_name, self.new_colour, self.new_size, self.add_button]),
                viewer,
                widgets.HBox(
                    [
                        self.tile_list,
                        widgets.VBox(
                            [
                                self.goto_button,
                                self.remove_button,
                                self.undo_button,
                                self.redo_button,
                            ]
                        ),
                    ]
                ),
                widgets.HBox(
                    [
                        self.suggest_button,
                        self.next_suggestion_button,
                        self.accept_positive_button,
                        self.accept_negative_button,
                    ]
                ),
                self.status,
            ]
        )
        self.refresh()

    # actions -------------------------------------------------------------------------------------
    def click(self, z: int, y: int, x: int) -> None:
        """What a click on voxel ``(z, y, x)`` of the viewer does: select, or add in an add mode."""
        try:
            action, tile = self.state.click(z, y, x)
        except TomosegError as error:
            self.status.value = f"<b>Not done:</b> {html.escape(str(error))}"
            return
        if tile is None:
            self.status.value = "selection cleared (a / x: add tiles)"
            self.select(None)
            return
        self.status.value = f"{action} {_describe(tile)}"
        if action == "added":
            self.refresh()
        self.select(tile.id)

    def delete_selected(self) -> None:
        """Remove the selected tile and its mask (undo brings both back)."""
        self._edit(self.state.delete_selected, "removed", "no tile selected: click one first")

    def undo(self) -> None:
        """Reverse the last add or remove (an accepted suggestion is suggested again)."""
        self._edit(self.state.undo, "undo:", "nothing to undo", pair=True)

    def redo(self) -> None:
        """Do again what the last undo reversed."""
        self._edit(self.state.redo, "redo:", "nothing to redo", pair=True)

    def set_mode(self, mode: str) -> None:
        """``"select"``, ``"positive"`` or ``"negative"`` (what a click on empty slice does)."""
        self.mode_buttons.value = mode

    def _edit(self, action: Callable, done: str, nothing: str, *, pair: bool = False) -> None:
        suggested = len(self.state.suggestions)
        try:
            result = action()
        except TomosegError as error:
            self.status.value = f"<b>Not done:</b> {html.escape(str(error))}"
            return
        if result is None:
            self.status.value = nothing
            return
        what, tile = result if pair else ("", result)
        self.status.value = " ".join(part for part in (done, what, _describe(tile)) if part)
        if len(self.state.suggestions) != suggested:  # an accept undone or redone
            # Back in the list, the suggestion is the one looked at; out again, Next shows the
            # one that moved into its place, as after the accept.
            self._accepted = len(self.state.suggestions) < suggested
            self._update_suggestion_buttons()
        self.refresh()
        self.select(self.state.selected)

    def select(self, tile_id: str | None) -> None:
        """Make ``tile_id`` the selected tile (highlighted; the mask painter follows)."""
        self.state.selected = tile_id
        listed = {value for _, value in self.tile_list.options}
        self.tile_list.value = tile_id if tile_id in listed else None
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
        check_open(self.project)
        self.project.add_feature(name, colour=colour, tile_size=tile_size)
        persist(self.project)
        self.feature_dropdown.options = list(self.project.features)
        self.feature_dropdown.value = name

    def set_prediction(
        self, feature: str, probability: np.ndarray, threshold: float = 0.5, *, z_start: int = 0
    ) -> None:
        """Give the picker a feature's ``(z, y, x)`` probability map (after a training).

        A map of a slab of slices (``prediction.predict_slab``) starts at slice ``z_start``.
        """
        self.predictions[feature] = (np.asarray(probability), float(threshold), int(z_start))
        self._update_suggestion_buttons()
        if feature == self.state.feature and not self.state.suggestions:
            self.status.value = f"{html.escape(feature)} predicted: press Suggest tiles"

    def suggest(self, k: int = 5) -> None:
        """Rank the next tiles of the current feature on its prediction and show the first."""
        feature = self.state.feature
        if feature not in self.predictions:
            self.status.value = "no prediction of this feature yet: train it first"
            return
        probability, threshold, z_start = self.predictions[feature]
        others = {  # the disagreement term compares maps of the same slices only
            n: p
            for n, (p, _, start) in self.predictions.items()
            if n != feature and start == z_start and p.shape == probability.shape
        }
        try:
            self.state.suggest(
                probability,
                threshold=threshold,
                k=k,
                others=others,
                other_thresholds={n: t for n, (_, t, _) in self.predictions.items()},
                z_start=z_start,
            )
        except TomosegError as error:
            self.status.value = f"<b>Not done:</b> {html.escape(str(error))}"
            return
        self._accepted = False
        self._show_suggestion()

    def next_suggestion(self) -> None:
        """Show the next suggestion (after an accept: the one that moved into its place)."""
        self.state.next_suggestion(0 if self._accepted else 1)
        self._accepted = False
        self._show_suggestion()

    def accept_suggestion(self, positive: bool) -> None:
        """Add the suggestion shown as a tile; a positive's mask starts from the prediction."""
        try:
            tile = self.state.accept_suggestion(positive)
        except TomosegError as error:
            self.status.value = f"<b>Not done:</b> {html.escape(str(error))}"
            return
        if tile is None:
            self.status.value = "no suggestion: press Suggest tiles"
            return
        self._accepted = True
        left = len(self.state.suggestions)
        then = "correct its mask in the painter, then " if positive else ""
        self.status.value = f"added {_describe(tile)}; {then}Next ({left} left)"
        self.refresh()
        self.select(tile.id)

    def _show_suggestion(self) -> None:
        suggestion = self.state.suggestion
        self._update_suggestion_buttons()
        if suggestion is None:
            self.status.value = "no tile to suggest: every place is annotated or near the edge"
            self.viewer.redraw_marks()
            return
        number = self.state.suggestion_index + 1
        self.status.value = (
            f"suggestion {number} / {len(self.state.suggestions)}: z {suggestion.z}, "
            f"y {suggestion.y}, x {suggestion.x} - {html.escape(suggestion.reason)} "
            f"(score {suggestion.score:.2f}); Accept + / Accept - / Next"
        )
        self.viewer.go_to(suggestion.z, suggestion.y, suggestion.x)
        self.viewer.redraw_marks()

    def _update_suggestion_buttons(self) -> None:
        self.suggest_button.disabled = self.state.feature not in self.predictions
        none = self.state.suggestion is None
        self.next_suggestion_button.disabled = none
        self.accept_positive_button.disabled = self.accept_negative_button.disabled = none

    # callbacks -----------------------------------------------------------------------------------
    def _add_feature(self) -> None:
        try:
            self.add_feature(
                self.new_name.value.strip(),
                colour=self.new_colour.value,
                tile_size=self.new_size.value,
            )
        except TomosegError as error:
            self.status.value = f"<b>Not added:</b> {html.escape(str(error))}"
            return
        self.new_name.value = ""
        self.status.value = f"added feature {self.state.feature}"

    def _feature_changed(self, change: dict) -> None:
        self.state.feature = change["new"]  # which drops the other feature's suggestions
        self._update_suggestion_buttons()
        self.refresh()

    def _mode_changed(self, change: dict) -> None:
        self.state.mode = change["new"]

    def _list_selected(self, change: dict) -> None:
        if change["new"] is not None and change["new"] != self.state.selected:
            self.select(change["new"])

    def _remove_selected(self) -> None:
        if self.tile_list.value is not None:
            self.state.selected = self.tile_list.value
            self.delete_selected()

    def _key(self, key: str) -> bool:
        if key in MODE_KEYS:
            if key == "Escape" and self.state.mode == "select":
                self.select(None)
            self.set_mode(MODE_KEYS[key])
        elif key in DELETE_CHORDS:
            self.delete_selected()
        elif key in UNDO_CHORDS:
            self.undo()
        elif key in REDO_CHORDS:
            self.redo()
        elif key in STEP_KEYS:
            tile = self.state.step(STEP_KEYS[key])
            if tile is not None:
                self.select(tile.id)
                self.go_to(tile.id)
        elif key == HELP_CHORD:
            self.help.toggle()
        else:
            return False
        return True

    def refresh(self) -> None:
        """Update counters, tile list and outlines (after the project changed elsewhere)."""
        self.counts.value = self.state.counts_text()
        options = [
            (_describe(t, t.positive and bool(self.project.mask(t.id).any())), t.id)
            for t in self.state.tiles()
        ]
        selected = self.state.selected
        # New options make the list pick its first entry; that is not the user selecting it.
        self.tile_list.unobserve(self._list_selected, names="value")
        self.tile_list.options = options
        self.tile_list.value = selected if selected in {v for _, v in options} else None
        self.tile_list.observe(self._list_selected, names="value")
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
        current_suggestion = self.state.suggestion
        size = self.project.features[self.state.feature].tile_size if self.state.feature else 0
        for suggestion in self.state.suggestions:
            if suggestion.z != view.z:
                continue
            left, top = view.image_to_canvas(
                suggestion.y - size // 2 - 0.5, suggestion.x - size // 2 - 0.5
            )
            layer.stroke_style = SUGGESTION_COLOUR
            layer.global_alpha = 1.0
            layer.line_width = 3 if suggestion == current_suggestion else 1
            layer.set_line_dash(SUGGESTION_DASH)
            layer.stroke_rect(left, top, size * view.scale, size * view.scale)
        layer.global_alpha = 1.0
        layer.set_line_dash([])


def _describe(tile: Tile, painted: bool = False) -> str:
    sign = "+" if tile.positive else "-"
    todo = " (painted)" if painted else (" (to paint)" if tile.positive else "")
    return f"{sign} {tile.feature} z {tile.z}, y {tile.y}, x {tile.x}{todo}"
