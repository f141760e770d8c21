"""Notebook widgets (ipycanvas + ipywidgets): browse, choose tiles, paint, train, inspect results.

Widgets hold no science: every action calls a library function that a script or the CLI can call
too. The state of each interaction (view, tiles, brush, boxes, picks, a training run) is a plain
Python object in a ``*_state`` module that tests drive with synthetic events; the widgets render
that state and forward browser events to it. Imported lazily so ``import tomoseg_nb.widgets``
does not load Keras.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_PUBLIC = {
    "SliceViewer": "viewer",
    "TilePicker": "tiles",
    "MaskPainter": "painter",
    "BoxPicker": "boxes",
    "TrainingMonitor": "monitor",
    "PredictionPanel": "prediction",
    "LabelViewer": "results",
    "PickViewer": "results",
    "WorkflowApp": "app",
    "ViewState": "view_state",
    "PainterState": "paint_state",
    "TileState": "tile_state",
    "BoxState": "box_state",
    "PickReview": "pick_state",
    "TrainingRun": "training_state",
    "BackgroundTask": "task_state",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _PUBLIC)
