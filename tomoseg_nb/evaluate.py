"""Score the whole protocol against ground truth with a simulated annotator.

The annotator does what the protocol asks a person to do: pick ~10 tiles that contain the feature
and ~100 that do not, and paint the feature on the positive ones (here: copy it from the truth).
The tiles go into a real annotation project, a network (or the random-forest baseline, on the very
same tiles) is trained from it, applied to the whole tomogram, and the probability map is scored
voxel by voxel. Everything a user would run is exercised; nothing is special-cased for evaluation.
Correction rounds (``correction_round``) then do what the person does after looking at the result:
add the tiles ``suggest`` offers (or random ones, the control), painted the same way, and retrain.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from .annotations import Project
from .atomic import check_output_path
from .dataset import collect_tiles
from .errors import BadInputError
from .maps import decode_probabilities, validate_feature_name
from .metrics import dice, iou, precision_recall_f1
from .pixel_classifier import classifier_maps, train_pixel_classifier
from .segment import FeatureNetwork, segment_volume, write_probability_maps
from .suggest import ROUND_SELECTIONS, TILE_SCORE_POWER, random_tiles, suggest_tiles
from .thresholds import ThresholdCounts
from .training_config import DEFAULT_TRAINING, TrainingConfig
from .volume import Volume, open_volume

if TYPE_CHECKING:
    import keras

METHODS = ("cnn", "rf")
MIN_POSITIVE_FRACTION = 0.03  # a person picks tiles where the feature clearly shows
CANDIDATE_STEP_PX = 8  # tile centres considered on this grid; finer gains nothing but time
PROJECT_NAME = "annotations.project"


@dataclass
class AnnotatedTile:
    """A tile the simulated annotator chose, with its painted mask when positive."""

    z: int
    y: int
    x: int
    size: int
    positive: bool
    mask: np.ndarray | None = None


def _tile_origin(centre: int, size: int) -> int:
    return centre - size // 2


def _candidate_fractions(feature: np.ndarray, size: int) -> np.ndarray:
    """Fraction of feature pixels in the tile centred at each pixel (NaN where it leaves the slice)."""
    # scipy centres an even window of size s on [i - s//2, i + s//2 - 1]: the tile convention.
    fractions = ndimage.uniform_filter(feature.astype(np.float32), size=size, mode="constant")
    valid = np.full(feature.shape, np.nan, np.float32)
    low, high = size // 2, size - size // 2
    valid[low : feature.shape[0] - high + 1, low : feature.shape[1] - high + 1] = 1.0
    return fractions * valid


def simulate_annotation(
    labels: np.ndarray,
    feature_id: int,
    *,
    n_positive: int = 10,
    n_negative: int = 100,
    tile_size: int = 64,
    min_positive_fraction: float = MIN_POSITIVE_FRACTION,
    seed: int = 0,
) -> list[AnnotatedTile]:
    """Choose tiles from a ground-truth label volume the way the protocol asks a person to.

    Positive tiles have at least ``min_positive_fraction`` of their pixels in the feature, do not
    overlap each other and are spread over slices; their mask is the truth. Negative tiles contain
    no pixel of the feature (other features and plain cytoplasm are fair game, as for a person).

    Raises
    ------
    BadInputError
        The feature is absent, or too rare for the number of tiles asked.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise BadInputError(f"ground truth must be a 3D label volume, got shape {labels.shape}")
    if min(labels.shape[1:]) < tile_size:
        raise BadInputError(
            f"tile size {tile_size} px is larger than the slices {labels.shape[1:]}"
        )
    rng = np.random.default_rng(seed)
    positives: list[tuple[int, int, int]] = []
    negatives: list[tuple[int, int, int]] = []
    step = CANDIDATE_STEP_PX
    for z in range(labels.shape[0]):
        fractions = _candidate_fractions(labels[z] == feature_id, tile_size)[::step, ::step]
        ys, xs = np.nonzero(fractions >= min_positive_fraction)
        positives += [(z, y * step, x * step) for y, x in zip(ys, xs, strict=True)]
        ys, xs = np.nonzero(fractions == 0)
        negatives += [(z, y * step, x * step) for y, x in zip(ys, xs, strict=True)]
    chosen_positive = _spread_choice(positives, n_positive, tile_size, rng, "positive", feature_id)
    chosen_negative = _spread_choice(negatives, n_negative, tile_size, rng, "negative", feature_id)
    return [
        paint_from_truth(labels, feature_id, z, y, x, tile_size)
        for z, y, x in chosen_positive + chosen_negative
    ]


