"""How a feature's network is trained: one frozen set of settings, with every default written once.

``train.train_feature``, ``evaluate``, the demo, the widgets and the CLI all build a
``TrainingConfig`` and pass it along; the model sidecar records it whole (``training["config"]``),
so a network says exactly how it was made. Importing this module is cheap (no Keras), so the CLI can
check settings before the network libraries load.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import BadInputError
from .preprocess import DEFAULT_RECIPE, Recipe

DEFAULT_ARCH = "fast"
"""Measured with ``tomoseg-nb evaluate`` (64 x 512 x 512 phantoms, seeds 1 and 2, 10 + 100 tiles,
20 epochs, the other features' painted pixels as negatives): "fast" reached IoU 0.567 / 0.713 /
0.662 and 0.589 / 0.527 / 0.674 (membrane / microtubule / ribosome) against 0.547 / 0.681 / 0.625
and 0.606 / 0.397 / 0.568 for "eman2" - better in five of six, at a fifth of its arithmetic per
voxel. ``--arch eman2`` keeps the seed's network."""


DEFAULT_Z_CONTEXT = 3
"""Neighbouring slices on each side (seven slices in). Chosen on the development half of
``synthetic.suite`` (``benchmarks/bench_accuracy.py --half development --shape 48 256 256
--methods default``, 10 + 100 tiles, 20 epochs). Against single slices, z context 2 first raised
mean / worst IoU from membrane 0.474 / 0.000, microtubule 0.483 / 0.127, ribosome 0.424 / 0.036
to 0.505 / 0.030, 0.517 / 0.139, 0.488 / 0.211 (threshold 0.5) at 91 vs 89 s of training per
feature. Then, at the painted tiles' F2 threshold and averaged over two seeds (``--set seed=1``,
``--set z_context=3``; KERAS_BACKEND=torch, 2026-12-07), 3 against 2 went membrane 0.484 / 0.072
-> 0.493 / 0.100, microtubule 0.550 / 0.220 -> 0.551 / 0.220, ribosome 0.566 / 0.299 -> 0.569 /
0.334, at 95 vs 90 s per feature: a worst case at least as good on every feature (the rule set
before the second seed was read), though the microtubule one is a tie and a single
phantom-feature moves up to 0.035 either way. Read once on the held-back half afterwards: 0.329 /
0.034, 0.501 / 0.253, 0.598 / 0.461 (z context 2: 0.323 / 0.000, 0.501 / 0.260, 0.560 / 0.297).
Networks saved before z context existed read as 0 (``from_dict``)."""


DEFAULT_VALIDATION_FRACTION = 0.0
"""Tiles held out of training only to draw a validation loss: none, as in EMAN2. From the
protocol's 10 positive tiles a fifth is 2, too few for the loss to steer anything (early stopping
on it cost IoU, ``train``), and training on them was measured to pay. Chosen on the development
half of ``synthetic.suite`` (``bench_accuracy.py --half development --shape 48 256 256 --methods
default --set validation_fraction=0``, seeds 0 and 1; KERAS_BACKEND=torch, 2026-12-07/08; rule
written beforehand: no feature's worst case lower, no mean lower by more than 0.02,
``benchmarks/compare_runs.py``): against 0.2 (both at the F2 threshold), mean / worst IoU went
membrane 0.493 / 0.100 -> 0.502 / 0.120, microtubule 0.551 / 0.220 -> 0.584 / 0.246, ribosome
0.569 / 0.334 -> 0.615 / 0.395; 15 of the 16 phantom-features gained on the seed mean (s1102
membrane lost 0.043). Training sees 110 tiles an epoch instead of 88. Held-out loss is still there for those who want it
(``validation_fraction=0.2``, ``tomoseg-nb train --validation-fraction 0.2``): with many tiles it
shows over-fitting and lets ``patience`` stop on it."""


DEFAULT_FINE_TUNE_EPOCHS = 5
"""Epochs of a retraining that continues from a network's weights (a correction round, the
widget's *Retrain: continue*). Set by a budget of one round under 60 s per feature on 2 CPU
cores: one epoch of the default network over 10 + 100 tiles takes about 5 s there, and the
round also suggests, paints and segments the tomogram. Measured: 28-30 s per round and feature
on a development phantom, 43-46 s on the held-back half under load (``benchmarks/README.md``,
correction rounds). Eight epochs (41 s per round) were tried on the development half: after two
suggested rounds microtubule 0.665 vs 0.643, but membrane 0.532 vs 0.549 and ribosome 0.681 vs
0.692, a lower worst feature, so 5 stays."""


DEFAULT_FINE_TUNE_LEARNING_RATE_SCALE = 1.0
"""The fine-tune's learning rate as a fraction of the training's. Measured on the development half
(``benchmarks/bench_rounds.py --half development --branches suggested unchanged --set
fine_tune_learning_rate_scale=0.3``, 5 phantoms): 0.3 cut the swing of a fine-tune with no tile
added from 0.015 to 0.012 IoU per round, but two rounds of 5 suggested tiles ended lower on every
feature (membrane 0.544 vs 0.549, microtubule 0.636 vs 0.643, ribosome 0.678 vs 0.692): the
new tiles teach less. So 1, the full rate (``benchmarks/README.md``, correction rounds)."""


ARCHITECTURE_NAMES = ("eman2", "fast", "tiny")
"""The networks ``models.ARCHITECTURES`` builds (a test keeps the two in step), known here without
Keras so a misspelt ``--arch`` is refused at once."""
AUGMENTATIONS = ("symmetries", "random-rotations")
"""Ways of making augmented copies of a tile (``dataset.augment``)."""
THRESHOLD_SOURCES = ("painted-tiles", "fixed")
"""Where the threshold stored with a trained network comes from (``TrainingConfig.threshold_from``)."""

DEFAULT_THRESHOLD_FROM = "painted-tiles"
"""Chosen on the development half of ``synthetic.suite`` (``benchmarks/bench_accuracy.py --half
development --shape 48 256 256 --methods default``): against the fixed 0.5, the threshold that
maximises IoU over every painted tile raised mean / worst IoU from 0.505 / 0.030 to 0.513 / 0.055
(membrane), 0.517 / 0.139 to 0.562 / 0.218 (microtubule) and 0.488 / 0.211 to 0.538 / 0.228
(ribosome), and lost at most 0.008 on any of the 16 phantom-features. The held-out tiles' own
best threshold (about 2 positive tiles) swung from 0.10 to 0.85 and lost up to 0.13 on 4 of 16."""

DEFAULT_THRESHOLD_BETA = 3.0
"""F-beta that the painted tiles' threshold maximises (``TrainingConfig.threshold_beta``). The
network is surer of the tiles it was trained on than of the rest of a tomogram, so the tiles'
IoU-best threshold (beta 1) sits above the tomogram's. Chosen on the development half of
``synthetic.suite`` (``bench_accuracy.py --half development --shape 48 256 256 --methods
default``, then ``score_thresholds.py`` on the same maps; KERAS_BACKEND=torch, 2026-12-06): against
beta 1, mean / worst IoU went membrane 0.501 / 0.046 -> 0.481 / 0.057, microtubule 0.574 / 0.208
-> 0.553 / 0.220, ribosome 0.534 / 0.246 -> 0.562 / 0.301: a better worst case on every feature
(the criterion of the suite) for about 0.02 of mean on two. Then beta 3 against 2, scored on
the same maps from the counts the runs record (``compare_runs.py --candidate-beta 3``), once on
the z context 3 maps (seeds 0 and 1) and, by a rule set before, again on the maps of training on
every tile (``DEFAULT_VALIDATION_FRACTION``): there membrane 0.502 / 0.120 -> 0.482 / 0.128,
microtubule 0.584 / 0.246 -> 0.580 / 0.257, ribosome 0.615 / 0.395 -> 0.605 / 0.401 (2026-12-08).
A weak case: the worst cases gain about one seed's spread, 3 came out of a scan of seven betas
on the first maps, and on the second ones 2.5 (seen after the rule named 3) reached the same
worst cases for less mean (0.497, 0.581, 0.608)."""


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of one training run (see ``train`` for why each default is what it is).

    Attributes
    ----------
    arch : str
        Network architecture (``models.ARCHITECTURES``).
    epochs, batch_size : int
        EMAN2's defaults: 20 epochs of batches of 20.
    fine_tune_epochs : int
        Epochs when training continues from a network's weights (``train``'s
        ``initial_model``): fewer, since the network has learnt most of it
        (``DEFAULT_FINE_TUNE_EPOCHS``). A fine-tuned network that collapses restarts from new
        weights for the full ``epochs``.
    learning_rate : float or None
        Adam's learning rate; None uses the architecture's own (eman2: 1e-4).
    fine_tune_learning_rate_scale : float
        The learning rate of a fine-tune is the training's times this (in (0, 1]): a fine-tune
        starts a fresh Adam on a network that already works, and at the full rate its first
        steps can throw away what it knew (``DEFAULT_FINE_TUNE_LEARNING_RATE_SCALE``). A restart
        after a collapse trains new weights at the full rate.
    validation_fraction : float
        Fraction of the tiles of each class held out for the validation loss; the default 0
        trains on every tile (``DEFAULT_VALIDATION_FRACTION``).
    patience : int or None
        Stop after this many epochs without a better validation loss (training loss when no tile
        is held out); None trains every epoch.
    copies : int
        Augmented copies per negative tile (EMAN2: 10); positives get the balancing number.
    augmentation : str
        How copies are made (``AUGMENTATIONS``): "symmetries" (the square's 8 exact symmetries,
        random +-45 degree turns beyond 8 copies) or "random-rotations" (EMAN2: each copy turned
        by a random angle in [0, 360)).
    other_features_as_negatives : bool
        Train on the pixels painted for the project's other features as "not this feature".
    threshold_from : str
        Where the threshold stored with the model comes from (``THRESHOLD_SOURCES``):
        "painted-tiles" (the default, ``DEFAULT_THRESHOLD_FROM``) picks the one in 0.1..0.9 of
        highest F-beta over every painted tile once training is done, so a map whose calibration
        moved (a fine-tune, an unusual tomogram) is still cut where the person's painting says;
        "fixed" uses ``threshold``.
    threshold_beta : float
        The beta of that F-beta: 1 is the Dice (and IoU) best; the default 3 weighs recall nine
        times precision, for a network surer of its training tiles than of the tomogram
        (``DEFAULT_THRESHOLD_BETA``).
    threshold : float
        The fixed threshold, and the fallback of "painted-tiles" when the tiles hold no painted
        pixel: 0.5, the decision boundary of the class-balanced training set (EMAN2's merge: 0.8).
    seed : int
        Makes a run repeatable (weights, split, augmentation).
    engine : str
        Convolution engine for training: "auto", "keras" or "fft".
    z_context : int
        Neighbouring slices on *each* side given to the network as extra input channels ("2.5D"):
        the input at slice ``z`` is slices ``z - k .. z + k`` (``2 k + 1`` channels, mirrored at
        the tomogram's ends, see ``preprocess.context_indices``), so a thin feature that is faint
        in one slice (a membrane bilayer, a microtubule wall) can be followed through its
        neighbours. The default, 3 (seven slices in), had a worst-case IoU at least as good as 2
        and 0 on every feature over the development half of the phantom suite, at about the same
        training time (``DEFAULT_Z_CONTEXT``); 0 is the plain 2D network of EMAN2's single-slice
        tiles.
    recipe : Recipe
        Preprocessing of the tiles (and later of every slice the network is applied to).
    """

    arch: str = DEFAULT_ARCH
    epochs: int = 20
    batch_size: int = 20
    fine_tune_epochs: int = DEFAULT_FINE_TUNE_EPOCHS
    learning_rate: float | None = None
    fine_tune_learning_rate_scale: float = DEFAULT_FINE_TUNE_LEARNING_RATE_SCALE
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION
    patience: int | None = None
    copies: int = 10
    augmentation: str = "symmetries"
    other_features_as_negatives: bool = True
    threshold_from: str = DEFAULT_THRESHOLD_FROM
    threshold_beta: float = DEFAULT_THRESHOLD_BETA
    threshold: float = 0.5
    seed: int = 0
    engine: str = "auto"
    z_context: int = DEFAULT_Z_CONTEXT
    recipe: Recipe = field(default=DEFAULT_RECIPE)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "fine_tune_epochs", "copies"):
            _check_whole(name, getattr(self, name), 1)
        _check_whole("seed", self.seed, 0)
        _check_whole("z_context", self.z_context, 0)
        if self.patience is not None:
            _check_whole("patience", self.patience, 1)
        if not 0 <= self.validation_fraction < 1:
            raise BadInputError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )
        if self.learning_rate is not None and not (
            math.isfinite(self.learning_rate) and self.learning_rate > 0
        ):
            raise BadInputError(
                f"learning_rate must be a positive number, got {self.learning_rate}"
            )
        if not (
            isinstance(self.fine_tune_learning_rate_scale, (int, float))
            and not isinstance(self.fine_tune_learning_rate_scale, bool)
            and 0 < self.fine_tune_learning_rate_scale <= 1
        ):
            raise BadInputError(
                "fine_tune_learning_rate_scale must be a number in (0, 1] (1 = the training's "
                f"own learning rate), got {self.fine_tune_learning_rate_scale!r}"
            )
        if self.arch not in ARCHITECTURE_NAMES:
            raise BadInputError(
                f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHITECTURE_NAMES)}"
            )
        if self.augmentation not in AUGMENTATIONS:
            raise BadInputError(
                f"augmentation must be one of {', '.join(AUGMENTATIONS)}, got {self.augmentation!r}"
            )
        if self.threshold_from not in THRESHOLD_SOURCES:
            raise BadInputError(
                f"threshold_from must be one of {', '.join(THRESHOLD_SOURCES)}, got "
                f"{self.threshold_from!r}"
            )
        if not (
            isinstance(self.threshold_beta, (int, float))
            and not isinstance(self.threshold_beta, bool)
            and math.isfinite(self.threshold_beta)
            and self.threshold_beta > 0
        ):
            raise BadInputError(
                f"threshold_beta must be a positive number (1 = the IoU-best threshold), got "
                f"{self.threshold_beta!r}"
            )
        if not (isinstance(self.threshold, (int, float)) and 0 < self.threshold < 1):
            raise BadInputError(
                f"threshold must be a probability in (0, 1), got {self.threshold!r}"
            )
        if not isinstance(self.recipe, Recipe):
            raise BadInputError(f"recipe must be a preprocess.Recipe, got {self.recipe!r}")

    def replace(self, **changes: Any) -> TrainingConfig:
        """A copy with ``changes`` (checked like a new config)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise BadInputError(
                f"unknown training setting(s) {', '.join(sorted(unknown))}; known: "
                f"{', '.join(f.name for f in fields(self))}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every setting, the recipe as its own dict."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["recipe"] = self.recipe.to_dict()
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        """The inverse of ``to_dict``; settings a newer version added are refused by name.

        A config recorded before z context existed made a single-slice network: it reads as
        ``z_context=0``, not today's default; one recorded before ``threshold_from`` existed
        stored its fixed ``threshold``, and reads as ``threshold_from="fixed"``; one recorded
        before ``threshold_beta`` chose the tiles' IoU-best threshold, and reads as beta 1.
        """
        values = dict(data)
        values.setdefault("z_context", 0)
        values.setdefault("threshold_from", "fixed")
        values.setdefault("threshold_beta", 1.0)
        if "recipe" in values:
            values["recipe"] = Recipe.from_dict(values["recipe"])
        return cls().replace(**values)

    def learning_rate_for(self, architecture_rate: float, *, fine_tuning: bool) -> float:
        """Adam's rate: ``learning_rate`` or the architecture's, scaled down for a fine-tune."""
        rate = self.learning_rate or architecture_rate
        return rate * self.fine_tune_learning_rate_scale if fine_tuning else rate

    def epochs_for(self, *, fine_tuning: bool) -> int:
        """Epochs of a training: ``fine_tune_epochs`` from a network's weights, else ``epochs``."""
        return self.fine_tune_epochs if fine_tuning else self.epochs

    @property
    def input_channels(self) -> int:
        """Channels of the network input: the slice and ``z_context`` neighbours on each side, each
        as ``recipe.channels_per_slice`` channels."""
        return (2 * self.z_context + 1) * self.recipe.channels_per_slice


def _check_whole(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BadInputError(f"{name} must be a whole number >= {minimum}, got {value!r}")


DEFAULT_TRAINING = TrainingConfig()

EMAN2_RECIPE = TrainingConfig(
    arch="eman2",
    epochs=20,
    batch_size=20,
    learning_rate=1e-4,
    validation_fraction=0.0,
    patience=None,
    copies=10,
    augmentation="random-rotations",
    other_features_as_negatives=False,
    threshold_from="fixed",
    threshold=0.8,
    z_context=0,
    recipe=DEFAULT_RECIPE,
)
"""EMAN2 tomoseg's training recipe (``e2tomoseg_convnet``), as ``reference/ANCHORS.md`` reads it.

The 40/40/1 x 15x15 network with one 2x2 max-pool and TruncatedNormal(0.01) weights; EMAN2's
preprocessing (Gaussian lowpass 0.25, highpass 5 px, mean 0 / sigma 1, clamp at 3 sigma, / 3);
10 randomly rotated copies per negative tile and ``10 n_neg / n_pos`` per positive tile so the
classes balance; single-slice tiles (no z context); labels mean-shrunk by 2; log-MSE loss;
Adam 1e-4, batches of 20, 20 epochs; every tile trained on (no validation, no early stop); no
other feature's pixels as negatives; and 0.8, the level of the "nothing" map in EMAN2's
competitive merge, as the threshold. Where the project trains differently (its default
architecture, symmetries, z context, other features as negatives, the painted tiles' threshold),
this restores EMAN2's choice, so the seed's method can be measured as the floor the project's
defaults must beat. Training still restarts a collapsed network (see ``train``), which EMAN2 does not."""
