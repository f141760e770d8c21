"""Panels for the volume steps of the workflow: apply networks, merge features, pick particles.

Each panel collects the options of one library call (``segment.segment_volume``,
``merge.merge_files``, ``picking.pick_particles``), runs it in a ``BackgroundTask`` with a progress
bar and a cancel button, and shows the result in a viewer. Files go where the CLI would put them:
``<results>/<tomogram>__<feature>.mrc``, ``<results>/labels.mrc``, ``<results>/<map>.star``.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..coords import Picks
from ..maps import MapName, find_maps
from ..merge import merge_files
from ..picking import locate_map, pick_map_file
from ..segment import segment_volume
from ._source import SliceSource
from .monitor import Scheduler, notebook_scheduler
from .results import LabelViewer, PickViewer
from .task_state import BackgroundTask
from .viewer import SliceViewer

LABELS_NAME = "labels.mrc"


def pick_map(path: str | os.PathLike, *, threshold: float, min_distance_angstrom: float) -> Picks:
    """Pick particles from a probability-map file, in the frame of its tomogram (as the CLI does)."""
    located = locate_map(path)
    return pick_map_file(
        located, threshold=threshold, min_distance_px=min_distance_angstrom / located.voxel_size
    ).picks


class _TaskPanel(widgets.VBox):
    """Options, a Run / Cancel pair, a progress bar, a status line and a result area.

    Subclasses define ``run()`` (collect the options, ``_launch`` the call) and ``show(result)``.
    """

    def __init__(self, options: list[widgets.Widget], schedule: Scheduler | None):
        self.task = BackgroundTask()
        self._schedule = schedule or notebook_scheduler()
        self.run_button = widgets.Button(description="Run", button_style="primary")
        self.cancel_button = widgets.Button(description="Cancel", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=1)
        self.status = widgets.HTML()
        self.result_box = widgets.VBox()
        self.run_button.on_click(lambda _: self.run())
        self.cancel_button.on_click(lambda _: self.task.cancel())
        self.task.on_progress(lambda task: self._schedule(lambda: self._show_progress(task)))
        self.task.on_finish(lambda task: self._schedule(lambda: self._finished(task)))
        super().__init__(
            [
                *options,
                widgets.HBox([self.run_button, self.cancel_button, self.progress]),
                self.status,
                self.result_box,
            ]
        )

    def _launch(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if self.task.running:
            self.status.value = "still running; cancel it first"
            return
        self.run_button.disabled, self.cancel_button.disabled = True, False
        self.progress.value = 0
        self.status.value = "running..."
        self.task.start(function, *args, **kwargs)

    def _show_progress(self, task: BackgroundTask) -> None:
        done, total = task.progress
        self.progress.max = max(1, total)
        self.progress.value = min(done, self.progress.max)

    def _finished(self, task: BackgroundTask) -> None:
        self.run_button.disabled, self.cancel_button.disabled = False, True
        if task.status == "done":
            self.progress.value = self.progress.max
            self.status.value = "done"
            self.show(task.result)
        elif task.status == "cancelled":
            self.status.value = "cancelled; nothing was written"
        else:
            self.status.value = f"<b>Failed:</b> {html.escape(str(task.error))}"


class SegmentPanel(_TaskPanel):
    """Apply trained networks (``.keras`` files) to the tomogram, one probability map each."""

    def __init__(
        self,
        source: SliceSource,
        tomogram: str | os.PathLike,
        models_dir: Path,
        results_dir: Path,
        *,
        schedule: Scheduler | None = None,
    ):
        self.source, self.tomogram = source, Path(tomogram)
        self.models_dir, self.results_dir = models_dir, results_dir
        self.models = widgets.SelectMultiple(options=[], rows=5, description="networks")
        self.refresh_button = widgets.Button(description="Refresh list")
        self.engine = widgets.Dropdown(options=["auto", "keras", "fft"], description="engine")
        self.dtype = widgets.Dropdown(
            options=["float32", "float16", "uint8"], description="store as"
        )
        self.overwrite = widgets.Checkbox(value=False, description="overwrite", indent=False)
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__(
            [
                widgets.HBox([self.models, self.refresh_button]),
                widgets.HBox([self.engine, self.dtype, self.overwrite]),
            ],
            schedule,
        )
        self.refresh()

    def refresh(self) -> None:
        """List the saved networks."""
        found = sorted(self.models_dir.glob("*.keras"))
        self.models.options = [(p.stem, str(p)) for p in found]
        self.models.value = tuple(str(p) for p in found)
        if not found:
            self.status.value = f"no networks in {html.escape(str(self.models_dir))}: train one"

    def run(self) -> None:
        if not self.models.value:
            self.status.value = "choose at least one network"
            return
        self._launch(
            segment_volume,
            list(self.models.value),
            self.tomogram,
            self.results_dir,
            engine=self.engine.value,
            dtype=self.dtype.value,
            overwrite=self.overwrite.value,
        )

    def show(self, result: list[Path]) -> None:
        viewer = SliceViewer(self.source)
        for path in result:
            viewer.add_overlay(MapName.parse(path).feature, path)
        self.status.value = "wrote " + ", ".join(html.escape(p.name) for p in result)
        self.result_box.children = [viewer]


class MergePanel(_TaskPanel):
    """Competitive merging of the probability maps into one label volume."""

    def __init__(
        self, source: SliceSource, results_dir: Path, *, schedule: Scheduler | None = None
    ):
        self.source, self.results_dir = source, results_dir
        self.maps = widgets.SelectMultiple(options=[], rows=5, description="maps")
        self.refresh_button = widgets.Button(description="Refresh list")
        self.threshold = widgets.FloatSlider(
            value=0.8, min=0.05, max=0.99, step=0.01, description="threshold"
        )
        self.overwrite = widgets.Checkbox(value=False, description="overwrite", indent=False)
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__(
            [
                widgets.HBox([self.maps, self.refresh_button]),
                widgets.HBox([self.threshold, self.overwrite]),
            ],
            schedule,
        )
        self.refresh()

    def refresh(self) -> None:
        """List the probability maps of the results folder."""
        found = find_maps(self.results_dir)
        self.maps.options = [(p.name, str(p)) for p in found]
        self.maps.value = tuple(str(p) for p in found)

    def run(self) -> None:
        if not self.maps.value:
            self.status.value = "no probability maps chosen: apply networks first"
            return
        self._launch(
            merge_files,
            list(self.maps.value),
            self.results_dir / LABELS_NAME,
            threshold=self.threshold.value,
            overwrite=self.overwrite.value,
            cancel_keyword=None,
        )

    def show(self, result: Any) -> None:
        self.result_box.children = [LabelViewer(self.source, result.labels_path, result.names)]


class PickPanel(_TaskPanel):
    """Particles from one probability map, reviewed and exported in the picks viewer."""

    def __init__(
        self, source: SliceSource, results_dir: Path, *, schedule: Scheduler | None = None
    ):
        self.source, self.results_dir = source, results_dir
        self.map = widgets.Dropdown(options=[], description="map")
        self.refresh_button = widgets.Button(description="Refresh list")
        self.threshold = widgets.FloatSlider(
            value=0.5, min=0.05, max=0.99, step=0.01, description="threshold"
        )
        self.min_distance = widgets.BoundedFloatText(
            value=200.0, min=1.0, max=1e5, description="min dist. A"
        )
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__(
            [
                widgets.HBox([self.map, self.refresh_button]),
                widgets.HBox([self.threshold, self.min_distance]),
            ],
            schedule,
        )
        self.refresh()

    def refresh(self) -> None:
        """List the probability maps of the results folder."""
        previous = self.map.value
        options = [(p.name, str(p)) for p in find_maps(self.results_dir)]
        self.map.options = options
        values = [value for _, value in options]
        self.map.value = previous if previous in values else (values[0] if values else None)

    def run(self) -> None:
        if self.map.value is None:
            self.status.value = "no probability map: apply networks first"
            return
        self._launch(
            pick_map,
            self.map.value,
            threshold=self.threshold.value,
            min_distance_angstrom=self.min_distance.value,
            progress_keyword=None,
            cancel_keyword=None,
        )

    def show(self, result: Picks) -> None:
        radius_px = self.min_distance.value / 2 / max(result.voxel_size, np.finfo(float).tiny)
        viewer = PickViewer(self.source, result, radius_px=radius_px)
        stem = Path(self.map.value).stem
        viewer.export_path.value = str(self.results_dir / f"{stem}.star")
        self.status.value = f"{len(result)} picks"
        self.result_box.children = [viewer]