def paint_from_truth(
    labels: np.ndarray, feature_id: int, z: int, y: int, x: int, tile_size: int
) -> AnnotatedTile:
    """The tile at centre ``(z, y, x)`` as the simulated annotator marks it.

    Positive, with the truth as its painted mask, when the feature shows in it at all; negative
    otherwise (a person correcting a network marks even a sliver of the feature).
    """
    y0, x0 = _tile_origin(y, tile_size), _tile_origin(x, tile_size)
    mask = labels[z, y0 : y0 + tile_size, x0 : x0 + tile_size] == feature_id
    if mask.any():
        return AnnotatedTile(z, y, x, tile_size, True, mask)
    return AnnotatedTile(z, y, x, tile_size, False)


def _spread_choice(
    candidates: list[tuple[int, int, int]],
    count: int,
    size: int,
    rng: np.random.Generator,
    kind: str,
    feature_id: int,
) -> list[tuple[int, int, int]]:
    """Random non-overlapping tiles, drawn slice-first so they spread through the tomogram."""
    if not candidates:
        raise BadInputError(f"no {kind} tile of {size} px is possible for label {feature_id}")
    by_slice: dict[int, list[tuple[int, int, int]]] = {}
    for candidate in candidates:
        by_slice.setdefault(candidate[0], []).append(candidate)
    chosen: list[tuple[int, int, int]] = []
    attempts = 0
    while len(chosen) < count and attempts < 50 * count:
        attempts += 1
        z = rng.choice(list(by_slice))
        z, y, x = by_slice[z][rng.integers(len(by_slice[z]))]
        if all(c[0] != z or max(abs(c[1] - y), abs(c[2] - x)) >= size for c in chosen):
            chosen.append((z, y, x))
    if len(chosen) < count:
        raise BadInputError(
            f"only {len(chosen)} non-overlapping {kind} tiles found for label {feature_id} "
            f"({count} asked); use a larger tomogram or fewer tiles"
        )
    return chosen


def annotate_from_truth(
    project,
    feature: str,
    labels: np.ndarray,
    feature_id: int,
    *,
    n_positive: int = 10,
    n_negative: int = 100,
    tile_size: int = 64,
    seed: int = 0,
) -> list[AnnotatedTile]:
    """The simulated annotator working in a real project: tiles and painted masks from the truth.

    Adds ``feature`` (with ``tile_size``) if the project lacks it, chooses tiles with
    ``simulate_annotation`` at the feature's tile size, and adds them with their masks, exactly as
    a person would with the tile picker and mask painter.
    """
    if feature not in project.features:
        project.add_feature(feature, tile_size=tile_size)
    tiles = simulate_annotation(
        labels,
        feature_id,
        n_positive=n_positive,
        n_negative=n_negative,
        tile_size=project.features[feature].tile_size,
        seed=seed,
    )
    _add_tiles(project, feature, tiles)
    return tiles


def annotate_tiles_from_truth(
    project: Project,
    feature: str,
    labels: np.ndarray,
    feature_id: int,
    centres: Sequence[tuple[int, int, int]],
) -> list[AnnotatedTile]:
    """The simulated annotator marks the tiles it is shown (a correction round's suggestions).

    Each tile, of the feature's tile size, is painted with ``paint_from_truth`` and added to the
    project as a person would with the tile picker and mask painter.
    """
    size = project.features[feature].tile_size
    tiles = [paint_from_truth(labels, feature_id, z, y, x, size) for z, y, x in centres]
    _add_tiles(project, feature, tiles)
    return tiles


def _add_tiles(project: Project, feature: str, tiles: Sequence[AnnotatedTile]) -> None:
    for annotated in tiles:
        tile = project.add_tile(
            feature, annotated.z, annotated.y, annotated.x, positive=annotated.positive
        )
        if annotated.mask is not None:  # positive tiles carry their painted mask
            project.set_mask(tile.id, annotated.mask)


def build_project(
    folder: str | os.PathLike,
    tomogram: Volume,
    features: Mapping[str, int],
    labels: np.ndarray,
    *,
    skip_absent: bool = False,
    **annotation,
):
    """A fresh project with every feature annotated by the simulated annotator, saved once.

    One project holds all features, as a person's would, so each network can also learn from the
    pixels painted for the others (``train.train_feature``). ``features`` maps names to label ids;
    ``annotation`` holds the keyword arguments of ``annotate_from_truth``. With ``skip_absent`` a
    feature the annotator cannot find enough tiles of is left out, and the returned dict says why;
    otherwise its ``BadInputError`` propagates.

    Returns
    -------
    project : Project
        The saved, open project.
    skipped : dict of str to str
        Left-out features and the reason.
    """
    project = Project.create(
        folder, tomogram=tomogram.path, voxel_size=tomogram.voxel_size, overwrite=True
    )
    project.autosave = False
    skipped: dict[str, str] = {}
    for feature, feature_id in features.items():
        try:
            annotate_from_truth(project, feature, labels, feature_id, **annotation)
        except BadInputError as error:
            if not skip_absent:
                project.close()
                raise
            if feature in project.features:
                project.remove_feature(feature)
            skipped[feature] = str(error)
    project.save()
    return project, skipped


THRESHOLD_SWEEP = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Thresholds at which ``evaluate_feature`` also reports IoU: whether a feature fails because its
map is wrong or because the threshold is, read off the same map at no extra training."""
TILE_THRESHOLDS = ("validation_threshold", "tiles_threshold")
"""Thresholds a network's training chose from its painted tiles (the held-out ones; all of them),
each scored beside the network's own threshold as a diagnostic."""


def iou_by_threshold(
    probability_path: str | os.PathLike, truth: np.ndarray, thresholds: Sequence[float]
) -> dict[str, float]:
    """IoU of ``probability >= t`` against ``truth`` for each ``t`` (keys formatted ``"0.3"``)."""
    probability = _read_map(probability_path)
    return {f"{t:g}": float(iou(probability >= t, truth)) for t in thresholds}


def score_map(
    probability_path: str | os.PathLike, truth: np.ndarray, threshold: float
) -> dict[str, float]:
    """IoU, Dice, precision and recall of ``probability >= threshold`` against a boolean truth."""
    prediction = _read_map(probability_path) >= threshold
    precision, recall, _ = precision_recall_f1(prediction, truth)
    return {
        "iou": float(iou(prediction, truth)),
        "dice": float(dice(prediction, truth)),
        "precision": float(precision),
        "recall": float(recall),
        "threshold": float(threshold),
    }


