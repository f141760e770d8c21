"""Train one network per feature from annotated tiles, with ``model.fit`` and callbacks.

What happens, and why:

- By default every tile is trained on, as in EMAN2 (``training_config.DEFAULT_VALIDATION_FRACTION``:
  holding 2 of the protocol's 10 positive tiles out cost accuracy and bought a loss too noisy to
  act on). ``validation_fraction > 0`` holds that share of the *tiles* (not of augmented copies)
  out before augmentation, stratified so positives and negatives are both held out: rotated
  copies of a training tile would make the validation loss dishonest.
- The remaining tiles are augmented and class-balanced as EMAN2 does (``dataset``); the held-out
  tiles get the same balance with the 8 exact symmetries only.
- ``train_feature`` also trains on the pixels painted for the project's *other* features, as
  "not this feature", with the rest of those tiles ignored (Ais's ignore label): a voxel holds one
  feature, and competitive merging cannot undo a network that is confidently wrong about its
  neighbour. Over 8 paired runs on 3 phantoms (``tomoseg-nb evaluate``, fast network) this raised
  microtubule IoU by 0.034 on average (6 of 8 better) and ribosome by 0.010, membrane unchanged
  (-0.001); on one phantom the ribosome network stopped claiming membrane (1151 -> 7 voxels).
- After training, the network is run on its own positive tiles. One that finds none of the
  painted pixels has collapsed (a seed sometimes kills every ReLU of a small network at a high
  learning rate): training starts again from new random weights, up to ``MAX_RESTARTS`` times,
  each with a ``TrainingCollapsedWarning``.
- By default every run is EMAN2's fixed 20 epochs. ``patience`` adds ``EarlyStopping`` on the
  validation loss (best epoch's weights restored; the training loss when no tile is held out),
  for projects with many tiles: with the protocol's ~2 held-out positive tiles the validation loss
  is too noisy to stop on - patience 5 stopped after 7-10 epochs and cost up to 0.16 IoU on a
  held-out phantom (ribosome 0.50 vs 0.66).
- A ``threading.Event`` passed as ``cancel`` is checked after every batch: when set, training stops
  at once and ``CancelledError`` is raised (no model is returned, nothing is written).
- ``engine="fft"`` trains through the engine's spectral twin of the network (same weights, FFT
  convolutions: several times faster for eman2's 15x15 kernels on a CPU) and copies the weights
  back, so the returned and saved model is always the plain Conv2D one; ``"auto"`` lets
  ``engine.choose_engine`` decide.
- The threshold stored with the model is, by default (``config.threshold_from ==
  "painted-tiles"``), the one of highest F-beta over every painted tile, trained on and held out
  (``tiles_threshold``; ``config.threshold_beta``, 3 by default, weighs recall over precision
  because the network is surer of the tiles it learnt than of the rest of the tomogram); with
  "fixed" it is ``config.threshold`` (0.5, the decision boundary of the class-balanced training
  set; ``EMAN2_RECIPE`` uses EMAN2's 0.8). On the development half of the phantom suite the
  painted tiles' choice beat 0.5 on every feature's mean and worst IoU
  (``training_config.DEFAULT_THRESHOLD_FROM``, ``DEFAULT_THRESHOLD_BETA``). The held-out tiles'
  best threshold is reported too (``validation_threshold``) but not used: from ~2 held-out
  positive tiles it swung between 0.10 and 0.85 from seed to seed.
- ``seed`` makes runs repeatable: ``keras.utils.set_random_seed`` (weights, shuffling) and a numpy
  ``Generator`` (split, augmentation).
- ``config.z_context = k`` ("2.5D") trains on tiles of ``2k + 1`` neighbouring slices as channels
  (``dataset.collect_tiles``) with a network whose first layer takes them; the value is recorded
  in the sidecar (``training["config"]``), and ``segment`` reads it back from there.
- ``initial_model`` fine-tunes: training starts from a copy of that network's weights (the one
  trained before a correction round) instead of new random ones, for ``config.fine_tune_epochs``
  epochs (5, against 20 from scratch), so a round of a few added tiles need not relearn
  everything; the given network itself is left unchanged. A fine-tuned network
  that collapses still restarts from random weights, and then it is no longer fine-tuned:
  ``TrainingResult.fine_tuned`` (and the sidecar's ``training["fine_tuned"]``) say which it was.
  A fine-tune also counts as collapsed when it keeps less than ``FINE_TUNE_KEPT_FRACTION`` of the
  painted pixels the network found before it (measured on the same training tiles): 5 epochs once
  took a ribosome network from 66 % of them to 0.7 % and its tomogram IoU from 0.62 to 0, which
  the "none at all" check let through.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from .annotations import Project
from .dataset import (
    build_known_negative_set,
    build_training_set,
    check_tiles,
    collect_known_negatives,
    collect_tiles,
    shrink_labels,
)
from .engine import ENGINES, as_fft_model, choose_engine, copy_weights
from .errors import BadInputError, CancelledError, TrainingCollapsedWarning
from .models import (
    ModelInfo,
    build_model,
    eman2_loss,
    get_architecture,
    output_stride,
    probability,
)
from .progress import ProgressCallback, progress_bar
from .thresholds import ThresholdCounts, best_f_threshold
from .training_config import DEFAULT_TRAINING, TrainingConfig
from .volume import Volume

MAX_RESTARTS = 2
"""Times training starts again from new random weights when it collapsed (``_painted_recall``)."""
RESTART_SEED_STEP = 1000
FINE_TUNE_KEPT_FRACTION = 0.5
"""A fine-tune that finds less than this fraction of the painted pixels its starting network
found on the same tiles has wrecked the network, not corrected it: it restarts as a collapse."""


@dataclass
class TrainingResult:
    """A trained network and how training went.

    Attributes
    ----------
    model : keras.Model
        The network (Conv2D form, whichever engine trained it), at its best validation epoch.
    history : dict
        ``loss`` (and ``val_loss`` when tiles were held out) per epoch.
    stopped_early : bool
        Early stopping ended training before ``epochs``.
    threshold : float
        Probability threshold for the feature, stored with the model: ``tiles_threshold`` by
        default, ``config.threshold`` with ``config.threshold_from == "fixed"`` or when no tile
        holds a painted pixel (see the module docstring).
    validation_threshold : float or None
        The threshold of highest F-beta (``config.threshold_beta``) on the held-out tiles (a
        diagnostic; None without them, or when they hold no painted pixel).
    tiles_threshold : float or None
        The threshold of highest F-beta over every tile, trained on and held out (None when no
        tile holds a painted pixel).
    tiles_counts : ThresholdCounts or None
        The painted pixels of every tile found and missed, and the unpainted ones claimed, at each
        threshold of ``thresholds.THRESHOLDS``: what ``tiles_threshold`` was chosen from, kept so
        another rule can be scored later without training again.
    train_indices, validation_indices : ndarray
        Which input tiles were trained on and which were held out.
    engine : str
        The convolution engine that trained it (``"keras"`` or ``"fft"``).
    seconds : float
        Wall time of training.
    painted_recall : float or None
        Fraction of the painted pixels of its training tiles that the network finds; 0 means
        training failed even after ``MAX_RESTARTS`` restarts.
    restarts : int
        How many times training started again from new weights because it had collapsed.
    fine_tuned : bool
        True when the network grew from ``initial_model``'s weights; False for new random weights,
        including a fine-tuning that collapsed and restarted.
    """

    model: keras.Model
    history: dict[str, list[float]]
    stopped_early: bool
    threshold: float = 0.5
    validation_threshold: float | None = None
    tiles_threshold: float | None = None
    tiles_counts: ThresholdCounts | None = None
    train_indices: np.ndarray | None = None
    validation_indices: np.ndarray | None = None
    engine: str = "keras"
    seconds: float = 0.0
    painted_recall: float | None = None
    restarts: int = 0
    fine_tuned: bool = False


def split_tiles(
    positive: np.ndarray, validation_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of tile indices into (train, held-out).

    Each class gives ``round(fraction * n)`` tiles, at least one when the fraction is positive and
    the class has two or more tiles, and always leaves at least one for training.

    Raises
    ------
    BadInputError
        Too few positive tiles to hold one out (fewer than 2 with a positive fraction).
    """
    positive = np.asarray(positive, dtype=bool)
    if not 0 <= validation_fraction < 1:
        raise BadInputError(f"validation fraction must be in [0, 1), got {validation_fraction}")
    train, held = [], []
    for flag in (True, False):
        members = rng.permutation(np.flatnonzero(positive == flag))
        n = len(members)
        count = 0
        if validation_fraction > 0 and n >= 2:
            count = min(n - 1, max(1, round(validation_fraction * n)))
        elif validation_fraction > 0 and flag:
            raise BadInputError(
                f"only {n} positive tile(s): holding tiles out for validation needs at least 2 "
                "(about 10 is the protocol); add positive tiles or set validation_fraction=0"
            )
        held.append(members[:count])
        train.append(members[count:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


class _CancelOnEvent(keras.callbacks.Callback):
    def __init__(self, event: threading.Event) -> None:
        super().__init__()
        self.event = event

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.event.is_set():
            raise CancelledError("training was cancelled; no model was kept")


class _BatchProgress(keras.callbacks.Callback):
    def __init__(self, advance: Callable[[int], None]) -> None:
        super().__init__()
        self.advance = advance

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.advance(1)


def resolve_engine(engine: str, model: keras.Model) -> str:
    """``"keras"`` or ``"fft"``: what ``engine`` means for training ``model`` on this machine.

    ``"auto"`` asks ``engine.choose_engine`` (the FFT twin on a CPU for large kernels such as
    eman2's 15x15, Keras' own convolution on a GPU and for small kernels).
    """
    if engine not in ENGINES:
        raise BadInputError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return choose_engine([model], purpose="train") if engine == "auto" else engine


def _fit(
    model: keras.Model,
    engine: str,
    data: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray] | None,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    callbacks: list[keras.callbacks.Callback],
) -> keras.callbacks.History:
    """Fit ``model`` (through its FFT twin when ``engine == "fft"``); the best weights end up in it."""
    trained = as_fft_model(model) if engine == "fft" else model
    trained.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=eman2_loss)
    history = trained.fit(
        data[0],
        data[1],
        batch_size=batch_size,
        epochs=epochs,
        validation_data=validation,
        shuffle=True,
        callbacks=callbacks,
        verbose=0,
    )
    if trained is not model:
        copy_weights(trained, model)
    return history


