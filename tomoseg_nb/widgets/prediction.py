"""After a training, predict a slab of slices with the new network: what tile suggestions rank.

Suggestions (``suggest.suggest_tiles``) need the feature's probability map. Applying a network to
every slice of a real tomogram takes far too long on a CPU to do after every training, so the
map is made for a slab of slices around the one the person is looking at (``slab_bounds``): deep
enough that suggestions can spread in z (``suggest.MIN_Z_DISTANCE`` slices apart), small enough
to take seconds. ``predict_slab`` runs ``segment.probability_slices`` over the slab a few slices
at a time (progress and cancel between them); ``PredictionPanel`` does it in the background
after each training in the app's Train tab and hands the result to whoever listens (the
Annotate tab's tile picker).
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..errors import CancelledError
from ..preprocess import z_window
from ..progress import ProgressCallback
from ..segment import FeatureNetwork, probability_slices
from ._source import SliceSource
from .monitor import Scheduler, notebook_scheduler
from .task_state import BackgroundTask
from .viewer import SliceViewer

MAX_SLICES = 32
"""Deepest default slab: room for suggestions ``suggest.MIN_Z_DISTANCE`` (8) slices apart."""
VOXEL_BUDGET = 16 * 2**20
"""Voxels predicted by default (64 MB of float32): 32 slices of 720 x 720, 4 of 2k x 2k."""
CHUNK_SLICES = 4
"""Slices per network call; progress is reported and cancel checked between chunks."""


@dataclass(frozen=True)
class SlabPrediction:
    """A feature's probability map on slices ``z_start`` to ``z_start + len(probability)``."""

    feature: str
    probability: np.ndarray
    threshold: float
    z_start: int = 0

    @property
    def z_stop(self) -> int:
        return self.z_start + int(self.probability.shape[0])


