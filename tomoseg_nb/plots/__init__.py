"""Matplotlib figures for notebooks and reports; each function returns a Figure (no ``plt.show``)."""

from __future__ import annotations

from .._lazy import lazy_exports

_PUBLIC = {
    "plot_slice_overlay": "segmentation",
    "plot_evaluation": "segmentation",
    "plot_loss": "training",
    "plot_losses": "training",
    "plot_tile_gallery": "training",
    "plot_probability_histogram": "training",
    "plot_picks": "picks",
    "plot_pick_matches": "picks",
    "plot_pick_histograms": "picks",
    "plot_label_overlay": "picks",
    "plot_references": "boxer",
    "plot_micrograph_picks": "boxer",
    "plot_score_histograms": "boxer",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _PUBLIC)
