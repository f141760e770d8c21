"""TrainingConfig: one frozen set of training settings, checked on creation, recorded whole."""

from __future__ import annotations

import json

import pytest

from tomoseg_nb.errors import BadInputError
from tomoseg_nb.preprocess import Recipe
from tomoseg_nb.training_config import DEFAULT_ARCH, DEFAULT_TRAINING, TrainingConfig


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
    ],
)
def test_bad_settings_are_refused_with_their_name(changes: dict, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        TrainingConfig(**changes)