def evaluate_feature(
    project,
    tomogram: Volume,
    labels: np.ndarray,
    feature: str,
    feature_id: int,
    workdir: str | os.PathLike,
    *,
    method: str = "cnn",
    config: TrainingConfig | None = None,
    initial_model: keras.Model | None = None,
) -> dict[str, Any]:
    """Train on ``project``'s tiles of one feature, segment, and score; outputs stay in ``workdir``.

    The network trains with ``config`` (fine-tuned from ``initial_model``'s weights when given);
    the random forest learns from the feature's own tiles, preprocessed with ``config.recipe`` and
    seeded with ``config.seed``. Without ``config``, ``method_config(method)``.
    """
    config = method_config(method, config)
    map_path = Path(workdir) / f"{feature}.mrc"
    tile_thresholds: dict[str, Any] = dict.fromkeys(TILE_THRESHOLDS)
    if method == "cnn":
        timings, threshold, tile_thresholds = _run_network(
            project, tomogram, feature, map_path, config, initial_model
        )
    else:
        timings, threshold = _run_forest(project, tomogram, feature, map_path, config)
    truth = labels == feature_id
    scores = score_map(map_path, truth, threshold)
    # Diagnostics, not the score: IoU at other thresholds, and at those the network's painted
    # tiles chose (what a user could get without any truth).
    # The whole map's counts at every threshold of the ladder, beside the painted tiles' own
    # (``tiles_counts``), score any rule for choosing a threshold from the tiles.
    diagnostics: dict[str, Any] = {
        "iou_by_threshold": iou_by_threshold(map_path, truth, THRESHOLD_SWEEP),
        "volume_counts": ThresholdCounts.from_maps(_read_map(map_path), truth).to_dict(),
        "tiles_counts": tile_thresholds.pop("tiles_counts", None),
    }
    for key, value in tile_thresholds.items():
        diagnostics[key] = value
        diagnostics[f"iou_at_{key}"] = (
            None if value is None else score_map(map_path, truth, value)["iou"]
        )
    voxels = float(np.prod(tomogram.shape))
    return {
        **scores,
        **diagnostics,
        **timings,
        "voxels_per_second": voxels / timings["segment_seconds"],
        "n_positive": len(project.tiles_of(feature, positive=True)),
        "n_negative": len(project.tiles_of(feature, positive=False)),
    }


def method_config(method: str, config: TrainingConfig | None = None) -> TrainingConfig:
    """``config``, checked for ``method``; without one, the method's default.

    The network's default is ``DEFAULT_TRAINING``; the random forest classifies single slices, so
    its default is the same without z context, and a config asking it for z context is refused
    (before any work).
    """
    if method not in METHODS:
        raise BadInputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if config is None:
        return DEFAULT_TRAINING if method == "cnn" else DEFAULT_TRAINING.replace(z_context=0)
    if method == "rf" and config.z_context:
        raise BadInputError(
            f"z context {config.z_context} is a network option: the random-forest baseline "
            "classifies single slices; use --method cnn, or z context 0 for the forest"
        )
    if method == "rf" and config.recipe.extra_lowpass:
        raise BadInputError(
            f"extra_lowpass {config.recipe.extra_lowpass} is a network option: the random-forest "
            "baseline takes one channel per slice; use --method cnn, or a recipe without it"
        )
    return config


def _run_network(
    project: Project,
    tomogram: Volume,
    feature: str,
    map_path: Path,
    config: TrainingConfig,
    initial_model: keras.Model | None = None,
) -> tuple[dict[str, float], float, dict[str, Any]]:
    """Train, save and segment; timings, the threshold, and the painted tiles' best thresholds
    (``TILE_THRESHOLDS``) with the tiles' counts they were chosen from (``tiles_counts``)."""
    from .models import save_model  # Keras: loaded only when a network is trained
    from .train import train_feature

    start = time.perf_counter()
    model, info = train_feature(
        project, feature, config, volume=tomogram, initial_model=initial_model
    )
    train_seconds = time.perf_counter() - start
    save_model(model, info, map_path.with_suffix(".keras"), overwrite=True)
    start = time.perf_counter()
    segment_volume(
        [FeatureNetwork(model, info)],
        tomogram,
        out_paths=[map_path],
        engine=config.engine,
        overwrite=True,
    )
    timings = {"train_seconds": train_seconds, "segment_seconds": time.perf_counter() - start}
    training = info.training or {}
    chosen: dict[str, Any] = {
        key: None if training.get(key) is None else float(training[key]) for key in TILE_THRESHOLDS
    }
    chosen["tiles_counts"] = training.get("tiles_counts")
    return timings, float(info.threshold), chosen


