"""A trained boxer on disk: one folder with both networks, the good references and a JSON sidecar.

Layout of a boxer model folder (``MODEL/``, any name; ``.boxer`` is a good suffix)::

    boxer.json        what the networks expect: box size (px and A), pixel size, preprocessing
                      recipe, default thresholds, reference counts, training history, versions
    picker.keras      the fully convolutional picker (Conv2D / MaxPool2D / ReLU only)
    classifier.keras  the good-vs-bad classifier; absent when no bad references were given
    references.npz    the good references at the working scale (for the template-matching picker
                      and the references gallery); plain arrays, loaded without pickle

The folder is written atomically (it appears complete or not at all) and models are loaded with
Keras ``safe_mode``, so a model file cannot run code.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_output, check_output_path
from ..errors import BadInputError, MissingInputError, first_line
from .preprocess import BoxerRecipe

FORMAT_VERSION = 1
"""Version of the folder layout and ``boxer.json``; bumped when either changes incompatibly."""

SIDECAR = "boxer.json"
PICKER_FILE = "picker.keras"
CLASSIFIER_FILE = "classifier.keras"
REFERENCES_FILE = "references.npz"


@dataclass
class BoxerInfo:
    """Everything needed to apply a boxer to a new micrograph, and how it was trained.

    Attributes
    ----------
    box_px : float
        Box side in pixels of the training micrographs.
    pixel_size : float
        Angstrom per pixel of the training micrographs; micrographs of another pixel size are
        rescaled (with a warning).
    recipe : dict
        ``BoxerRecipe.to_dict()``: working box and filters.
    threshold : float
        Picker threshold in standard deviations of the map above its mean: the default of template
        matching, and of the picker when ``score_threshold`` is None (models trained before it).
    score_threshold : float or None
        Default picker threshold as a picker score, calibrated at training between the scores the
        picker gives the background and the good references (``calibrate``).
    reference_scores : dict
        Median picker score of the good and of the background references (the calibration).
    classifier_threshold : float
        Default classifier threshold (0-1): candidates scoring below are vetoed.
    counts : dict
        Number of good, background and bad references.
    history : dict
        Per-epoch losses (``picker_loss``, ``classifier_loss``, ...).
    train_seconds : float
        Wall time of training.
    """

    box_px: float
    pixel_size: float
    recipe: dict
    threshold: float = 1.0
    classifier_threshold: float = 0.5
    score_threshold: float | None = None
    reference_scores: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    train_seconds: float = 0.0
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    tomoseg_nb_version: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def box_angstrom(self) -> float:
        return self.box_px * self.pixel_size

    def boxer_recipe(self) -> BoxerRecipe:
        return BoxerRecipe.from_dict(self.recipe)


@dataclass
class BoxerModel:
    """A trained boxer: the picker, the optional classifier, the good references and their info.

    Attributes
    ----------
    picker : keras.Model
        Working-scale micrograph -> particle map at half resolution.
    classifier : keras.Model or None
        Working box -> probability of a good particle; None when trained without bad references.
    references : numpy.ndarray
        ``(N, c, c)`` good references at the working scale, with rotation margin.
    info : BoxerInfo
    """

    picker: Any
    classifier: Any
    references: np.ndarray
    info: BoxerInfo


def save_boxer(model: BoxerModel, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``model`` as a boxer model folder at ``path`` (layout in the module docstring).

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    from .. import __version__

    path = check_output_path(path, overwrite)
    model.info.tomoseg_nb_version = __version__
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.mkdir(parents=True)
        model.picker.save(tmp / PICKER_FILE)
        if model.classifier is not None:
            model.classifier.save(tmp / CLASSIFIER_FILE)
        np.savez(tmp / REFERENCES_FILE, good=np.asarray(model.references, dtype=np.float32))
        (tmp / SIDECAR).write_text(
            json.dumps(asdict(model.info), indent=2) + "\n", encoding="utf-8"
        )
    return path


def _checked_info(info: BoxerInfo) -> BoxerInfo:
    """``info`` with numbers made floats and checked, so a hand-edited boxer.json fails on loading."""
    for name in ("box_px", "pixel_size", "threshold", "classifier_threshold"):
        setattr(info, name, float(getattr(info, name)))
    if not (0 < info.box_px < np.inf and 0 < info.pixel_size < np.inf):
        raise ValueError(
            f"box {info.box_px} px and pixel size {info.pixel_size} A must be positive"
        )
    if info.score_threshold is not None:
        info.score_threshold = float(info.score_threshold)
        if not np.isfinite(info.score_threshold):
            raise ValueError(f"score_threshold must be finite, got {info.score_threshold}")
    if not np.isfinite(info.threshold) or not 0 <= info.classifier_threshold <= 1:
        raise ValueError("thresholds must be finite, the classifier's within 0-1")
    if not isinstance(info.recipe, dict):
        raise ValueError(f"recipe must be a JSON object, got {info.recipe!r}")
    info.boxer_recipe()  # validates the recipe's values
    return info


def load_boxer(path: str | os.PathLike) -> BoxerModel:
    """Read a boxer model folder written by ``save_boxer`` (Keras safe mode, no pickle).

    Raises
    ------
    MissingInputError
        ``path`` does not exist.
    BadInputError
        ``path`` is not a boxer model folder, was written by a newer tomoseg_nb, or is damaged.
    """
    from ..models import load_keras_file

    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path}: no such boxer model folder")
    sidecar = path / SIDECAR
    if not path.is_dir() or not sidecar.is_file():
        raise BadInputError(
            f"{path}: not a boxer model (a folder with {SIDECAR}, {PICKER_FILE}, {REFERENCES_FILE}, "
            "written by 'tomoseg-nb boxer train'); tomogram segmentation models (.keras) are used "
            "with 'tomoseg-nb segment'"
        )
    try:
        values = json.loads(sidecar.read_text(encoding="utf-8"))
        if int(values.get("format_version", 0)) > FORMAT_VERSION:
            raise BadInputError(
                f"{path}: written by a newer tomoseg_nb (format {values['format_version']}); "
                "upgrade tomoseg_nb to read it"
            )
        known = {key: values[key] for key in BoxerInfo.__dataclass_fields__ if key in values}
        info = _checked_info(BoxerInfo(**known))
        picker = load_keras_file(path / PICKER_FILE)
        classifier_path = path / CLASSIFIER_FILE
        classifier = load_keras_file(classifier_path) if classifier_path.exists() else None
        with np.load(path / REFERENCES_FILE, allow_pickle=False) as archive:
            references = np.asarray(archive["good"], dtype=np.float32)
    except BadInputError:
        raise
    # json, zipfile and numpy's header parser raise many types for damaged files (BadZipFile,
    # EOFError, NotImplementedError, SyntaxError, RecursionError...)
    except Exception as error:
        raise BadInputError(
            f"{path}: damaged boxer model ({first_line(error)}); train it again"
        ) from error
    return BoxerModel(picker=picker, classifier=classifier, references=references, info=info)
