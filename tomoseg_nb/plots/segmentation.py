"""Figures of segmentations: a slice with probability overlays, and evaluation bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from ..errors import BadInputError
from ..palette import PALETTE

DEFAULT_COLOURS = PALETTE


def contrast_limits(
    image: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.0)
) -> tuple[float, float]:
    """Display range that ignores the few extreme voxels (gold, hot pixels)."""
    low, high = np.percentile(image, percentiles)
    return float(low), float(high if high > low else low + 1.0)


def plot_slice_overlay(
    image: np.ndarray,
    probabilities: Mapping[str, np.ndarray] | None = None,
    *,
    threshold: float | Mapping[str, float] = 0.5,
    colours: Sequence[str] = DEFAULT_COLOURS,
    alpha: float = 0.45,
    title: str = "",
    overlay_title: str | None = None,
) -> Figure:
    """One slice in grey with each feature's probability above ``threshold`` tinted in its colour.

    Parameters
    ----------
    image : ndarray
        ``(y, x)`` slice of the tomogram.
    probabilities : mapping
        Feature name -> ``(y, x)`` probability map of the same slice (or a boolean mask, such as
        the ground truth: then name it with ``overlay_title``).
    threshold : float or mapping
        One threshold for every feature, or feature name -> threshold: each network's own
        (``ModelInfo.threshold``), so the figure shows what segmentation and scores count. The
        legend then gives each feature's.
    overlay_title : str, optional
        Title of the tinted panel; default ``"probability >= <threshold>"`` (with one threshold
        per feature, "probability >= each feature's threshold").
    """
    probabilities = dict(probabilities or {})
    per_feature = isinstance(threshold, Mapping)
    cuts = (
        dict(threshold)
        if isinstance(threshold, Mapping)
        else dict.fromkeys(probabilities, threshold)
    )
    if missing := ", ".join(sorted(set(probabilities) - set(cuts))):
        raise BadInputError(f"no threshold given for {missing}; give one per feature shown")
    figure = Figure(figsize=(5.5 if not probabilities else 11, 5.5), layout="constrained")
    panels = figure.subplots(1, 2 if probabilities else 1, squeeze=False)[0]
    low, high = contrast_limits(image)
    for axes in panels:
        axes.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        axes.set_axis_off()
    panels[0].set_title(title or "tomogram")
    if probabilities:
        overlay = np.zeros((*image.shape, 4), np.float32)
        for (name, probability), colour in zip(probabilities.items(), colours, strict=False):
            cut = cuts[name]
            shown = np.asarray(probability) >= cut
            overlay[shown, :3] = to_rgb(colour)
            overlay[shown, 3] = alpha
            label = f"{name} (>= {cut:g})" if per_feature else name
            panels[1].plot([], [], "s", color=colour, label=label)
        panels[1].imshow(overlay, interpolation="nearest")
        panels[1].legend(loc="upper right", fontsize="small", framealpha=0.8)
        panels[1].set_title(
            overlay_title
            if overlay_title is not None
            else "probability >= each feature's threshold"
            if per_feature
            else f"probability >= {threshold:g}"
        )
    return figure


def plot_evaluation(
    report: Mapping, metrics: Sequence[str] = ("iou", "dice", "precision", "recall")
) -> Figure:
    """Grouped bars of ``evaluate`` scores per feature (one or several reports side by side).

    ``report`` is what ``evaluate`` returns, or a mapping label -> such report (e.g. ``{"CNN": a,
    "random forest": b}``) to compare methods on the same features.
    """
    reports = {"": report} if "features" in report else dict(report)
    features = list(next(iter(reports.values()))["features"])
    figure = Figure(figsize=(2.2 + 1.6 * len(features) * len(reports), 3.6), layout="constrained")
    axes = figure.subplots()
    width = 0.8 / (len(metrics) * len(reports))
    positions = np.arange(len(features))
    for r, (label, result) in enumerate(reports.items()):
        for m, metric in enumerate(metrics):
            values = [result["features"][name][metric] for name in features]
            offset = (r * len(metrics) + m) * width - 0.4 + width / 2
            axes.bar(
                positions + offset,
                values,
                width,
                label=f"{label} {metric}".strip(),
                alpha=1.0 - 0.35 * r,
            )
    axes.set_xticks(positions, features)
    axes.set_ylim(0, 1)
    axes.set_ylabel("score")
    axes.legend(fontsize="small", ncols=len(reports), loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure
