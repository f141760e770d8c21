"""TrainingConfig: one frozen set of training settings, checked on creation, recorded whole."""

from __future__ import annotations

import json

import pytest

from tomoseg_nb.errors import BadInputError
from tomoseg_nb.preprocess import Recipe
from tomoseg_nb.training_config import (
    DEFAULT_ARCH,
    DEFAULT_THRESHOLD_BETA,
    DEFAULT_THRESHOLD_FROM,
    DEFAULT_TRAINING,
    DEFAULT_Z_CONTEXT,
    EMAN2_RECIPE,
    TrainingConfig,
)


def test_defaults_are_the_documented_ones_and_frozen() -> None:
    config = TrainingConfig()
    assert config == DEFAULT_TRAINING
    assert (config.arch, config.epochs, config.batch_size, config.copies) == (
        DEFAULT_ARCH,
        20,
        20,
        10,
    )
    assert config.patience is None and config.other_features_as_negatives is True
    with pytest.raises(AttributeError):
        config.epochs = 3  # type: ignore[misc]


def test_a_fine_tune_has_its_own_epochs_recorded_and_read_back() -> None:
    """Continuing from a network's weights runs ``fine_tune_epochs`` (5), a new one ``epochs``;
    a config recorded before the setting existed reads today's default."""
    config = TrainingConfig(epochs=12, fine_tune_epochs=3)
    assert TrainingConfig().fine_tune_epochs == 5
    assert config.epochs_for(fine_tuning=True) == 3 and config.epochs_for(fine_tuning=False) == 12
    assert TrainingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    older = {k: v for k, v in config.to_dict().items() if k != "fine_tune_epochs"}
    assert TrainingConfig.from_dict(older).fine_tune_epochs == 5


def test_a_fine_tune_learns_at_a_fraction_of_the_training_rate() -> None:
    """The fine-tune's rate is the training's (its own or the architecture's) times the scale; a
    config recorded before the scale existed fine-tuned at the full rate, as the default does."""
    config = TrainingConfig(fine_tune_learning_rate_scale=0.25)
    assert config.learning_rate_for(1e-3, fine_tuning=True) == pytest.approx(2.5e-4)
    assert config.learning_rate_for(1e-3, fine_tuning=False) == 1e-3
    own = config.replace(learning_rate=4e-4)
    assert own.learning_rate_for(1e-3, fine_tuning=True) == pytest.approx(1e-4)
    older = {k: v for k, v in config.to_dict().items() if k != "fine_tune_learning_rate_scale"}
    assert TrainingConfig.from_dict(older).fine_tune_learning_rate_scale == 1.0


def test_round_trips_through_json_with_its_recipe() -> None:
    config = TrainingConfig(arch="eman2", epochs=7, patience=3, recipe=Recipe(binning=2))
    again = TrainingConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.recipe.binning == 2


