"""WorkflowApp: the whole protocol in one tabbed widget (Browse / Annotate / Train / Apply / Merge / Pick).

For workshops and tutorials: one cell, ``WorkflowApp.from_folder("my_project")``. Works in JupyterLab 4,
Notebook 7 and Voila (plain ipywidgets and ipycanvas, no notebook-only display tricks). Each tab is
built the first time it is opened, so the app starts fast and Keras is loaded only for training.
Every tab shares the project and one tomogram reader.

A correction round runs through the tabs: a training in Train ends with a prediction of a slab of
slices around the slice on show (``prediction.PredictionPanel``); it goes to the Annotate tab's
tile picker, whose *Suggest tiles* then shows where the network is least sure. A positive
suggestion accepted there opens in the mask painter with the thresholded prediction as its
mask, to correct; *Retrain* in Train fine-tunes the network on the grown set of tiles.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from pathlib import Path

import ipywidgets as widgets

from ..annotations import Project, Tile
from ..errors import MissingInputError
from ._source import SliceSource
from .monitor import Scheduler, TrainingMonitor
from .painter import MaskPainter
from .prediction import PredictionPanel, SlabPrediction
from .steps import MergePanel, PickPanel, SegmentPanel
from .tiles import TilePicker
from .viewer import SliceViewer

TABS = ("Browse", "Annotate", "Train", "Apply", "Merge", "Pick")
ANNOTATE_VIEW = (512, 512)
PAINTER_PX = 384


class WorkflowApp(widgets.VBox):
    """One tab per step of the protocol, on one annotation project.

    Parameters
    ----------
    project : Project
        The annotation project (its tomogram is what every tab shows).
    results_dir : path, optional
        Probability maps, labels and picks; default ``<project>/results``.
    models_dir : path, optional
        Trained networks; default ``<project>/models``.
    """

    def __init__(
        self,
        project: Project,
        *,
        results_dir: str | os.PathLike | None = None,
        models_dir: str | os.PathLike | None = None,
        schedule: Scheduler | None = None,
    ):
        if project.tomogram is None:
            raise MissingInputError(
                f"{project.folder}: the project names no tomogram; create it with "
                "Project.create(folder, tomogram=path)"
            )
        self.project = project
        self.tomogram: str = project.tomogram
        self.source = SliceSource(project.tomogram)
        self.results_dir = Path(results_dir) if results_dir else project.folder / "results"
        self.models_dir = Path(models_dir) if models_dir else project.folder / "models"
        self._schedule = schedule
        self.predictions: dict[str, SlabPrediction] = {}
        """The latest slab prediction of each feature (what the tile picker suggests from)."""
        self.tile_picker: TilePicker | None = None
        self._builders: dict[int, Callable[[], widgets.Widget]] = {
            0: self._browse,
            1: self._annotate,
            2: self._train,
            3: self._apply,
            4: self._merge,
            5: self._pick,
        }
        self.tab = widgets.Tab(children=[widgets.VBox() for _ in TABS], titles=list(TABS))
        self.tab.observe(lambda change: self._build(change["new"]), names="selected_index")
        header = widgets.HTML(
            f"<b>{html.escape(project.folder.name)}</b> &nbsp; tomogram "
            f"<code>{html.escape(Path(project.tomogram).name)}</code> "
            f"{'x'.join(str(n) for n in self.source.shape)}, {project.voxel_size:g} A/voxel"
        )
        super().__init__([header, self.tab])
        self.tab.selected_index = 0
        self._build(0)

    @classmethod
    def from_folder(
        cls, folder: str | os.PathLike, *, tomogram: str | os.PathLike | None = None, **options
    ) -> WorkflowApp:
        """Open the project in ``folder``, or create it for ``tomogram`` when there is none."""
        folder = Path(folder)
        if (folder / "project.json").exists() or tomogram is None:
            project = Project.open(folder)
        else:
            project = Project.create(folder, tomogram=tomogram)
        return cls(project, **options)

    def page(self, name: str) -> widgets.Widget:
        """The content of tab ``name`` (built on first use)."""
        index = TABS.index(name)
        self._build(index)
        return self.tab.children[index].children[0]

    def _build(self, index: int | None) -> None:
        if index is None or index not in self._builders:
            return
        content = self._builders.pop(index)()
        self.tab.children[index].children = [content]

    # tabs ----------------------------------------------------------------------------------------
    def _browse(self) -> widgets.Widget:
        return SliceViewer(self.source, side_views=True)

    def _annotate(self) -> widgets.Widget:
        picker = TilePicker(self.project, SliceViewer(self.source, view_shape=ANNOTATE_VIEW))
        painter = MaskPainter(self.project, self.source, canvas_px=PAINTER_PX)

        def paint(tile: Tile | None) -> None:
            if tile is not None and tile.positive:
                painter.show(tile.id)
            elif painter.tile is not None and painter.tile not in self.project.tiles:
                painter.show(None)  # the tile on show was removed (or its adding undone)

        def follow_feature(change: dict) -> None:
            if change["new"] is not None:
                painter.set_feature(change["new"])

        picker.on_select(paint)
        painter.on_save(lambda _: picker.refresh())
        picker.feature_dropdown.observe(follow_feature, names="value")
        self.tile_picker, self.mask_painter = picker, painter
        for prediction in self.predictions.values():
            self._give_picker(prediction)
        return widgets.HBox(
            [picker, painter], layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start")
        )

    def _train(self) -> widgets.Widget:
        viewer = SliceViewer(self.source, view_shape=ANNOTATE_VIEW)
        monitor = TrainingMonitor(
            self.project, viewer=viewer, models_dir=self.models_dir, schedule=self._schedule
        )
        panel = PredictionPanel(self.source, viewer=viewer, schedule=self._schedule)
        monitor.on_trained(panel.trained)
        panel.on_prediction(self._prediction_ready)
        self.training_monitor, self.prediction_panel = monitor, panel
        return widgets.HBox(
            [widgets.VBox([monitor, panel]), viewer],
            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"),
        )

    def _prediction_ready(self, prediction: SlabPrediction) -> None:
        self.predictions[prediction.feature] = prediction
        if self.tile_picker is not None:
            self._give_picker(prediction)

    def _give_picker(self, prediction: SlabPrediction) -> None:
        assert self.tile_picker is not None
        if prediction.feature in self.project.features:
            self.tile_picker.set_prediction(
                prediction.feature,
                prediction.probability,
                prediction.threshold,
                z_start=prediction.z_start,
            )

    def _apply(self) -> widgets.Widget:
        return SegmentPanel(
            self.source,
            self.tomogram,
            self.models_dir,
            self.results_dir,
            schedule=self._schedule,
        )

    def _merge(self) -> widgets.Widget:
        return MergePanel(self.source, self.results_dir, schedule=self._schedule)

    def _pick(self) -> widgets.Widget:
        return PickPanel(self.source, self.results_dir, schedule=self._schedule)