def default_slices(shape: tuple[int, ...], voxel_budget: int = VOXEL_BUDGET) -> int:
    """Slab depth for a tomogram of ``shape``: ``MAX_SLICES``, fewer where slices are large.

    >>> default_slices((300, 512, 512)), default_slices((300, 2048, 2048))
    (32, 4)
    """
    depth, height, width = (int(n) for n in shape)
    return max(1, min(MAX_SLICES, depth, voxel_budget // max(1, height * width)))


def slab_bounds(depth: int, z: int, slices: int) -> tuple[int, int]:
    """``(start, stop)`` of ``slices`` slices centred on ``z``, moved to lie inside ``depth``.

    >>> slab_bounds(100, 50, 32), slab_bounds(100, 3, 32), slab_bounds(10, 5, 32)
    ((34, 66), (0, 32), (0, 10))
    """
    slices = max(1, min(int(slices), int(depth)))
    start = min(max(int(z) - slices // 2, 0), int(depth) - slices)
    return start, start + slices


def predict_slab(
    model: Any,
    info: Any,
    source: SliceSource,
    *,
    z_start: int,
    z_stop: int,
    engine: str = "auto",
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> SlabPrediction:
    """Probability map of ``info.feature`` on slices ``z_start:z_stop`` of ``source``.

    ``model`` and ``info`` are what ``train.train_feature`` returns; the slices go through the
    preprocessing the network was trained with, as in ``segment.segment_volume``, a network with
    z context with its neighbouring slices (``preprocess.z_window``).
    """
    network = FeatureNetwork(model, info)
    depth, height, width = source.shape
    context = network.z_context
    total = z_stop - z_start
    probability = np.empty((total, height, width), np.float32)
    for start in range(z_start, z_stop, CHUNK_SLICES):
        if cancel is not None and cancel.is_set():
            raise CancelledError(f"prediction of {info.feature} cancelled")
        stop = min(z_stop, start + CHUNK_SLICES)
        window = z_window(start, stop, context, depth)
        block = np.stack([source.block(int(z), 0, height, 0, width) for z in window])
        (maps,) = probability_slices(
            [network], block, voxel_size=source.voxel_size, engine=engine, context=context
        )
        probability[start - z_start : stop - z_start] = maps
        if progress is not None:
            progress(stop - z_start, total)
    return SlabPrediction(info.feature, probability, float(info.threshold), z_start)


class PredictionPanel(widgets.VBox):
    """Predict a slab around the viewer's slice with a trained network, for tile suggestions.

    Parameters
    ----------
    source : SliceSource
        The tomogram.
    viewer : SliceViewer, optional
        The slab is centred on its current slice (default the middle slice).
    slices : int, optional
        Slab depth to start with (a widget changes it); default ``default_slices``.
    """

    def __init__(
        self,
        source: SliceSource,
        *,
        viewer: SliceViewer | None = None,
        slices: int | None = None,
        engine: str = "auto",
        schedule: Scheduler | None = None,
    ):
        self.source, self.viewer, self.engine = source, viewer, engine
        self.task = BackgroundTask()
        self.network: tuple[Any, Any] | None = None
        self.prediction: SlabPrediction | None = None
        self._listeners: list[Callable[[SlabPrediction], None]] = []
        self._schedule = schedule or notebook_scheduler()
        self.after_training = widgets.Checkbox(
            value=True,
            description="after training, predict slices for tile suggestions",
            indent=False,
            layout=widgets.Layout(width="330px"),
        )
        self.slices = widgets.BoundedIntText(
            value=default_slices(source.shape) if slices is None else slices,
            min=1,
            max=source.shape[0],
            description="slices",
            tooltip="How many slices around the viewer's slice (more: slower, wider choice)",
            layout=widgets.Layout(width="150px"),
        )
        self.predict_button = widgets.Button(
            description="Predict again",
            tooltip="Predict the slab around the slice on show with the last trained network",
            disabled=True,
        )
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="slices")
        self.status = widgets.HTML()
        self.predict_button.on_click(lambda _: self.predict())
        self.task.on_progress(lambda task: self._schedule(lambda: self._show_progress(task)))
        self.task.on_finish(lambda task: self._schedule(lambda: self._finished(task)))
        super().__init__(
            [
                widgets.HBox([self.after_training, self.slices, self.predict_button]),
                self.progress,
                self.status,
            ]
        )

    def on_prediction(self, listener: Callable[[SlabPrediction], None]) -> None:
        """``listener(prediction)`` when a prediction is ready (on the notebook's thread)."""
        self._listeners.append(listener)

    def trained(self, model: Any, info: Any) -> None:
        """A training finished: keep its network, and predict if *after training* is ticked."""
        self.network = (model, info)
        self.predict_button.disabled = False
        if self.after_training.value:
            self.predict()

    def predict(self) -> None:
        """Predict the slab around the viewer's slice with the last trained network."""
        if self.network is None:
            self.status.value = "no trained network yet: train one first"
            return
        if self.task.running:
            self.status.value = "still predicting"
            return
        model, info = self.network
        z = self.viewer.z if self.viewer is not None else self.source.shape[0] // 2
        start, stop = slab_bounds(self.source.shape[0], z, int(self.slices.value))
        self.predict_button.disabled = True
        self.progress.value, self.progress.max = 0, stop - start
        self.status.value = (
            f"predicting <b>{html.escape(info.feature)}</b> on slices {start}-{stop - 1}..."
        )
        self.task.start(
            predict_slab, model, info, self.source, z_start=start, z_stop=stop, engine=self.engine
        )

    def _show_progress(self, task: BackgroundTask) -> None:
        done, total = task.progress
        self.progress.max = max(1, total)
        self.progress.value = min(done, self.progress.max)

    def _finished(self, task: BackgroundTask) -> None:
        self.predict_button.disabled = self.network is None
        if task.status != "done":
            why = "cancelled" if task.status == "cancelled" else html.escape(str(task.error))
            self.status.value = f"<b>No prediction:</b> {why}"
            return
        prediction: SlabPrediction = task.result
        self.prediction = prediction
        self.progress.value = self.progress.max
        self.status.value = (
            f"<b>{html.escape(prediction.feature)}</b> predicted on slices "
            f"{prediction.z_start}-{prediction.z_stop - 1}: Annotate tab, Suggest tiles"
        )
        for listener in self._listeners:
            listener(prediction)
