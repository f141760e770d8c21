"""TrainingMonitor: train a feature's network in the background and watch it learn.

Start runs ``train.train_feature`` in a thread (``TrainingRun``), so the notebook stays usable. The
monitor shows a progress bar over all batches, the loss curves (``plots.training.plot_loss``) after
every epoch, how the threshold was chosen on the painted tiles once done
(``plots.training.plot_tile_thresholds``), a cancel button, and - with a viewer - a preview of the half-trained network on the
part of the viewer's current slice that is on screen (``segment.probability_slices``). Drawing
happens on the notebook's own thread: the training thread computes, then hands the update over.

Once a feature has a network - trained in this session, or saved as ``<models>/<feature>.keras`` -
the button reads *Retrain* and the person chooses: continue from the current weights (fine-tune,
``train_feature(initial_model=...)``: a correction round after adding tiles) or start again from
new weights. The epochs box offers the config's ``fine_tune_epochs`` for the one and ``epochs``
for the other (changed when the choice changes, so a person's own number stays until then).
``on_trained`` listeners get each finished network (the app predicts a slab with it for tile
suggestions).
"""

from __future__ import annotations

import asyncio
import html
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..annotations import Project
from ..errors import TomosegError
from ..plots.training import plot_loss, plot_tile_thresholds
from ..preprocess import z_window
from ..segment import FeatureNetwork, probability_slices
from ..thresholds import ThresholdCounts
from ..training_config import DEFAULT_TRAINING, TrainingConfig
from .training_state import TrainingRun
from .viewer import SliceViewer

PREVIEW_PX = 256
"""Largest preview square (slice pixels): a CPU-trained network is applied to it every epoch."""

Scheduler = Callable[[Callable[[], None]], None]
TrainedListener = Callable[[Any, Any], None]
START_FROM = (("continue (fine-tune)", "continue"), ("start again", "scratch"))
"""Retrain from the feature's current network, or from new random weights."""


