"""Result viewers: merged labels with a legend, and picks with a score threshold and review.

``LabelViewer`` shows a competitive-merge label map (``merge.merge_competitive``) over the
tomogram with one colour per feature and the share of each on the current slice. ``PickViewer``
draws picks as circles (spheres cut by the slice), hides those below a score threshold, lets a
click select a pick and Delete reject it (or keep it again; Ctrl+Z / z undoes, as in every canvas
widget), shows the score histogram (``plots.picks.plot_pick_histograms``) and exports what is kept
with ``coords.write_picks``.
"""

from __future__ import annotations

import html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import ipywidgets as widgets
import numpy as np
from ipycanvas import Canvas

from ..coords import FORMATS, Picks, write_picks
from ..errors import TomosegError
from ..plots.picks import plot_pick_histograms
from ..volume import Volume
from ._render import palette_colour
from ._source import SliceSource
from .keymap import DELETE_CHORDS, HELP_CHORD, REDO_CHORDS, UNDO_CHORDS, HelpOverlay
from .pick_state import PickReview
from .view_state import ViewState
from .viewer import SliceViewer

KEPT_COLOUR = "#3cb44b"
REJECTED_COLOUR = "#e6194b"
SELECTED_COLOUR = "#ffd700"


def _label_names(names: Mapping[int, str] | Sequence[str]) -> dict[int, str]:
    if isinstance(names, Mapping):
        return {int(k): str(v) for k, v in names.items() if int(k) != 0}
    return {k: str(n) for k, n in enumerate(names, start=1)}


class LabelViewer(widgets.VBox):
    """A tomogram with merged labels tinted, and a legend of the features.

    Parameters
    ----------
    volume : Volume, array or path
        The tomogram.
    labels : Volume, array or path
        Integer labels of the same shape (0 = nothing; k = k-th feature).
    names : mapping or sequence
        Label -> feature name (``merge.read_label_names``), or names of labels 1, 2, ...
    colours : mapping, optional
        Label -> hex colour; default the package palette.
    """

    def __init__(
        self,
        volume: SliceSource | Volume | np.ndarray | str | os.PathLike,
        labels: Volume | np.ndarray | str | os.PathLike,
        names: Mapping[int, str] | Sequence[str],
        *,
        colours: Mapping[int, str] | None = None,
        opacity: float = 0.5,
        viewer: SliceViewer | None = None,
    ):
        self.names = _label_names(names)
        self.colours = {k: (colours or {}).get(k, palette_colour(k)) for k in self.names}
        self.viewer = viewer if viewer is not None else SliceViewer(volume)
        self.overlay = self.viewer.add_overlay(
            "labels", labels, kind="labels", colours=self.colours, opacity=opacity
        )
        self.legend = widgets.HTML()
        self.viewer.on_view_change(lambda _: self._update_legend())
        super().__init__([self.legend, self.viewer])
        self._update_legend()

    def shares(self) -> dict[int, float]:
        """Percentage of the current slice each label covers."""
        labels = self.overlay.slice_at(self.viewer.z)
        if labels is None:
            return dict.fromkeys(self.names, 0.0)
        labels = np.asarray(labels)
        return {k: 100.0 * np.count_nonzero(labels == k) / labels.size for k in self.names}

    def _update_legend(self) -> None:
        shares = self.shares()
        items = [
            f'<span style="display:inline-block;width:12px;height:12px;'
            f'background:{self.colours[k]}"></span> {k} {html.escape(name)} '
            f"({shares[k]:.1f}% of slice {self.viewer.z})"
            for k, name in self.names.items()
        ]
        self.legend.value = " &nbsp; ".join(items)


