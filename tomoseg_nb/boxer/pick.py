"""Autopick micrographs with a trained boxer: picker map -> peaks -> classifier veto.

The two thresholds a user tunes are kept apart so each can be seen and changed cheaply: the picker
threshold decides the candidates, and ``classifier_threshold`` (0-1) vetoes candidates the
classifier calls bad. The picker threshold is a picker score (the network answers about 1 at a
particle centre and 0 on background); its default is calibrated at training from the references'
own scores (``calibrate``). ``threshold`` in standard deviations above the map mean (e2boxer's) is
still accepted. Peaks closer than the particle radius are merged (non-maximum suppression), so
touching particles give one pick each. An ``AutopickResult`` keeps every peak's score, so a widget
can move either threshold, or ask for an expected number of particles, without running any network
again. ``method="template"`` picks with the template-matching baseline instead, with the same peak
finding and no classifier.
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
from .calibrate import threshold_for_count
from .model import BoxerModel
from .networks import PICKER_STRIDE
from .peaks import find_peaks, map_threshold
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
    threshold : float or None
        Picker threshold in standard deviations above the map mean, when one was given; None when
        ``score_threshold`` was used directly.
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
    score_threshold : float
        The picker (or template) score a candidate reached, whichever way the threshold was given.
    peak_scores : numpy.ndarray
        Scores of every peak of the map after non-maximum suppression, above or below the
        threshold (descending): the histogram a threshold is chosen from, and what
        ``count_at`` / ``threshold_for_count`` read.
    """

    candidates: Picks
    classifier_scores: np.ndarray | None
    threshold: float | None
    classifier_threshold: float
    score_map: np.ndarray
    frame: WorkingFrame
    box_px: float
    method: str = "cnn"
    score_threshold: float = float("nan")
    peak_scores: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

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

    def count_at(self, score_threshold: float) -> int:
        """How many peaks a picker threshold of ``score_threshold`` would keep (before the veto)."""
        return int((self.peak_scores >= score_threshold).sum())

    def threshold_for_count(self, expected_count: int) -> float:
        """The picker score threshold that keeps the ``expected_count`` strongest peaks.

        For "I expect about N particles here": pass the result to ``autopick`` as
        ``score_threshold``. Fewer peaks than asked gives the lowest peak's score.
        """
        return threshold_for_count(self.peak_scores, expected_count)


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


def picker_score_map(raw_map: np.ndarray) -> np.ndarray:
    """Picker scores from its raw output: negatives zeroed (no evidence), a 1 px Gaussian merges
    split maxima. The same for whole micrographs and reference boxes, so thresholds carry over."""
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
    score_threshold: float | None = None,
    classifier_threshold: float | None = None,
    min_distance_px: float | None = None,
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
        Picker threshold in standard deviations of the map above its mean (e2boxer's). Lower picks
        more. Given, it replaces ``score_threshold``.
    score_threshold : float, optional
        Picker threshold as a score (the picker answers about 1 at a particle centre, 0 on
        background; template matching: a correlation). Default: the model's, calibrated at training
        from the references' own scores (``BoxerInfo.score_threshold``); template matching and
        models trained before calibration existed use ``BoxerInfo.threshold`` in standard
        deviations. Lower picks more.
    classifier_threshold : float, optional
        0-1; candidates the classifier scores below it are vetoed (default: the model's).
    min_distance_px : float, optional
        Peaks closer than this (pixels of ``image``) are merged into the strongest. Default: the
        particle radius, a third of the box (boxes are about 1.5 diameters), so particles that
        touch still give one pick each.
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
    if threshold is None and score_threshold is None:
        if method == "cnn" and info.score_threshold is not None:
            score_threshold = info.score_threshold
        else:  # template matching, or a model from before calibration
            threshold = info.threshold
    classifier_threshold = (
        info.classifier_threshold if classifier_threshold is None else float(classifier_threshold)
    )
    given = threshold if threshold is not None else score_threshold
    assert given is not None  # from the call, or the model's calibrated or sigma threshold
    if not np.isfinite(given) or not 0 <= classifier_threshold <= 1:
        raise BadInputError(
            f"picker threshold {given:g} must be a finite number and the classifier threshold "
            f"{classifier_threshold:g} within 0-1"
        )
    if min_distance_px is not None and not min_distance_px > 0:
        raise BadInputError(f"min_distance_px must be positive, got {min_distance_px}")
    prepared, frame = prepare_micrograph(image, box_px, recipe, name=name)
    # The particle radius by default: boxes are about 1.5 diameters, so a third of the box.
    min_distance = box / 3.0 if min_distance_px is None else min_distance_px * box / box_px
    if method == "cnn":
        score_map = picker_score_map(picker_map(model.picker, prepared, engine=engine))
        stride = PICKER_STRIDE
    else:
        score_map = template_score_map(prepared, rotated_templates(model.references, box))
        stride = 1
    if threshold is not None:
        score_threshold = map_threshold(score_map, float(threshold))
    assert score_threshold is not None  # given, calibrated, or from the sigma threshold above
    score_threshold = float(score_threshold)
    # Every peak above the map's mean is kept for the histogram and the count readout: below the
    # mean there is nothing a threshold would sensibly keep.
    floor = min(score_threshold, float(score_map.mean()))
    peaks, values = find_peaks(score_map, min_score=floor, min_distance_px=min_distance / stride)
    # Output pixel j of the picker covers working pixels 2j and 2j + 1.
    working = peaks * stride + (stride - 1) / 2.0
    source = frame.to_source(working)
    # A box cut by the image edge cannot be extracted for 2D classification: leave those out.
    half = box_px / 2.0
    inside = ((source >= half) & (source <= np.asarray(np.shape(image)) - 1 - half)).all(axis=1)
    working, source, values = working[inside], source[inside], values[inside]
    peak_scores = values.astype(np.float64)
    above = values >= score_threshold
    working, source, values = working[above], source[above], values[above]
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
        threshold=None if threshold is None else float(threshold),
        classifier_threshold=classifier_threshold,
        score_map=score_map,
        frame=frame,
        box_px=box_px,
        method=method,
        score_threshold=score_threshold,
        peak_scores=peak_scores,
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
    score_threshold: float | None = None,
    classifier_threshold: float | None = None,
    min_distance_px: float | None = None,
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

    with progress_bar(len(micrographs), "autopicking", progress) as advance:
        for index, item in enumerate(micrographs):
            if isinstance(item, np.ndarray):
                image, size, name = item, pixel_size, f"micrograph_{index + 1}"
            else:
                micrograph = read_micrograph(item, pixel_size=pixel_size)
                image, size, name = micrograph.image, micrograph.pixel_size, micrograph.name
            yield autopick(
                model,
                image,
                pixel_size=size,
                name=name,
                threshold=threshold,
                score_threshold=score_threshold,
                classifier_threshold=classifier_threshold,
                min_distance_px=min_distance_px,
                method=method,
                engine=engine,
            )
            advance(1)
