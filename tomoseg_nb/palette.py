"""Distinct colours for features and labels, shared by projects, widgets and figures."""

PALETTE = (
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#fabed4",
    "#469990",
    "#dcbeff",
    "#9a6324",
)
"""In order: feature k of a project, and label k of a merge (``PALETTE[(k - 1) % 12]``)."""