class PickViewer(widgets.VBox):
    """Picks over a tomogram or micrograph: threshold, select and reject, histogram, export.

    Parameters
    ----------
    volume : Volume, array or path
        The tomogram ``(z, y, x)`` or micrograph ``(y, x)`` the picks belong to.
    picks : Picks
        From ``picking.pick_particles`` or the boxer (or ``coords.read_picks``).
    radius_px : float
        Drawn radius and click tolerance, voxels.
    threshold : float, optional
        Initial score threshold; default the lowest score (everything shown).
    """

    def __init__(
        self,
        volume: SliceSource | Volume | np.ndarray | str | os.PathLike,
        picks: Picks,
        *,
        radius_px: float,
        threshold: float | None = None,
        viewer: SliceViewer | None = None,
    ):
        self.picks = picks
        scores = np.asarray(picks.score_values, dtype=np.float64)
        low = float(scores.min()) if len(scores) else 0.0
        high = float(scores.max()) if len(scores) else 1.0
        self.review = PickReview(
            picks.coordinates,
            scores,
            radius_px=radius_px,
            threshold=low if threshold is None else threshold,
        )
        self.viewer = viewer if viewer is not None else SliceViewer(volume)
        self.threshold = widgets.FloatSlider(
            value=self.review.threshold,
            min=low,
            max=max(high, low + 1e-6),
            step=max((high - low) / 200, 1e-6),
            description="score >=",
            readout_format=".3g",
            continuous_update=False,
        )
        self.counts = widgets.HTML()
        self.histogram = widgets.Image(format="png", layout=widgets.Layout(max_width="480px"))
        self.export_path = widgets.Text(description="export to", placeholder="picks.star")
        self.export_format = widgets.Dropdown(
            options=["from suffix", *FORMATS], value="from suffix", description="format"
        )
        self.overwrite = widgets.Checkbox(value=False, description="overwrite", indent=False)
        self.export_button = widgets.Button(description="Export kept picks")
        self.status = widgets.HTML()
        self.reject_button = widgets.Button(description="Reject / keep (Delete)")
        self.undo_button = widgets.Button(description="Undo (z)")
        self.help = HelpOverlay("slice viewer", "pick viewer")
        self.help_button = widgets.Button(
            description="?", tooltip="Keys and mouse (key ?)", layout=widgets.Layout(width="32px")
        )

        self.threshold.observe(self._threshold_changed, names="value")
        self.export_button.on_click(lambda _: self._export_clicked())
        self.reject_button.on_click(lambda _: self.toggle_selected())
        self.undo_button.on_click(lambda _: self.undo())
        self.help_button.on_click(lambda _: self.help.toggle())
        self.viewer.help_button.layout.display = "none"  # ours lists the viewer's keys too
        self.viewer.on_click(self.click)
        self.viewer.on_key(self._key)
        self.viewer.add_marks("picks", self._draw_picks)
        super().__init__(
            [
                widgets.HBox([self.threshold, self.counts]),
                self.help,
                self.viewer,
                widgets.HBox([self.reject_button, self.undo_button, self.help_button]),
                self.histogram,
                widgets.HBox(
                    [self.export_path, self.export_format, self.overwrite, self.export_button]
                ),
                self.status,
            ]
        )
        self._refresh()

    def click(self, z: int, y: int, x: int) -> None:
        """Select the pick nearest the clicked voxel (a click never rejects)."""
        position = (z, y, x) if self.review.coordinates.shape[1] == 3 else (y, x)
        index = self.review.click(*position)
        self.status.value = (
            "no pick here" if index is None else f"pick {index} selected (Delete rejects it)"
        )
        self.viewer.redraw_marks()

    def toggle_selected(self) -> None:
        """Reject the selected pick, or keep it again if it was rejected."""
        self._changed(self.review.toggle_selected(), "", "no pick selected: click one first")

    def undo(self) -> None:
        """Reverse the last reject or keep."""
        self._changed(self.review.undo(), "undo: ", "nothing to undo")

    def redo(self) -> None:
        """Do again what the last undo reversed."""
        self._changed(self.review.redo(), "redo: ", "nothing to redo")

    def _changed(self, index: int | None, prefix: str, nothing: str) -> None:
        if index is None:
            self.status.value = nothing
            return
        state = "kept" if self.review.accepted[index] else "rejected"
        self.status.value = f"{prefix}pick {index} {state}"
        self._refresh()

    def _key(self, key: str) -> bool:
        actions = (
            (DELETE_CHORDS, self.toggle_selected),
            (UNDO_CHORDS, self.undo),
            (REDO_CHORDS, self.redo),
            ({HELP_CHORD}, self.help.toggle),
        )
        for chords, action in actions:
            if key in chords:
                action()
                return True
        return False

    def kept_picks(self) -> Picks:
        """The picks above the threshold that were not rejected."""
        return self.picks.subset(self.review.kept())

    def export(
        self, path: str | os.PathLike, *, format: str | None = None, overwrite: bool = False
    ) -> Path:
        """Write the kept picks with ``coords.write_picks``."""
        return write_picks(path, self.kept_picks(), format, overwrite=overwrite)

    def _threshold_changed(self, change: dict) -> None:
        self.review.threshold = float(change["new"])
        self._refresh()

    def _refresh(self) -> None:
        shown, kept = self.review.shown(), self.review.kept()
        self.counts.value = (
            f"{int(shown.sum())} of {len(shown)} picks above the threshold, {int(kept.sum())} kept"
        )
        self.histogram.value = self._histogram_png()
        self.viewer.redraw_marks()

    def _histogram_png(self) -> bytes:
        figure = plot_pick_histograms(self.review.scores, kept=self.review.kept())
        axes = figure.axes[0]
        axes.axvline(self.review.threshold, color="0.3", ls="--", lw=1)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=72)
        return buffer.getvalue()

    def _export_clicked(self) -> None:
        chosen = self.export_format.value
        try:
            path = self.export(
                self.export_path.value.strip(),
                format=None if chosen == "from suffix" else chosen,
                overwrite=self.overwrite.value,
            )
        except (TomosegError, OSError) as error:
            self.status.value = f"<b>Not exported:</b> {html.escape(str(error))}"
            return
        self.status.value = f"wrote {len(self.kept_picks())} picks to {html.escape(str(path))}"

    def _draw_picks(self, layer: Canvas, view: ViewState) -> None:
        indices, radii = self.review.on_slice(view.z)
        if not indices.size:
            return
        centres = self.review.coordinates[indices, -2:]
        x, y = view.image_to_canvas(centres[:, 0], centres[:, 1])
        accepted = self.review.accepted[indices]
        layer.line_width = 2
        for colour, chosen in ((KEPT_COLOUR, accepted), (REJECTED_COLOUR, ~accepted)):
            if chosen.any():
                layer.stroke_style = colour
                layer.stroke_circles(x[chosen], y[chosen], radii[chosen] * view.scale)
        selected = indices == self.review.selected
        if selected.any():
            layer.stroke_style = SELECTED_COLOUR
            layer.stroke_circles(x[selected], y[selected], radii[selected] * view.scale + 3)
