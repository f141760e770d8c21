"""Autopick micrographs with a trained boxer: picker map -> peaks -> classifier veto.

The two thresholds a user tunes are kept apart so each can be seen and changed cheaply:
``threshold`` (picker map, in standard deviations above its mean) decides the candidates, and
``classifier_threshold`` (0-1) vetoes candidates the classifier calls bad. An ``AutopickResult``
keeps every candidate with both scores, so a widget can move the classifier threshold without
running any network again. ``method="template"`` picks with the template-matching baseline instead,
with the same peak finding and no classifier.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..coords import Picks
from ..errors import BadInputError
from ..progress import ProgressCallback, progress_bar
from .model import BoxerModel
from .networks import PICKER_STRIDE
from .peaks import find_peaks
from .preprocess import WorkingFrame, prepare_micrograph
from .references import extract_boxes
from .template import rotated_templates, template_score_map

METHODS = ("cnn", "template")


@dataclass
class AutopickResult:
    """Candidates of one micrograph with their scores, and the thresholds that select the picks.

    Attributes
    ----------
    candidates : Picks
        Every peak above the picker threshold, source pixels, ``scores`` = picker score.
    classifier_scores : numpy.ndarray or None
        ``(N,)`` classifier probability of a good particle; None without a classifier.
    threshold : float
        Picker threshold used (standard deviations above the map mean).
    classifier_threshold : float
        Candidates whose classifier score is below this are vetoed.
    score_map : numpy.ndarray
        The picker (or template) map at its own resolution, for display.
    frame : WorkingFrame
        Maps working coordinates to source pixels.
    box_px : float
        Box side in pixels of the micrograph.
    method : str
        ``"cnn"`` or ``"template"``.
    """

    candidates: Picks
    classifier_scores: np.ndarray | None
    threshold: float
    classifier_threshold: float
    score_map: np.ndarray
    frame: WorkingFrame
    box_px: float
    method: str = "cnn"

    @property
    def kept(self) -> np.ndarray:
        """Bool ``(N,)``: candidates that pass the classifier threshold."""
        if self.classifier_scores is None:
            return np.ones(len(self.candidates), bool)
        return self.classifier_scores >= self.classifier_threshold

    @property
    def picks(self) -> Picks:
        """The final picks: candidates the classifier keeps."""
        return self.candidates.subset(self.kept)

    def with_classifier_threshold(self, classifier_threshold: float) -> AutopickResult:
        """The same candidates with another classifier threshold (no network runs)."""
        return dataclasses.replace(self, classifier_threshold=float(classifier_threshold))


def picker_map(picker, prepared: np.ndarray, *, engine: str = "auto") -> np.ndarray:
    """Apply the picker network to a whole prepared micrograph; raw output at half resolution.

    The one place a network meets a whole micrograph: ``engine.predict_slices`` runs it (FFT or
    Keras convolution, whichever is faster here, tiled so memory stays bounded).

    Returns
    -------
    numpy.ndarray
        ``(ceil(y / 2), ceil(x / 2))``; output pixel ``j`` is centred on working pixel ``2j + 0.5``.
    """
    from ..engine import predict_slices

    maps = predict_slices([picker], np.asarray(prepared, dtype=np.float32)[None], engine=engine)
    return maps[0][0]


def _smoothed_positive(raw_map: np.ndarray) -> np.ndarray:
    """Negative responses carry no evidence (zeroed); a 1 px Gaussian merges split maxima."""
    return ndimage.gaussian_filter(np.clip(raw_map, 0, None), 1.0)


def _resolve_pixel_size(model: BoxerModel, pixel_size: float | None, name: str) -> float:
    trained = model.info.pixel_size
    if pixel_size is None:
        return trained
    if not pixel_size > 0:
        raise BadInputError(f"{name}: pixel size must be positive, got {pixel_size}")
    if abs(pixel_size / trained - 1.0) > 0.01:
        warnings.warn(
            f"{name}: pixel size {pixel_size:g} A differs from the training micrographs' "
            f"{trained:g} A; rescaling so the box covers the same {model.info.box_angstrom:.0f} A",
            UserWarning,
            stacklevel=3,
        )
    return float(pixel_size)


def autopick(
    model: BoxerModel,
    image: np.ndarray,
    *,
    pixel_size: float | None = None,
    threshold: float | None = None,
    classifier_threshold: float | None = None,
    method: str = "cnn",
    engine: str = "auto",
    name: str = "micrograph",
) -> AutopickResult:
    """Pick particles in one micrograph.

    Parameters
    ----------
    model : BoxerModel
        Trained boxer (``train_boxer`` or ``load_boxer``).
    image : numpy.ndarray
        ``(y, x)`` micrograph.
    pixel_size : float, optional
        Angstrom per pixel of ``image``; None means the training pixel size. Another value rescales
        the micrograph (with a warning) so the box covers the same area of specimen.
    threshold : float, optional
        Picker threshold in standard deviations of the map above its mean (default: the model's).
        Lower picks more.
    classifier_threshold : float, optional
        0-1; candidates the classifier scores below it are vetoed (default: the model's).
    method : {"cnn", "template"}
        The CNN boxer, or template matching with the good references (no classifier).
    engine : str
        Passed to ``picker_map`` (``"auto"``, ``"keras"`` or ``"fft"``).
    name : str
        Micrograph name, given to the picks and used in messages.

    Returns
    -------
    AutopickResult
        ``.picks`` are the final picks (source pixels, scores = picker score).
    """
    if method not in METHODS:
        raise BadInputError(
            f"unknown picking method {method!r}; choose one of {', '.join(METHODS)}"
        )
    info = model.info
    size = _resolve_pixel_size(model, pixel_size, name)
    recipe = info.boxer_recipe()
    box = recipe.working_box_px
    box_px = info.box_angstrom / size
    threshold = info.threshold if threshold is None else float(threshold)
    classifier_threshold = (
        info.classifier_threshold if classifier_threshold is None else float(classifier_threshold)
    )
    if not np.isfinite(threshold) or not 0 <= classifier_threshold <= 1:
        raise BadInputError(
            f"threshold {threshold:g} must be a finite number of standard deviations and the "
            f"classifier threshold {classifier_threshold:g} within 0-1"
        )
    prepared, frame = prepare_micrograph(image, box_px, recipe, name=name)
    if method == "cnn":
        score_map = _smoothed_positive(picker_map(model.picker, prepared, engine=engine))
        peaks, values = find_peaks(
            score_map, threshold_sigma=threshold, min_distance_px=box / 2 / PICKER_STRIDE
        )
        # Output pixel j of the picker covers working pixels 2j and 2j + 1.
        working = peaks * PICKER_STRIDE + (PICKER_STRIDE - 1) / 2.0
    else:
        templates = rotated_templates(model.references, box)
        score_map = template_score_map(prepared, templates)
        working, values = find_peaks(score_map, threshold_sigma=threshold, min_distance_px=box / 2)
    source = frame.to_source(working)
    # A box cut by the image edge cannot be extracted for 2D classification: leave those out.
    half = box_px / 2.0
    inside = ((source >= half) & (source <= np.asarray(np.shape(image)) - 1 - half)).all(axis=1)
    working, source, values = working[inside], source[inside], values[inside]
    scores = None
    if method == "cnn" and model.classifier is not None:
        scores = classify_boxes(model.classifier, prepared, working, box)
    candidates = Picks(
        coordinates=source,
        scores=values.astype(np.float64),
        voxel_size=size,
        shape=tuple(np.shape(image)),
        tomogram=name,
    )
    return AutopickResult(
        candidates=candidates,
        classifier_scores=scores,
        threshold=threshold,
        classifier_threshold=classifier_threshold,
        score_map=score_map,
        frame=frame,
        box_px=box_px,
        method=method,
    )


def classify_boxes(
    classifier, prepared: np.ndarray, working_yx: np.ndarray, box_px: int
) -> np.ndarray:
    """Classifier probability of a good particle for boxes centred on ``working_yx``."""
    if len(working_yx) == 0:
        return np.zeros(0)
    import keras

    boxes = extract_boxes(prepared, working_yx, box_px)[..., None]
    scores = [
        keras.ops.convert_to_numpy(classifier(boxes[start : start + 512], training=False))
        for start in range(0, len(boxes), 512)
    ]
    return np.concatenate(scores).astype(np.float64).reshape(-1)


def autopick_micrographs(
    model: BoxerModel,
    micrographs: Sequence[str | os.PathLike | np.ndarray],
    *,
    pixel_size: float | None = None,
    threshold: float | None = None,
    classifier_threshold: float | None = None,
    method: str = "cnn",
    engine: str = "auto",
    progress: ProgressCallback | None = None,
) -> Iterator[AutopickResult]:
    """Yield ``autopick`` results micrograph by micrograph (read one at a time, so any number fits).

    Use ``list(autopick_micrographs(...))`` to keep them all; a caller that writes each result as
    it comes (the CLI) holds one micrograph at a time.

    Parameters
    ----------
    micrographs : sequence of path or numpy.ndarray
        MRC (``.mrc``, one-frame ``.mrcs``), TIFF or 8/16-bit PNG/JPEG files, or arrays.
    pixel_size : float, optional
        Overrides the files' pixel sizes. Files without one (PNG / JPEG, or 1.0 in an MRC header)
        are taken to have the training pixel size.
    progress : callable, optional
        ``callback(done, total)`` after each micrograph.

    Other parameters are those of ``autopick``.
    """
    from .files import read_micrograph

    options = dict(
        threshold=threshold, classifier_threshold=classifier_threshold, method=method, engine=engine
    )
    with progress_bar(len(micrographs), "autopicking", progress) as advance:
        for index, item in enumerate(micrographs):
            if isinstance(item, np.ndarray):
                image, size, name = item, pixel_size, f"micrograph_{index + 1}"
            else:
                micrograph = read_micrograph(item, pixel_size=pixel_size)
                image, size, name = micrograph.image, micrograph.pixel_size, micrograph.name
            yield autopick(model, image, pixel_size=size, name=name, **options)
            advance(1)