def notebook_scheduler() -> Scheduler:
    """Run callables on the notebook's event loop (widget updates from the training thread).

    In a kernel the cell runs inside the loop; elsewhere (scripts, tests) calls run immediately.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return lambda function: function()

    def schedule(function: Callable[[], None]) -> None:
        loop.call_soon_threadsafe(function)

    return schedule


def preview_probability(
    model: Any,
    image: np.ndarray,
    *,
    feature: str,
    voxel_size: float,
    recipe: Any,
    arch: str,
    z_context: int = 0,
) -> np.ndarray:
    """Probability map of a (possibly half-trained) network on a raw image block.

    ``image`` is ``(y, x)``, or for a network with z context ``k`` the ``(2k + 1, y, x)`` stack of
    the slice and its neighbours (``preprocess.z_window``).
    """
    from ..models import ModelInfo  # Keras: loaded when a network is previewed

    info = ModelInfo(
        feature=feature,
        arch=arch,
        voxel_size=voxel_size * recipe.binning,
        recipe=recipe.to_dict(),
        training={"config": {"z_context": z_context}},
    )
    network = FeatureNetwork(model, info)
    window = image[None] if image.ndim == 2 else image
    (maps,) = probability_slices(
        [network], window, voxel_size=voxel_size, engine="keras", context=z_context
    )
    return maps[0]


class TrainingMonitor(widgets.VBox):
    """Train one feature at a time, with live loss, progress, cancel and a slice preview.

    Parameters
    ----------
    project : Project
        Annotation project with painted tiles.
    viewer : SliceViewer, optional
        Where the per-epoch preview is drawn (on its current slice).
    models_dir : path, optional
        Where Save puts ``<feature>.keras``; default ``<project>/models``.
    run : TrainingRun, optional
        For a custom training function (tests); default trains with ``train_feature``.
    config : TrainingConfig
        Settings of every run; the network and epochs widgets start from it and replace its
        ``arch`` and ``epochs`` (``fine_tune_epochs`` when continuing).
    """

    def __init__(
        self,
        project: Project,
        *,
        viewer: SliceViewer | None = None,
        feature: str | None = None,
        models_dir: str | os.PathLike | None = None,
        run: TrainingRun | None = None,
        preview_px: int = PREVIEW_PX,
        schedule: Scheduler | None = None,
        config: TrainingConfig = DEFAULT_TRAINING,
    ):
        from ..models import ARCHITECTURES

        self.project = project
        self.viewer = viewer
        self.run = run or TrainingRun()
        self.models_dir = Path(models_dir) if models_dir else project.folder / "models"
        self.preview_px = preview_px
        self.config = config
        self._schedule = schedule or notebook_scheduler()
        self.networks: dict[str, tuple[Any, Any]] = {}
        """The last network trained in this session for each feature: ``(model, info)``."""
        self._trained_listeners: list[TrainedListener] = []
        self._epochs_offered_for: bool | None = None
        """Whether the epochs box was last set for a fine-tune (True) or a new network (False)."""

        features = list(project.features)
        self.feature_dropdown = widgets.Dropdown(
            options=features,
            value=feature or (features[0] if features else None),
            description="feature",
        )
        self.arch_dropdown = widgets.Dropdown(
            options=list(ARCHITECTURES), value=config.arch, description="network"
        )
        self.epochs = widgets.BoundedIntText(
            value=config.epochs, min=1, max=1000, description="epochs"
        )
        self.preview = widgets.Checkbox(
            value=viewer is not None,
            disabled=viewer is None,
            description="preview on the viewer after each epoch",
            indent=False,
        )
        self.start_from = widgets.ToggleButtons(
            options=START_FROM,
            value="continue",
            tooltips=[
                "Fine-tune the feature's current network on all its tiles (a correction round)",
                "Train a new network from random weights",
            ],
            layout=widgets.Layout(display="none"),
        )
        self.start_button = widgets.Button(description="Train", button_style="primary")
        self.cancel_button = widgets.Button(description="Cancel", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="batches")
        self.status = widgets.HTML("not started")
        # Hidden until the first epoch: an empty Image shows the browser's broken-image icon.
        self.loss_plot = widgets.Image(
            format="png", layout=widgets.Layout(max_width="560px", display="none")
        )
        self.threshold_plot = widgets.Image(
            format="png", layout=widgets.Layout(max_width="560px", display="none")
        )
        self.save_path = widgets.Text(description="save as", layout=widgets.Layout(width="420px"))
        self.overwrite = widgets.Checkbox(value=False, description="overwrite", indent=False)
        self.save_button = widgets.Button(description="Save model", disabled=True)

        self.feature_dropdown.observe(lambda _: self._feature_changed(), names="value")
        self.start_from.observe(lambda _: self._offer_epochs(), names="value")
        self.start_button.on_click(lambda _: self.start())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.save_button.on_click(lambda _: self._save_clicked())
        self.run.on_progress(self._progressed)
        self.run.on_epoch(self._epoch_ended)
        self.run.on_finish(self._finished)
        self._feature_changed()

        super().__init__(
            [
                widgets.HBox([self.feature_dropdown, self.arch_dropdown, self.epochs]),
                self.preview,
                self.start_from,
                widgets.HBox([self.start_button, self.cancel_button, self.progress]),
                self.status,
                widgets.HBox([self.loss_plot, self.threshold_plot]),
                widgets.HBox([self.save_path, self.overwrite, self.save_button]),
            ]
        )

    # actions -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start training the selected feature in the background."""
        feature = self.feature_dropdown.value
        if feature is None:
            self.status.value = "<b>Not started:</b> the project has no feature yet"
            return
        if self.run.running:
            self.status.value = "<b>Not started:</b> a training run is already going"
            return
        options: dict[str, Any] = {}
        status = f"training <b>{feature}</b>..."
        continuing = self._continues(feature)
        if continuing:
            try:
                model, info, origin = self._current_network(feature)
            except TomosegError as error:
                self.status.value = f"<b>Not started:</b> {html.escape(str(error))}"
                return
            self.arch_dropdown.value = info.arch  # fine-tuning keeps the network's architecture
            options["initial_model"] = model
            status = f"fine-tuning <b>{feature}</b> from {html.escape(origin)}..."
        # The widgets are set before the thread starts: it may finish (and report) at once.
        self.start_button.disabled = self.save_button.disabled = True
        self.cancel_button.disabled = False
        self.progress.value, self.progress.max = 0, 1
        self.threshold_plot.layout.display = "none"  # the last network's, until this one is done
        self.status.value = status
        epochs = {"fine_tune_epochs" if continuing else "epochs": int(self.epochs.value)}
        config = self.config.replace(arch=self.arch_dropdown.value, **epochs)
        self.run.start_training(self.project, feature, config, **options)

    def _continues(self, feature: str) -> bool:
        """Whether *Retrain* would fine-tune ``feature``'s network rather than start a new one."""
        return self.start_from.value == "continue" and self.has_network(feature)

    def has_network(self, feature: str) -> bool:
        """Whether ``feature`` has a network to fine-tune: from this session, or saved."""
        return feature in self.networks or self._saved_path(feature).is_file()

    def _current_network(self, feature: str) -> tuple[Any, Any, str]:
        """``(model, info, where from)``: this session's last network, else the saved one."""
        if feature in self.networks:
            return (*self.networks[feature], "its current network")
        from ..models import load_model

        path = self._saved_path(feature)
        model, info = load_model(path)
        if info.feature != feature:
            raise TomosegError(f"{path} is a network of {info.feature!r}, not of {feature!r}")
        return model, info, f"the saved {path.name}"

    def _saved_path(self, feature: str) -> Path:
        return self.models_dir / f"{feature}.keras"

    def on_trained(self, listener: TrainedListener) -> None:
        """``listener(model, info)`` after each successful training (on the notebook's thread)."""
        self._trained_listeners.append(listener)

    def cancel(self) -> None:
        """Stop the run after the current batch."""
        self.run.cancel()
        self.status.value = "cancelling..."

    def save(self, path: str | os.PathLike | None = None, *, overwrite: bool = False) -> Path:
        """Save the trained network (``.keras`` + JSON sidecar) with ``models.save_model``."""
        from ..models import save_model

        if self.run.status != "done":
            raise TomosegError("no trained network to save yet; train one first")
        target = Path(path) if path is not None else Path(self.save_path.value)
        return save_model(self.run.model, self.run.info, target, overwrite=overwrite)

    # listeners (training thread) -----------------------------------------------------------------
    def _progressed(self, run: TrainingRun) -> None:
        done, total = run.batches
        self._schedule(lambda: self._show_progress(done, total))

    def _epoch_ended(self, run: TrainingRun, model: Any) -> None:
        png = _png(plot_loss(run.history, title=f"{run.feature}: epoch {run.epochs_done}"))
        text = f"training <b>{run.feature}</b>: epoch {run.epochs_done} / {run.epochs}"
        try:
            preview = self._compute_preview(run, model)
        except Exception as error:  # a failed preview must not stop the training
            preview = None
            text += f" (no preview: {error})"
        self._schedule(lambda: self._show_epoch(png, text, preview))

    def _finished(self, run: TrainingRun) -> None:
        self._schedule(lambda: self._show_finished(run))

    def _compute_preview(self, run: TrainingRun, model: Any) -> tuple | None:
        viewer = self.viewer
        if viewer is None or not self.preview.value or run.feature is None:
            return None
        z = viewer.z
        y0, y1, x0, x1 = viewer.visible_region(self.preview_px)
        context = self.config.z_context
        window = z_window(z, z + 1, context, viewer.source.shape[0])
        block = np.stack([viewer.source.block(int(i), y0, y1, x0, x1) for i in window])
        probability = preview_probability(
            model,
            block,
            feature=run.feature,
            voxel_size=float(self.project.voxel_size),
            recipe=self.config.recipe,
            arch=self.arch_dropdown.value,
            z_context=context,
        )
        full = np.zeros(viewer.state.slice_shape, dtype=np.float32)
        full[y0:y1, x0:x1] = probability
        return run.feature, z, full

    # updates (notebook thread) -------------------------------------------------------------------
    def _show_progress(self, done: int, total: int) -> None:
        self.progress.max = max(1, total)
        self.progress.value = min(done, self.progress.max)

    def _show_epoch(self, png: bytes, text: str, preview: tuple | None) -> None:
        self.loss_plot.value = png
        self.loss_plot.layout.display = "block"
        if self.run.running:
            self.status.value = text
        if preview is not None and self.viewer is not None:
            feature, z, probability = preview
            colour = self.project.features[feature].colour
            self.viewer.add_overlay(f"preview {feature}", probability, colour=colour, z=z)

    def _show_threshold(self, info: Any) -> None:
        """The painted tiles' precision, recall, IoU and F-beta per threshold, the chosen one
        marked: where the curves are flat, other thresholds fit the painting about as well."""
        training = getattr(info, "training", None) or {}
        if training.get("tiles_counts") is None:  # a network without them: nothing to show
            self.threshold_plot.layout.display = "none"
            return
        figure = plot_tile_thresholds(
            ThresholdCounts.from_dict(training["tiles_counts"]),
            beta=TrainingConfig.from_dict(training["config"]).threshold_beta,
            chosen=info.threshold,
            title=f"{info.feature}: threshold on the painted tiles",
        )
        self.threshold_plot.value = _png(figure)
        self.threshold_plot.layout.display = "block"

    def _show_finished(self, run: TrainingRun) -> None:
        self.start_button.disabled = False
        self.cancel_button.disabled = True
        if run.status == "done":
            history = run.history.get("val_loss") or run.history.get("loss") or [float("nan")]
            fine_tuned = (getattr(run.info, "training", None) or {}).get("fine_tuned")
            how = "fine-tuned" if fine_tuned else "trained"
            self.status.value = (
                f"<b>{run.feature}</b> {how}: {run.epochs_done} epochs, final loss "
                f"{history[-1]:.3f}, threshold {run.info.threshold:.2f}. Save it below."
            )
            self.save_button.disabled = False
            self._show_threshold(run.info)
            if run.feature is not None:
                self.networks[run.feature] = (run.model, run.info)
            self._feature_changed()
            for listener in self._trained_listeners:
                listener(run.model, run.info)
        elif run.status == "cancelled":
            self.status.value = "cancelled: no network was kept"
        else:
            self.status.value = f"<b>Training failed:</b> {run.error}"

    def _feature_changed(self) -> None:
        """Offer *Retrain* (continue or start again) once the feature has a network."""
        self._default_save_path()
        feature = self.feature_dropdown.value
        retrain = feature is not None and self.has_network(feature)
        self.start_button.description = "Retrain" if retrain else "Train"
        self.start_from.layout.display = None if retrain else "none"
        self._offer_epochs()

    def _offer_epochs(self) -> None:
        """Put the config's epochs for what the button will do (fine-tune or new) in the box."""
        feature = self.feature_dropdown.value
        continuing = feature is not None and self._continues(feature)
        if continuing != self._epochs_offered_for:
            self._epochs_offered_for = continuing
            self.epochs.value = self.config.epochs_for(fine_tuning=continuing)

    def _default_save_path(self) -> None:
        feature = self.feature_dropdown.value
        if feature is not None:
            self.save_path.value = str(self.models_dir / f"{feature}.keras")

    def _save_clicked(self) -> None:
        try:
            path = self.save(overwrite=self.overwrite.value)
        except TomosegError as error:
            self.status.value = f"<b>Not saved:</b> {error}"
            return
        self.status.value = f"saved {path}"


def _png(figure: Any) -> bytes:
    """A matplotlib figure as PNG bytes for a ``widgets.Image``."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()
