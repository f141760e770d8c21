"""A trained network's two files (``MODEL.keras`` + ``MODEL.json``), checked without starting Keras.

Loading Keras takes seconds; a command given a wrong model path must say so in well under one, so
the file checks live here, apart from ``models`` (which imports Keras).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import BadInputError, MissingInputError
from .maps import validate_feature_name


def sidecar_path(path: str | os.PathLike) -> Path:
    """``MODEL.keras`` -> ``MODEL.json``."""
    return Path(path).with_suffix(".json")


def check_model_file(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path`` if it is a ``.keras`` file with its sidecar beside it.

    Raises
    ------
    MissingInputError
        The model file does not exist.
    BadInputError
        It is a folder, does not end in ``.keras``, or its sidecar ``MODEL.json`` is missing.
    """
    path = Path(path)
    if path.is_dir():
        raise BadInputError(
            f"{path}: is a folder, not a MODEL.keras file (a boxer model folder is used with "
            "'tomoseg-nb boxer pick')"
        )
    if not path.is_file():
        raise MissingInputError(f"{path}: no such model file")
    if path.suffix != ".keras":
        raise BadInputError(f"{path}: not a .keras model file")
    if not sidecar_path(path).is_file():
        raise BadInputError(
            f"{path}: its sidecar {sidecar_path(path).name} is missing; a tomoseg_nb model needs "
            "it (feature, voxel size, preprocessing). Keep the two files together, or save with "
            "save_model"
        )
    return path


def sidecar_feature(path: str | os.PathLike) -> str | None:
    """The feature a model segments, read from its sidecar without Keras; None if unreadable.

    Lets a command name its outputs (``<tomogram>__<feature>.mrc``) and refuse existing ones
    before Keras loads. An unreadable or odd sidecar gives None: ``models.load_model`` then says
    exactly what is wrong with it.
    """
    try:
        feature = json.loads(sidecar_path(path).read_text(encoding="utf-8")).get("feature")
        return validate_feature_name(feature) if isinstance(feature, str) else None
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, RecursionError):
        return None


def sidecar_z_context(path: str | os.PathLike) -> int:
    """The z context a model was trained with, read from its sidecar without Keras.

    ``training["config"]["z_context"]`` (``TrainingConfig.z_context``); 0 for a sidecar written
    before the option existed, or one that cannot be read (``models.load_model`` then says what
    is wrong with it). Lets a command refuse what it cannot do with such a model before Keras loads.
    """
    try:
        data = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
        value = data.get("training", {}).get("config", {}).get("z_context", 0)
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, RecursionError):
        return 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
