"""Train the boxer's picker (good vs background) and classifier (good vs bad) from references.

As EMAN2 e2boxer: a dozen references per class are augmented to a few hundred samples; the picker
learns a Gaussian bump at a good particle's centre and zero on background (and, unlike EMAN2, on
the bad references too); the classifier, trained only when bad references exist, learns to tell
good particles from contamination and aggregates.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..errors import BadInputError
from ..progress import ProgressCallback, progress_bar
from .augment import augment_boxes
from .calibrate import calibrated_threshold, reference_scores
from .model import BoxerInfo, BoxerModel
from .networks import build_classifier, build_picker, picker_targets, picker_weights
from .references import MIN_REFERENCES, References


def _fit(
    model, x, y, batch_size: int, epochs: int, advance, sample_weight=None
) -> dict[str, list[float]]:
    """Fit on shuffled batches, advancing the progress bar once per epoch; the loss history."""
    import keras

    class _Advance(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            advance(1)

    fit = model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        shuffle=True,
        verbose=0,
        callbacks=[_Advance()],
        sample_weight=sample_weight,
    )
    return {name: [float(v) for v in values] for name, values in fit.history.items()}


def train_boxer(
    references: References,
    *,
    epochs: int = 20,
    samples_per_class: int = 500,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    filters: tuple[int, int] = (16, 16),
    kernel_px: int = 9,
    picker_rejects_bad: bool = True,
    threshold: float = 1.0,
    classifier_threshold: float = 0.5,
    seed: int = 0,
    centre_weight_radius: float | None = 0.25,
    outside_weight: float = 0.0,
    max_shift: float = 0.25,
    progress: ProgressCallback | None = None,
) -> BoxerModel:
    """Train both networks of a boxer from ``references`` (``collect_references``).

    Parameters
    ----------
    references : References
        Good, background and (optional) bad boxes at the working scale.
    epochs : int
        Passes over the augmented samples, per network.
    samples_per_class : int
        Augmented samples made from each class's references (EMAN2: about 500).
    batch_size : int
        Samples per gradient step.
    learning_rate : float
        Adam learning rate.
    filters : tuple of int
        Channels of the picker's two hidden layers (and of the classifier's).
    kernel_px : int
        Side of the picker's convolution kernels (odd).
    picker_rejects_bad : bool
        Train the picker on bad references as negatives too (zero target), so contamination and
        aggregates rarely become candidates. False trains it on background only, as EMAN2 does,
        leaving all of the rejection to the classifier.
    threshold, classifier_threshold : float
        Defaults stored with the model for picking (see ``autopick``); ``threshold`` (standard
        deviations) is the template matching default, the picker's own default is calibrated
        from the references (``calibrate.calibrated_threshold``).
    seed : int
        Seed of the augmentation and of the weight initialisation.
    centre_weight_radius : float or None
        The picker's loss counts within this fraction of the box from a sample's centre (and
        ``outside_weight`` beyond): a box only tells what is at its centre, and unboxed
        neighbours of a boxed particle must not be taught as background. None weighs all alike.
    outside_weight : float
        Loss weight beyond ``centre_weight_radius``.
    max_shift : float
        Largest shift of a training sample's content, as a fraction of the box, so the picker
        learns where a particle's centre is.
    progress : callable, optional
        ``callback(done, total)`` after each epoch of each network.

    Returns
    -------
    BoxerModel
        Ready to ``autopick`` or ``save_boxer``.
    """
    import keras

    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise BadInputError(f"epochs must be a whole number >= 1, got {epochs!r}")
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    box = references.working_box_px
    shift = box * max_shift
    has_bad = len(references.bad) > 0
    if has_bad and len(references.bad) < MIN_REFERENCES:
        warnings.warn(
            f"only {len(references.bad)} bad reference(s); the classifier is unreliable below "
            f"{MIN_REFERENCES}: box more contamination / aggregates",
            UserWarning,
            stacklevel=2,
        )
    history: dict[str, list[float]] = {}
    with progress_bar(epochs * (2 if has_bad else 1), "training boxer", progress) as advance:
        good, good_shifts = augment_boxes(
            references.good, samples_per_class, box, max_shift_px=shift, rng=rng
        )
        # Bad boxes are negatives for the picker too (EMAN2 uses background only): contamination
        # then rarely becomes a candidate, and the classifier vetoes what still gets through.
        negatives = [references.background]
        if has_bad and picker_rejects_bad:
            negatives.append(references.bad)
        empty, _ = augment_boxes(
            np.concatenate(negatives),
            samples_per_class * len(negatives),
            box,
            max_shift_px=shift,
            rng=rng,
        )
        x = np.concatenate([good, empty])[..., None]
        y = np.concatenate(
            [picker_targets(good_shifts, len(good), box), picker_targets(None, len(empty), box)]
        )
        weights = None
        if centre_weight_radius is not None:
            weights = picker_weights(len(x), box, centre_weight_radius * box, outside_weight)
        picker = build_picker(filters, kernel_px, seed=seed)
        picker.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
        fitted = _fit(picker, x, y, batch_size, epochs, advance, weights)
        history["picker_loss"] = fitted["loss"]
        good_scores = reference_scores(picker, references.good, box)
        background_scores = reference_scores(picker, references.background, box)
        classifier = None
        if has_bad:
            good, _ = augment_boxes(
                references.good, samples_per_class, box, max_shift_px=shift, rng=rng
            )
            bad, _ = augment_boxes(
                references.bad, samples_per_class, box, max_shift_px=shift, rng=rng
            )
            x = np.concatenate([good, bad])[..., None]
            y = np.concatenate([np.ones(len(good)), np.zeros(len(bad))]).astype(np.float32)
            classifier = build_classifier(box, filters, seed=seed)
            classifier.compile(
                optimizer=keras.optimizers.Adam(learning_rate),
                loss="binary_crossentropy",
                metrics=["accuracy"],
            )
            fitted = _fit(classifier, x, y, batch_size, epochs, advance)
            history["classifier_loss"] = fitted["loss"]
            history["classifier_accuracy"] = fitted["accuracy"]
    info = BoxerInfo(
        box_px=references.box_angstrom / references.pixel_size,
        pixel_size=references.pixel_size,
        recipe=references.recipe.to_dict(),
        threshold=threshold,
        classifier_threshold=classifier_threshold,
        score_threshold=calibrated_threshold(good_scores, background_scores),
        reference_scores={
            "good": float(np.median(good_scores)),
            "background": float(np.median(background_scores)),
        },
        counts=references.counts(),
        history=history,
        train_seconds=time.perf_counter() - started,
    )
    return BoxerModel(picker=picker, classifier=classifier, references=references.good, info=info)
