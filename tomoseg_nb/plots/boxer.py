"""Figures of the 2D boxer: the references, picks over a micrograph, score histograms.

Each function takes plain arrays (or a boxer's ``References`` / ``AutopickResult``) and returns a
matplotlib ``Figure``, never shown here: leave it as a notebook cell's last expression, or
``figure.savefig(path)``. They are how a user sees what the two thresholds do before trusting them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

KIND_COLOURS = {"good": "#3cb44b", "background": "#4363d8", "bad": "#e6194b"}


def plot_references(
    references: Mapping[str, np.ndarray], *, max_per_kind: int = 12, title: str = ""
) -> Figure:
    """Gallery of reference boxes, one row per kind (good, background, bad).

    Parameters
    ----------
    references : mapping
        ``{"good": (N, s, s), "background": ..., "bad": ...}``; ``References.boxes(kind)`` gives
        these for a boxer's references. Empty kinds are left out.
    max_per_kind : int
        Boxes shown per row.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    kinds = [kind for kind, boxes in references.items() if len(boxes)]
    columns = max(1, min(max_per_kind, max((len(references[k]) for k in kinds), default=1)))
    figure = Figure(
        figsize=(1.1 * columns + 0.8, 1.2 * max(1, len(kinds)) + 0.4), layout="constrained"
    )
    grid = figure.subplots(max(1, len(kinds)), columns, squeeze=False)
    for axes in grid.ravel():
        axes.set_axis_off()
    for row, kind in enumerate(kinds):
        boxes = np.asarray(references[kind])[:max_per_kind]
        for column, box in enumerate(boxes):
            axes = grid[row, column]
            low, high = np.percentile(box, [1, 99])
            axes.imshow(box, cmap="gray", vmin=low, vmax=high)
            if column == 0:
                axes.set_axis_on()
                axes.set_xticks([])
                axes.set_yticks([])
                axes.set_ylabel(f"{kind}\n({len(references[kind])})", color=_colour(kind))
    figure.suptitle(title or "boxer references")
    return figure


def _colour(kind: str) -> str:
    return KIND_COLOURS.get(kind, "0.3")


def plot_micrograph_picks(
    image: np.ndarray,
    result,
    *,
    box_px: float | None = None,
    truth: np.ndarray | None = None,
    max_display_px: int = 1024,
    title: str = "",
) -> Figure:
    """Picks over a micrograph: kept picks in green, candidates the classifier vetoed in red.

    Parameters
    ----------
    image : numpy.ndarray
        ``(y, x)`` micrograph the picks were made on.
    result : AutopickResult
        From ``autopick``; its two thresholds are written in the title.
    box_px : float, optional
        Circle diameter in pixels (default: the box size the picks were made with).
    truth : numpy.ndarray, optional
        ``(M, 2)`` y, x true particle positions, drawn as small crosses.
    max_display_px : int
        The image is block-averaged to at most this size for display (coordinates are scaled).
    title : str
        Figure title (the thresholds are appended).

    Returns
    -------
    matplotlib.figure.Figure
    """
    image = np.asarray(image, dtype=np.float32)
    factor = max(1, int(np.ceil(max(image.shape) / max_display_px)))
    ny, nx = (n // factor * factor for n in image.shape)
    shown = image[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor).mean(axis=(1, 3))
    figure = Figure(
        figsize=(7.5, 7.5 * shown.shape[0] / shown.shape[1] + 0.6), layout="constrained"
    )
    axes = figure.subplots()
    low, high = np.percentile(shown, [1, 99])
    axes.imshow(shown, cmap="gray", vmin=low, vmax=high)
    radius = (box_px or result.box_px) / 2 / factor
    kept = result.kept
    coordinates = result.candidates.coordinates / factor
    for (y, x), keep in zip(coordinates, kept, strict=True):
        colour = KIND_COLOURS["good"] if keep else KIND_COLOURS["bad"]
        axes.add_patch(Circle((x, y), radius, fill=False, color=colour, lw=1.2))
    if truth is not None and len(truth):
        truth = np.asarray(truth) / factor
        axes.plot(truth[:, 1], truth[:, 0], "+", color="#ffe119", ms=6, label="truth")
    axes.set_axis_off()
    classifier = (
        f", classifier >= {result.classifier_threshold:g}: {int(kept.sum())} kept, "
        f"{int((~kept).sum())} vetoed (red)"
        if result.classifier_scores is not None
        else ""
    )
    if result.threshold is not None:
        chosen = f"{result.threshold:g} sigma ({result.score_threshold:.3g})"
    else:
        chosen = f"{result.score_threshold:.3g}"
    axes.set_title(
        f"{title or result.candidates.tomogram}: picker threshold {chosen}, "
        f"{len(kept)} candidates{classifier}",
        fontsize="small",
    )
    return figure


def plot_score_histograms(results: Sequence, *, title: str = "") -> Figure:
    """Histograms of the picker's peak scores and the classifier's scores, thresholds marked.

    The picker panel shows every peak of the map (after non-maximum suppression), above and below
    the picker threshold, so one sees whether the threshold sits in the valley between particles
    and background, and how many picks another threshold would give. The classifier panel shows
    whether good particles and contamination separate: a clear valley is where the classifier
    threshold belongs.

    Parameters
    ----------
    results : sequence of AutopickResult
        One per micrograph (pooled); the first one's thresholds are drawn.
    title : str
        Figure title.
    """
    results = list(results)
    peaks = [r.peak_scores if len(r.peak_scores) else r.candidates.score_values for r in results]
    picker = np.concatenate(peaks) if peaks else np.zeros(0)
    with_classifier = [r for r in results if r.classifier_scores is not None]
    panels = 2 if with_classifier else 1
    figure = Figure(figsize=(5 * panels, 3.4), layout="constrained")
    axes = figure.subplots(1, panels, squeeze=False)[0]
    axes[0].hist(picker, bins=50, color="0.4")
    axes[0].set_xlabel("picker score (map peak)")
    axes[0].set_ylabel("peaks")
    if results and np.isfinite(results[0].score_threshold):
        threshold = results[0].score_threshold
        picked = int((picker >= threshold).sum())
        axes[0].axvline(
            threshold, color=KIND_COLOURS["good"], ls="--", label=f"threshold {threshold:.3g}"
        )
        axes[0].legend(fontsize="small")
        axes[0].set_title(
            f"picker: {picked} of {len(picker)} peaks above the threshold", fontsize="small"
        )
    else:
        axes[0].set_title(f"picker: {len(picker)} candidates", fontsize="small")
    if with_classifier:
        scores = np.concatenate([r.classifier_scores for r in with_classifier])
        threshold = with_classifier[0].classifier_threshold
        axes[1].hist(scores, bins=np.linspace(0, 1, 41), color="0.4")
        axes[1].axvline(
            threshold, color=KIND_COLOURS["bad"], ls="--", label=f"threshold {threshold:g}"
        )
        axes[1].set_xlabel("classifier score (P good)")
        axes[1].set_title(
            f"classifier: {int((scores < threshold).sum())} of {len(scores)} vetoed",
            fontsize="small",
        )
        axes[1].legend(fontsize="small")
    figure.suptitle(title or "boxer scores")
    return figure