def test_replace_checks_like_a_new_config() -> None:
    assert TrainingConfig().replace(epochs=5).epochs == 5
    with pytest.raises(BadInputError, match=r"unknown training setting\(s\) epoch;"):
        TrainingConfig().replace(epoch=5)
    with pytest.raises(BadInputError, match="unknown training setting"):
        TrainingConfig.from_dict({"epochs": 3, "newer_setting": 1})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs must be a whole number >= 1"),
        ({"batch_size": 2.5}, "batch_size must be a whole number"),
        ({"copies": True}, "copies must be a whole number"),
        ({"seed": -1}, "seed must be a whole number >= 0"),
        ({"patience": 0}, "patience must be a whole number >= 1"),
        ({"validation_fraction": 1.0}, "validation_fraction must be in"),
        ({"learning_rate": float("nan")}, "learning_rate must be a positive number"),
        ({"recipe": {"binning": 2}}, "recipe must be a preprocess.Recipe"),
        ({"fine_tune_epochs": 0}, "fine_tune_epochs must be a whole number >= 1"),
        (
            {"fine_tune_learning_rate_scale": 0},
            r"fine_tune_learning_rate_scale must be .* \(0, 1\]",
        ),
        ({"fine_tune_learning_rate_scale": 1.5}, "fine_tune_learning_rate_scale must be"),
        ({"fine_tune_learning_rate_scale": True}, "fine_tune_learning_rate_scale must be"),
    ],
)
def test_bad_settings_are_refused_with_their_name(changes: dict, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        TrainingConfig(**changes)


def test_eman2_recipe_is_the_seed_recipe_of_anchors() -> None:
    """reference/ANCHORS.md, EMAN2 tomoseg: 40/40/1 x 15x15 network, lowpass 0.25, highpass 5 px,
    clamp 3 sigma, / 3; 64x64 single-slice tiles (no z context); 10 rotated copies per negative,
    balancing copies per positive; Adam 1e-4, batch 20, 20 epochs, no validation; merge
    threshold 0.8."""
    from tomoseg_nb.models import ARCHITECTURES, build_model

    recipe = EMAN2_RECIPE
    assert (recipe.arch, recipe.epochs, recipe.batch_size, recipe.learning_rate) == (
        "eman2",
        20,
        20,
        1e-4,
    )
    assert (recipe.copies, recipe.augmentation) == (10, "random-rotations")
    assert recipe.validation_fraction == 0 and recipe.patience is None
    assert recipe.other_features_as_negatives is False
    assert (recipe.threshold_from, recipe.threshold) == ("fixed", 0.8)
    assert recipe.z_context == 0 and recipe.input_channels == 1  # single-slice tiles
    assert (recipe.recipe.lowpass, recipe.recipe.highpass_px, recipe.recipe.clamp_sigma) == (
        0.25,
        5.0,
        3.0,
    )
    assert recipe.recipe.scale == pytest.approx(1 / 3) and recipe.recipe.binning == 1
    assert ARCHITECTURES["eman2"].learning_rate == recipe.learning_rate
    model = build_model("eman2", seed=0)
    convolutions = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [(c.filters, c.kernel_size) for c in convolutions] == [
        (40, (15, 15)),
        (40, (15, 15)),
        (1, (15, 15)),
    ]
    again = TrainingConfig.from_dict(json.loads(json.dumps(recipe.to_dict())))
    assert again == recipe


def test_new_settings_keep_todays_defaults_and_are_recorded() -> None:
    config = TrainingConfig()
    assert (config.augmentation, config.threshold) == ("symmetries", 0.5)
    recorded = config.to_dict()
    assert (recorded["augmentation"], recorded["threshold"]) == ("symmetries", 0.5)
    assert TrainingConfig.from_dict({k: v for k, v in recorded.items() if k != "threshold"}) == (
        config
    )


def test_the_threshold_comes_from_the_painted_tiles_and_older_configs_kept_theirs() -> None:
    """Today's networks carry the painted tiles' best threshold; a config recorded before the
    setting existed stored its fixed threshold, and must read back as such."""
    config = TrainingConfig()
    assert config.threshold_from == DEFAULT_THRESHOLD_FROM == "painted-tiles"
    assert TrainingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    older = {k: v for k, v in config.to_dict().items() if k != "threshold_from"}
    assert TrainingConfig.from_dict(older).threshold_from == "fixed"
    # today's tiles' choice weighs recall (F3); one recorded before chose the IoU-best (F1)
    assert config.threshold_beta == DEFAULT_THRESHOLD_BETA == 3.0
    before_beta = {k: v for k, v in config.to_dict().items() if k != "threshold_beta"}
    assert TrainingConfig.from_dict(before_beta).threshold_beta == 1.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"augmentation": "flips"}, "augmentation must be one of symmetries, random-rotations"),
        ({"threshold": 1.0}, "threshold must be a probability in"),
        ({"threshold": True}, "threshold must be a probability in"),
        ({"threshold_from": "held-out"}, "threshold_from must be one of painted-tiles, fixed"),
        ({"threshold_beta": 0}, "threshold_beta must be a positive number"),
        ({"threshold_beta": float("nan")}, "threshold_beta must be a positive number"),
        ({"threshold_beta": "2"}, "threshold_beta must be a positive number"),
    ],
)
def test_bad_new_settings_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        TrainingConfig(**changes)


def test_architecture_names_match_the_networks_models_builds() -> None:
    from tomoseg_nb.models import ARCHITECTURES
    from tomoseg_nb.training_config import ARCHITECTURE_NAMES

    assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES
    with pytest.raises(BadInputError, match="unknown architecture 'resnet'; choose one of eman2"):
        TrainingConfig(arch="resnet")


def test_z_context_defaults_to_seven_slices_and_round_trips() -> None:
    assert TrainingConfig().z_context == DEFAULT_Z_CONTEXT == 3
    assert DEFAULT_TRAINING.input_channels == 7 and EMAN2_RECIPE.input_channels == 1
    config = TrainingConfig(arch="tiny", z_context=2)
    assert config.input_channels == 5
    assert config.replace(recipe=Recipe(extra_lowpass=(0.0,))).input_channels == 10
    recorded = json.loads(json.dumps(config.to_dict()))
    assert recorded["z_context"] == 2
    assert TrainingConfig.from_dict(recorded) == config
    assert DEFAULT_TRAINING.replace(z_context=1).z_context == 1
    # a config recorded before the option existed reads as today's 2D network
    older = {k: v for k, v in DEFAULT_TRAINING.to_dict().items() if k != "z_context"}
    assert TrainingConfig.from_dict(older).z_context == 0


@pytest.mark.parametrize("value", [-1, 1.5, True, "2"])
def test_bad_z_context_is_refused(value) -> None:
    with pytest.raises(BadInputError, match="z_context must be a whole number >= 0"):
        TrainingConfig(z_context=value)
