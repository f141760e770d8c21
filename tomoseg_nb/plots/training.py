"""Figures of training: loss curves, tiles with masks and predictions, probability histograms,
and how the threshold was chosen on the painted tiles.

Each function takes plain arrays and returns a matplotlib ``Figure`` (never shown here): display it
in a notebook by leaving it as a cell's last expression, or ``figure.savefig(path)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..errors import BadInputError
from ..thresholds import ThresholdCounts


def plot_loss(history: Mapping[str, Sequence[float]], *, title: str = "") -> Figure:
    """Training and validation loss per epoch, with the best validation epoch marked.

    The loss is EMAN2's ``log(mean squared error)``: lower is better, and a validation curve that
    turns upwards while training keeps falling means the network is memorising its tiles.
    """
    figure = Figure(figsize=(5.5, 3.5), layout="constrained")
    _draw_loss(figure.subplots(), history, title or "training loss")
    return figure


def plot_losses(histories: Mapping[str, Mapping[str, Sequence[float]]]) -> Figure:
    """``plot_loss`` for several networks side by side, one panel per feature (a report's figure)."""
    if not histories:
        raise BadInputError("no training history to plot")
    figure = Figure(figsize=(4.2 * len(histories), 3.4), layout="constrained")
    panels = figure.subplots(1, len(histories), squeeze=False)[0]
    for axes, (name, history) in zip(panels, histories.items(), strict=True):
        _draw_loss(axes, history, name)
    return figure


def _draw_loss(axes, history: Mapping[str, Sequence[float]], title: str) -> None:
    names = {"loss": "training", "val_loss": "validation (held-out tiles)"}
    for key, label in names.items():
        values = list(history.get(key, []))
        if values:
            axes.plot(np.arange(1, len(values) + 1), values, marker="o", ms=3, label=label)
    validation = list(history.get("val_loss", []))
    if validation:
        best = int(np.argmin(validation))
        axes.axvline(best + 1, color="0.6", ls=":", label=f"best epoch ({best + 1})")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss  log(MSE)")
    axes.set_title(title)
    if axes.lines:
        axes.legend(fontsize="small")


def plot_tile_gallery(
    images: np.ndarray,
    masks: np.ndarray,
    predictions: np.ndarray,
    *,
    held_out: Sequence[bool] | np.ndarray | None = None,
    threshold: float | None = None,
    max_tiles: int = 8,
    title: str = "",
) -> Figure:
    """Tiles side by side: image, painted mask and network prediction, one column per tile.

    Parameters
    ----------
    images : ndarray
        ``(N, s, s)`` preprocessed tiles, or ``(N, s, s, 2k + 1)`` tiles with z context ``k``
        (the tile's own slice, the middle channel, is drawn).
    masks : ndarray
        ``(N, s, s)`` painted masks.
    predictions : ndarray
        ``(N, s', s')`` probabilities (any resolution; ``train.predict_tiles`` gives them at the
        network's output stride); drawn over the same area as the tile.
    held_out : sequence of bool, optional
        Marks tiles that were not trained on (titled "held out").
    threshold : float, optional
        Draw the prediction's contour at this probability over the mask.
    max_tiles : int
        Show at most this many tiles (the first ones; pass a selection to show others).
    """
    images, masks, predictions = (np.asarray(a) for a in (images, masks, predictions))
    if images.ndim == 4:  # z context: the slice itself is the middle channel
        images = images[..., images.shape[-1] // 2]
    count = min(len(images), max_tiles)
    held = np.zeros(len(images), bool) if held_out is None else np.asarray(held_out, bool)
    figure = Figure(figsize=(1.6 * max(count, 1) + 0.6, 5.2), layout="constrained")
    panels = figure.subplots(3, max(count, 1), squeeze=False)
    for row, label in enumerate(("image", "mask", "prediction")):
        panels[row, 0].set_ylabel(label)
    for column in range(count):
        size = images[column].shape[-1]
        extent = (-0.5, size - 0.5, size - 0.5, -0.5)  # imshow: (left, right, bottom, top)
        rows_down = (-0.5, size - 0.5, -0.5, size - 0.5)  # contour: row 0 at y = -0.5, the top
        panels[0, column].imshow(images[column], cmap="gray", interpolation="nearest")
        panels[0, column].set_title("held out" if held[column] else "training", fontsize="small")
        panels[1, column].imshow(
            masks[column], cmap="gray", vmin=0, vmax=1, interpolation="nearest"
        )
        panels[2, column].imshow(
            predictions[column],
            cmap="magma",
            vmin=0,
            vmax=1,
            extent=extent,
            interpolation="nearest",
        )
        if threshold is not None and predictions[column].max() >= threshold:
            panels[1, column].contour(
                predictions[column], [threshold], colors="#e6194b", linewidths=0.8, extent=rows_down
            )
    for axes in panels.ravel():
        axes.set_xticks([])
        axes.set_yticks([])
    figure.suptitle(title or "tiles: image, mask, prediction")
    return figure


def plot_probability_histogram(
    probabilities: np.ndarray,
    *,
    truth: np.ndarray | None = None,
    threshold: float | None = None,
    bins: int = 50,
    title: str = "",
) -> Figure:
    """Histogram of probabilities; split into feature and background voxels when ``truth`` is given.

    A good network puts the feature near 1 and the background near 0 with little overlap; the
    threshold line shows where the two are cut apart. Counts are on a log scale since background
    usually dominates.
    """
    probabilities = np.asarray(probabilities, dtype=np.float32).ravel()
    figure = Figure(figsize=(5.5, 3.5), layout="constrained")
    axes = figure.subplots()
    edges = np.linspace(0, 1, bins + 1).tolist()
    if truth is None:
        axes.hist(probabilities, bins=edges, color="0.4", label="all voxels")
    else:
        truth = np.asarray(truth, dtype=bool).ravel()
        if truth.shape != probabilities.shape:
            raise BadInputError(
                f"truth has {truth.size} voxels but probabilities {probabilities.size}"
            )
        axes.hist(probabilities[~truth], bins=edges, alpha=0.6, color="0.4", label="background")
        axes.hist(probabilities[truth], bins=edges, alpha=0.6, color="#e6194b", label="feature")
    if threshold is not None:
        axes.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:g}")
    axes.set_yscale("log")
    axes.set_xlabel("probability")
    axes.set_ylabel("voxels")
    axes.set_title(title or "probabilities")
    axes.legend(fontsize="small")
    return figure


def plot_tile_thresholds(
    tiles: ThresholdCounts,
    *,
    beta: float,
    chosen: float | None = None,
    volume: ThresholdCounts | None = None,
    title: str = "",
) -> Figure:
    """Precision, recall, IoU and F-beta of the painted tiles at every threshold, the chosen one
    marked; with ``volume`` (counts against a known truth: a phantom), the whole tomogram's IoU.

    The stored threshold is where F-beta over the painted tiles peaks (``beta`` > 1 leans to
    recall). Where the tiles' curves are flat, several thresholds fit the painting equally: that
    is the range worth trying by hand (``merge_files`` takes a threshold per feature). The
    tomogram's IoU, when known, shows how far the tiles' choice is from the best on unseen voxels.
    """
    if volume is not None and volume.thresholds != tiles.thresholds:
        raise BadInputError("the tiles' and the tomogram's counts use different thresholds")
    t = np.asarray(tiles.thresholds)
    curves = {
        "precision": tiles.precision(),
        "recall": tiles.recall(),
        "IoU": tiles.iou(),
        f"F{beta:g}": tiles.f_score(beta),
    }
    figure = Figure(figsize=(5.5, 3.5), layout="constrained")
    axes = figure.subplots()
    for label, values in curves.items():
        axes.plot(t, values, marker="o", ms=3, label=f"tiles: {label}")
    if volume is not None:
        axes.plot(t, volume.iou(), "k--", label="tomogram: IoU (truth)")
    if chosen is not None:
        axes.axvline(chosen, color="0.5", ls=":", label=f"chosen {chosen:g}")
    axes.set_xlabel("threshold")
    axes.set_ylim(0, 1.02)
    axes.set_title(title or "threshold on the painted tiles")
    axes.legend(fontsize="small")
    return figure