def _run_forest(
    project: Project, tomogram: Volume, feature: str, map_path: Path, config: TrainingConfig
) -> tuple[dict[str, float], float]:
    """Train the forest, write its map; timings and its threshold, always ``config.threshold``
    (0.5 unless ``--threshold`` says otherwise: the painted tiles' choice is the network's)."""
    start = time.perf_counter()
    recipe = config.recipe
    tileset = collect_tiles(project, feature, tomogram, recipe)
    classifier = train_pixel_classifier(
        tileset.images, tileset.masks, tileset.positive, seed=config.seed
    )
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    compute = partial(classifier_maps, classifier, recipe)
    write_probability_maps(tomogram, [map_path], compute, overwrite=True)
    seconds = {"train_seconds": train_seconds, "segment_seconds": time.perf_counter() - start}
    return seconds, config.threshold


def evaluate(
    tomogram: str | os.PathLike | Volume,
    truth: str | os.PathLike | np.ndarray,
    features: Mapping[str, int],
    *,
    keep: str | os.PathLike | None = None,
    overwrite: bool = False,
    n_positive: int = 10,
    n_negative: int = 100,
    tile_size: int = 64,
    method: str = "cnn",
    config: TrainingConfig | None = None,
    skip_absent: bool = False,
    on_feature_done: Callable[[str], None] | None = None,
    rounds: int = 0,
    round_tiles: int = 5,
    round_selection: str = "suggested",
    round_epochs: int | None = None,
    fine_tune: bool = True,
) -> dict:
    """Evaluate every feature; returns ``{"features": {name: scores}, ...}`` as ``evaluate --json`` writes.

    The simulated annotator chooses ``n_positive`` and ``n_negative`` tiles of ``tile_size`` px
    per feature, all in one project (``PROJECT_NAME``); ``method`` and ``config`` are those of
    ``evaluate_feature`` (``config.seed`` also seeds the annotator). ``keep`` keeps each trained model
    (``<feature>.keras`` + sidecar), probability map (``<feature>.mrc``) and the annotation
    project; otherwise they live in a temporary folder. Kept outputs that exist are refused before
    any work unless ``overwrite``. ``skip_absent`` leaves out, and lists under ``"skipped"``, the
    features too rare to annotate (a small phantom may lack one); ``on_feature_done(name)`` is
    called as each feature is scored.

    ``rounds`` correction rounds follow the first training (``correction_round``): in each, every
    feature gets ``round_tiles`` more tiles, chosen by ``round_selection`` ("suggested": the
    suggestion score on the current maps; "random": the control) and painted from the truth, then
    every network is retrained - fine-tuned from its current weights for ``round_epochs`` epochs
    (default ``config.fine_tune_epochs``), or from new weights for ``round_epochs`` (default
    ``config.epochs``) when ``fine_tune`` is False. Per feature, ``"rounds"`` lists each
    round's tiles, scores and seconds and ``"iou_per_round"`` the IoU after the first training and
    after each round; the feature's top-level scores stay those of the first training.
    """

    if not features:
        raise BadInputError("name at least one feature to evaluate, e.g. --feature ribosome=3")
    config = method_config(method, config)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise BadInputError(f"rounds must be a whole number >= 0, got {rounds!r}")
    if rounds and (
        isinstance(round_tiles, bool) or not isinstance(round_tiles, int) or round_tiles < 1
    ):
        raise BadInputError(f"round_tiles must be a whole number >= 1, got {round_tiles!r}")
    if round_selection not in ROUND_SELECTIONS:
        raise BadInputError(
            f"unknown round selection {round_selection!r}; choose one of "
            f"{', '.join(ROUND_SELECTIONS)}"
        )
    round_config = config
    if round_epochs is not None:
        which = "fine_tune_epochs" if fine_tune else "epochs"
        round_config = config.replace(**{which: round_epochs})
    for name in features:  # names become file names in ``keep``: no '../' escapes it
        validate_feature_name(name)
        if keep is not None:
            for suffix in (".keras", ".json", ".mrc"):
                check_output_path(Path(keep) / f"{name}{suffix}", overwrite)
    if keep is not None:
        check_output_path(Path(keep) / PROJECT_NAME, overwrite)
    volume = tomogram if isinstance(tomogram, Volume) else open_volume(tomogram, ndim=3)
    labels = truth if isinstance(truth, np.ndarray) else open_volume(truth, ndim=3).data[...]
    if labels.shape != volume.shape:
        raise BadInputError(
            f"truth labels have shape {labels.shape} but the tomogram is {volume.shape}"
        )
    with tempfile.TemporaryDirectory(prefix="tomoseg-evaluate-") as scratch:
        workdir = Path(keep) if keep is not None else Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        project, skipped = build_project(
            workdir / PROJECT_NAME,
            volume,
            features,
            labels,
            skip_absent=skip_absent,
            n_positive=n_positive,
            n_negative=n_negative,
            tile_size=tile_size,
            seed=config.seed,
        )
        results: dict[str, dict[str, Any]] = {}
        try:
            for name, feature_id in features.items():
                if name in skipped:
                    continue
                results[name] = evaluate_feature(
                    project, volume, labels, name, feature_id, workdir, method=method, config=config
                )
                if on_feature_done is not None:
                    on_feature_done(name)
            for scores in results.values():
                scores["rounds"] = []
                scores["iou_per_round"] = [scores["iou"]]
            # each round suggests on the latest maps, at their own networks' thresholds
            thresholds = {name: scores["threshold"] for name, scores in results.items()}
            for number in range(1, rounds + 1):
                done = correction_round(
                    project,
                    volume,
                    labels,
                    {name: features[name] for name in results},
                    workdir,
                    thresholds=thresholds,
                    tiles=round_tiles,
                    selection=round_selection,
                    method=method,
                    config=round_config,
                    fine_tune=fine_tune,
                    seed=config.seed + number,
                )
                for name, scores in done.items():
                    thresholds[name] = scores["threshold"]
                    results[name]["rounds"].append({"round": number, **scores})
                    results[name]["iou_per_round"].append(scores["iou"])
        finally:
            project.close()
    return {
        "tomogram": str(volume.path) if volume.path else None,
        "shape": list(volume.shape),
        "voxel_size": volume.voxel_size,
        "method": method,
        "arch": config.arch if method == "cnn" else None,
        "seed": config.seed,
        "other_features_as_negatives": config.other_features_as_negatives,
        "config": config.to_dict(),
        "features": results,
        "skipped": skipped,
        "rounds": rounds,
        "round_tiles": round_tiles if rounds else None,
        "round_selection": round_selection if rounds else None,
        "round_config": round_config.to_dict() if rounds else None,
        "fine_tune": fine_tune if rounds else None,
    }