def predict_tiles(model: keras.Model, images: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
    """Probabilities ``(N, s / stride, s / stride)`` of a network on ``(N, s, s)`` preprocessed tiles.

    ``(N, s, s, c)`` tiles (z context) are fed as they are.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    # Plain calls, as engine.predict_slices makes: model.predict compiles a function for every
    # network, and after a few networks (one per feature) TensorFlow warns about retracing.
    raw = [
        keras.ops.convert_to_numpy(model(images[start : start + batch_size], training=False))
        for start in range(0, len(images), batch_size)
    ]
    return probability(np.concatenate(raw)[..., 0])


def best_threshold(
    probabilities: np.ndarray, labels: np.ndarray, beta: float = 1.0
) -> float | None:
    """The threshold in 0.1..0.9 of highest F-beta of ``probabilities >= t`` against ``labels >= 0.5``.

    Returns None when the labels hold no feature pixel: there is nothing to fit.
    """
    counts = ThresholdCounts.from_maps(probabilities, np.asarray(labels) >= 0.5)
    return best_f_threshold(counts, beta)


def train_on_tiles(
    images: np.ndarray,
    masks: np.ndarray,
    positive: np.ndarray,
    config: TrainingConfig = DEFAULT_TRAINING,
    *,
    known_negatives: tuple[np.ndarray, np.ndarray] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    cancel: threading.Event | None = None,
    progress: ProgressCallback | None = None,
    feature: str = "",
    initial_model: keras.Model | None = None,
) -> TrainingResult:
    """Train a fresh ``config.arch`` network on preprocessed tiles (see the module docstring).

    Parameters
    ----------
    images, masks, positive
        ``(N, s, s)`` preprocessed tiles, painted masks, ``(N,)`` positive flags (``TileSet``);
        with ``config.z_context`` k the tiles are ``(N, s, s, 2k + 1)`` (``collect_tiles``).
    config : TrainingConfig
        Architecture, epochs, batch size, learning rate, held-out fraction, patience, copies,
        seed and engine (``recipe`` and ``other_features_as_negatives`` are ``train_feature``'s).
    known_negatives : (images, masks), optional
        ``(K, s, s)`` tiles and masks of pixels known not to be the feature (another feature's
        painted pixels); only those pixels are trained on, as 0 (``dataset.build_known_negative_set``).
        They are never held out.
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks (live plots in the widgets).
    cancel : threading.Event, optional
        Set it (from another thread) to stop; ``CancelledError`` is raised after the current batch.
    progress : callable, optional
        ``progress(batches_done, batches_total)``.
    feature : str
        Named in the progress bar and warnings ("training membrane (fast)").
    initial_model : keras.Model, optional
        Fine-tune: start from a copy of this ``config.arch`` network's weights, not random ones.

    Raises
    ------
    BadInputError
        No positive tile, an empty mask on a positive tile, too few tiles to hold some out, a tile
        size the network's stride does not divide, an unknown architecture or engine, tiles whose
        channels do not match ``config.input_channels``, or an ``initial_model`` of another
        architecture.
    CancelledError
        ``cancel`` was set.
    """
    images, masks, positive = check_tiles(images, masks, positive)
    channels = 1 if images.ndim == 3 else images.shape[-1]
    if channels != config.input_channels:
        raise BadInputError(
            f"the tiles have {channels} channel(s) but z context {config.z_context} with "
            f"{config.recipe.channels_per_slice} channel(s) per slice needs "
            f"{config.input_channels}; cut them with dataset.collect_tiles(..., config.recipe, "
            f"z_context={config.z_context})"
        )
    if known_negatives is not None and len(known_negatives[0]):
        known_channels = 1 if np.ndim(known_negatives[0]) == 3 else np.shape(known_negatives[0])[-1]
        if known_channels != channels:
            raise BadInputError(
                f"the other features' tiles have {known_channels} channel(s), the feature's "
                f"{channels}; cut both with the same z context"
            )
    arch, batch_size, seed = config.arch, config.batch_size, config.seed
    fine_tuning = initial_model is not None
    epochs = config.epochs_for(fine_tuning=fine_tuning)
    architecture = get_architecture(arch)
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    train_idx, held_idx = split_tiles(positive, config.validation_fraction, rng)
    model = build_model(arch, seed=seed, channels=channels)
    if initial_model is not None:
        _copy_initial_weights(initial_model, model, arch)
    stride = output_stride(model)
    starting_recall = (
        None
        if initial_model is None
        else _painted_recall(model, images[train_idx], masks[train_idx], stride)
    )
    seeds = rng.integers(0, 2**31, size=2)
    data = build_training_set(
        images[train_idx],
        masks[train_idx],
        positive[train_idx],
        output_stride=stride,
        copies=config.copies,
        augmentation=config.augmentation,
        seed=int(seeds[0]),
    )
    if known_negatives is not None and len(known_negatives[0]):
        known = build_known_negative_set(
            *known_negatives,
            output_stride=stride,
            copies=config.copies,
            augmentation=config.augmentation,
            seed=int(seeds[1]) + 1,
        )
        data = (np.concatenate([data[0], known[0]]), np.concatenate([data[1], known[1]]))
    validation = None
    if held_idx.size and positive[held_idx].any():
        validation = build_training_set(
            images[held_idx],
            masks[held_idx],
            positive[held_idx],
            output_stride=stride,
            copies=1,
            rotate=False,
            seed=int(seeds[1]),
        )
    used_engine = resolve_engine(config.engine, model)
    monitor = "val_loss" if validation is not None else "loss"
    stopper = None
    extra: list[keras.callbacks.Callback] = []
    if config.patience is not None:
        stopper = keras.callbacks.EarlyStopping(
            monitor=monitor, patience=config.patience, restore_best_weights=True
        )
        extra.append(stopper)
    if cancel is not None:
        extra.append(_CancelOnEvent(cancel))
    steps = -(-len(data[0]) // batch_size)
    restarts = 0
    network = f"{arch} network of {feature}" if feature else f"{arch} network"
    while True:
        label = f"training {feature} ({arch})" if feature else f"training {arch}"
        with progress_bar(epochs * steps, label, progress, unit="batch") as advance:
            history = _fit(
                model,
                used_engine,
                data,
                validation,
                epochs=epochs,
                batch_size=batch_size,
                learning_rate=config.learning_rate_for(
                    architecture.learning_rate, fine_tuning=fine_tuning
                ),
                callbacks=[_BatchProgress(advance), *extra, *callbacks],
            )
        painted_recall = _painted_recall(model, images[train_idx], masks[train_idx], stride)
        wrecked = restarts == 0 and _fine_tune_wrecked(starting_recall, painted_recall)
        if restarts == MAX_RESTARTS or (painted_recall != 0.0 and not wrecked):
            break
        restarts += 1
        if painted_recall == 0.0:
            what = (
                "finds none of the pixels painted on its own training tiles "
                "(it answers 'no' everywhere)"
            )
        else:
            what = (
                f"lost what it found in fine-tuning: {starting_recall:.1%} of the pixels painted "
                f"on its training tiles before, {painted_recall:.1%} after"
            )
        warnings.warn(
            f"training collapsed: the {network} {what}; restarting from new random "
            f"weights ({restarts} of {MAX_RESTARTS})",
            TrainingCollapsedWarning,
            stacklevel=2,
        )
        keras.utils.set_random_seed(seed + RESTART_SEED_STEP * restarts)
        fine_tuning = False  # new random weights learn everything again, at the full rate
        epochs = config.epochs
        model = build_model(arch, seed=seed + RESTART_SEED_STEP * restarts, channels=channels)
    # One prediction of every tile serves both thresholds (the held-out tiles are among them).
    tile_probabilities = predict_tiles(model, images)
    tile_labels = shrink_labels(masks, stride)
    validation_threshold = None
    if held_idx.size:
        validation_threshold = best_threshold(
            tile_probabilities[held_idx], tile_labels[held_idx], config.threshold_beta
        )
    tiles_counts = ThresholdCounts.from_maps(tile_probabilities, tile_labels >= 0.5)
    tiles_threshold = best_f_threshold(tiles_counts, config.threshold_beta)
    if painted_recall == 0.0:
        warnings.warn(
            f"the trained {network} still finds none of the pixels painted on its own "
            f"training tiles after {MAX_RESTARTS} restarts. Train with more epochs, and check "
            "that the masks cover the feature.",
            TrainingCollapsedWarning,
            stacklevel=2,
        )
    return TrainingResult(
        model=model,
        history={key: [float(v) for v in values] for key, values in history.history.items()},
        stopped_early=bool(stopper is not None and stopper.stopped_epoch > 0),
        threshold=chosen_threshold(config, tiles_threshold),
        validation_threshold=validation_threshold,
        tiles_threshold=tiles_threshold,
        tiles_counts=tiles_counts,
        train_indices=train_idx,
        validation_indices=held_idx,
        engine=used_engine,
        seconds=time.perf_counter() - start,
        painted_recall=painted_recall,
        restarts=restarts,
        fine_tuned=initial_model is not None and restarts == 0,
    )


def chosen_threshold(config: TrainingConfig, tiles_threshold: float | None) -> float:
    """The threshold stored with the network: the painted tiles' best, or the config's fixed one."""
    if config.threshold_from == "painted-tiles" and tiles_threshold is not None:
        return tiles_threshold
    return config.threshold


def _copy_initial_weights(initial: keras.Model, model: keras.Model, arch: str) -> None:
    """Start ``model`` from ``initial``'s weights; a network of another shape is refused."""
    weights = initial.get_weights()
    shapes = [w.shape for w in weights]
    if shapes != [w.shape for w in model.get_weights()]:
        channels = model.input_shape[-1]
        raise BadInputError(
            f"the network to fine-tune is not a {arch!r} network with {channels} input "
            f"channel(s) (weights {shapes}); train from scratch or choose its architecture and "
            "z context"
        )
    model.set_weights(weights)


def _fine_tune_wrecked(starting_recall: float | None, painted_recall: float | None) -> bool:
    """Whether a fine-tune kept less than ``FINE_TUNE_KEPT_FRACTION`` of its start's recall."""
    if not starting_recall or painted_recall is None:
        return False
    return painted_recall < FINE_TUNE_KEPT_FRACTION * starting_recall


def _painted_recall(
    model: keras.Model, images: np.ndarray, masks: np.ndarray, stride: int
) -> float | None:
    """Fraction of painted training pixels the network calls the feature (probability >= 0.5).

    A cheap check on the tiles it was trained on. 0 means training collapsed: small networks
    trained on few tiles at a high learning rate sometimes end up answering the same everywhere,
    depending on the seed (every ReLU died, or stuck at the class prior) - 2 of 4 seeds for
    ``tiny`` under JAX, one of 18 ``fast`` networks under PyTorch.
    """
    painted = masks.reshape(len(masks), -1).any(axis=1)
    labels = shrink_labels(masks[painted], stride) >= 0.5
    if not labels.any():
        return None
    return float(np.mean(predict_tiles(model, images[painted])[labels] >= 0.5))


def train_feature(
    project: Project,
    feature: str,
    config: TrainingConfig = DEFAULT_TRAINING,
    *,
    volume: Volume | str | os.PathLike | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    cancel: threading.Event | None = None,
    progress: ProgressCallback | None = None,
    initial_model: keras.Model | None = None,
) -> tuple[keras.Model, ModelInfo]:
    """Train the network of one feature of an annotation project; returns it with its metadata.

    Tiles are cut from the project's tomogram (or ``volume``) preprocessed with ``config.recipe``;
    ``callbacks``, ``cancel``, ``progress`` and ``initial_model`` (fine-tune from that network's
    weights; the sidecar's ``training["fine_tuned"]`` says whether it did) are those of ``train_on_tiles``. With
    ``config.other_features_as_negatives`` the pixels painted for the project's other features
    are trained on as "not this feature" (``dataset.collect_known_negatives``), so networks learn
    to tell touching features apart. With ``config.z_context`` the tiles are stacks of
    neighbouring slices. The sidecar records ``config`` whole (``info.training["config"]``, so
    ``info.z_context`` is known when the model is applied). Save the result with
    ``models.save_model(model, info, "feature.keras")``.
    """
    recipe = config.recipe
    tiles = collect_tiles(project, feature, volume, recipe, z_context=config.z_context)
    known = None
    if config.other_features_as_negatives:
        known = collect_known_negatives(
            project, feature, volume, recipe, z_context=config.z_context
        )
    result = train_on_tiles(
        tiles.images,
        tiles.masks,
        tiles.positive,
        config,
        known_negatives=known,
        callbacks=callbacks,
        cancel=cancel,
        progress=progress,
        feature=feature,
        initial_model=initial_model,
    )
    validation = [] if result.validation_indices is None else list(result.validation_indices)
    info = ModelInfo(
        feature=feature,
        arch=config.arch,
        voxel_size=float(project.voxel_size) * recipe.binning,
        recipe=recipe.to_dict(),
        threshold=result.threshold,
        tile_size=project.features[feature].tile_size,
        output_stride=output_stride(result.model),
        history=result.history,
        training={
            "n_positive": int(tiles.positive.sum()),
            "n_negative": int((~tiles.positive).sum()),
            "n_other_feature_tiles": 0 if known is None else len(known[0]),
            "validation_tiles": [tiles.tiles[i].id for i in validation],
            "epochs_run": len(result.history.get("loss", [])),
            "stopped_early": result.stopped_early,
            "validation_threshold": result.validation_threshold,
            "tiles_threshold": result.tiles_threshold,
            "tiles_counts": None if result.tiles_counts is None else result.tiles_counts.to_dict(),
            "engine": result.engine,
            "seconds": round(result.seconds, 2),
            "painted_recall": result.painted_recall,
            "restarts": result.restarts,
            "fine_tuned": result.fine_tuned,
            "project": str(project.folder),
            "config": config.to_dict(),
        },
    )
    return result.model, info