def correction_round(
    project: Project,
    tomogram: Volume,
    labels: np.ndarray,
    features: Mapping[str, int],
    workdir: str | os.PathLike,
    *,
    thresholds: Mapping[str, float],
    tiles: int = 5,
    selection: str = "suggested",
    method: str = "cnn",
    config: TrainingConfig | None = None,
    fine_tune: bool = True,
    seed: int = 0,
    suggest_power: float = TILE_SCORE_POWER,
) -> dict[str, dict[str, Any]]:
    """One round of corrections by the simulated annotator, after a training left maps in ``workdir``.

    For every feature, ``tiles`` tiles are chosen on the current maps (``workdir/<feature>.mrc``):
    by ``suggest.suggest_tiles`` (uncertainty, and two features claiming a voxel); for
    ``selection="random"``, by ``suggest.random_tiles`` (seeded with ``seed``); for ``"mixed"``,
    ``tiles - tiles // 2`` suggested and the rest random beside them (the suggestions sit on or
    next to the feature, so alone they never show the network a clean negative or a confident
    false claim, which random tiles do). They are painted from the truth
    (``annotate_tiles_from_truth``). Then every feature is retrained (``evaluate_feature``; a
    network fine-tuned from ``workdir/<feature>.keras`` when ``fine_tune``), segmented and scored;
    the project is saved. ``suggest_power`` is the tile score's power (``suggest_tiles``'
    ``power``).

    Returns
    -------
    dict of str to dict
        Per feature: the scores of ``evaluate_feature``, the tiles added (``[z, y, x, score,
        reason, positive]``), how many (``added``: fewer than ``tiles`` when no more fit beside
        the annotated ones, with a warning) and how many were positive, ``suggest_seconds``
        (choosing and painting) and ``round_seconds`` (that plus training and segmenting).
    """

    if selection not in ROUND_SELECTIONS:
        raise BadInputError(
            f"unknown round selection {selection!r}; choose one of {', '.join(ROUND_SELECTIONS)}"
        )
    workdir = Path(workdir)
    maps = {name: _read_map(workdir / f"{name}.mrc") for name in features}
    added: dict[str, list] = {}
    suggest_seconds: dict[str, float] = {}
    for name, feature_id in features.items():
        start = time.perf_counter()
        size = project.features[name].tile_size
        exclude = [(t.z, t.y, t.x) for t in project.tiles_of(name)]
        chosen = []
        if selection in ("suggested", "mixed"):
            others = {other: maps[other] for other in features if other != name}
            chosen = suggest_tiles(
                maps[name],
                k=tiles if selection == "suggested" else tiles - tiles // 2,
                tile_size=size,
                threshold=thresholds[name],
                others=others,
                other_thresholds=thresholds,
                exclude=exclude,
                power=suggest_power,
            )
        if selection in ("random", "mixed"):
            chosen += random_tiles(
                tomogram.shape,
                k=tiles - len(chosen),
                tile_size=size,
                exclude=exclude + [(s.z, s.y, s.x) for s in chosen],
                seed=seed,
            )
        if len(chosen) < tiles:  # the round is smaller than asked: say so, do not hide it
            warnings.warn(
                f"correction round: only {len(chosen)} of {tiles} new tiles fit for {name!r} "
                "beside the tiles already annotated",
                UserWarning,
                stacklevel=2,
            )
        painted = annotate_tiles_from_truth(
            project, name, labels, feature_id, [(s.z, s.y, s.x) for s in chosen]
        )
        added[name] = [
            [s.z, s.y, s.x, round(s.score, 4), s.reason, tile.positive]
            for s, tile in zip(chosen, painted, strict=True)
        ]
        suggest_seconds[name] = time.perf_counter() - start
    project.save()
    del maps
    results = {}
    for name, feature_id in features.items():
        initial = None
        if fine_tune and method == "cnn":
            from .models import load_model

            initial, _ = load_model(workdir / f"{name}.keras")
        scores = evaluate_feature(
            project,
            tomogram,
            labels,
            name,
            feature_id,
            workdir,
            method=method,
            config=config,
            initial_model=initial,
        )
        results[name] = {
            **scores,
            "selection": selection,
            "tiles": added[name],
            "added": len(added[name]),
            "added_positive": sum(1 for tile in added[name] if tile[-1]),
            "suggest_seconds": suggest_seconds[name],
            "round_seconds": suggest_seconds[name]
            + scores["train_seconds"]
            + scores["segment_seconds"],
        }
    return results


def _read_map(path: str | os.PathLike) -> np.ndarray:
    with open_volume(path) as volume:
        return decode_probabilities(volume.data[...])
