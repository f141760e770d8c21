"""The probability-map contract: file names, feature names, and how probabilities are stored.

Every writer and reader of probability maps (``segment``, ``merge``, ``picking``, ``mesh``,
``evaluate``, ``distributed``, the widgets and the CLI) goes through this module, so the format is
defined once:

- A map of feature ``F`` computed on tomogram ``T`` is ``<T>__<F>.mrc`` (``map_path``); other file
  names are accepted when read, and name only the feature (``MapName.parse``).
- Probabilities are float in [0, 1]. On disk they are float32 or float16 as they are, or 8-bit
  integers ``round(255 p)`` (``encode_probabilities``). Integers of *any* width decode as 0-255 (``decode_probabilities``):
  MRC has no unsigned 8-bit mode, so a uint8 map comes back as uint16 (mode 6), and Ais writes
  8-bit maps too.
- Feature names become file names, so they are restricted to safe characters
  (``validate_feature_name``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BadInputError

SEPARATOR = "__"
"""Between the tomogram's and the feature's name in a map's file name."""
SUFFIX = ".mrc"
STORED_DTYPES = ("float32", "float16", "uint8")
"""How a map can be stored; uint8 keeps ``round(255 p)``."""
_INTEGER_SCALE = np.float32(255.0)
_FEATURE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")


def validate_feature_name(name: str) -> str:
    """Return ``name`` if it can name files (``DIR/<feature>.keras``); raise BadInputError otherwise."""
    if not isinstance(name, str) or not _FEATURE_NAME.match(name) or name in (".", ".."):
        raise BadInputError(
            f"feature name {name!r} is not allowed; use 1-64 letters, digits, '_', '-', '.' or '+' "
            "starting with a letter or digit (e.g. 'membrane', 'outer_membrane')"
        )
    return name


@dataclass(frozen=True)
class MapName:
    """What a map's file name says: the tomogram it was computed on (if it says) and the feature."""

    tomogram: str | None
    feature: str

    @classmethod
    def parse(cls, path: str | os.PathLike) -> MapName:
        """``maps/TS_01__ribosome.mrc`` -> ``MapName("TS_01", "ribosome")``.

        A file not named by ``segment`` (``ribosome.mrc``) names only its feature: its stem.
        """
        stem = Path(path).stem
        tomogram, separator, feature = stem.rpartition(SEPARATOR)
        if separator and tomogram and feature:
            return cls(tomogram, feature)
        return cls(None, stem)


def map_path(folder: str | os.PathLike, tomogram: str, feature: str) -> Path:
    """``folder/<tomogram>__<feature>.mrc``: where ``segment`` writes a feature's map."""
    return Path(folder) / f"{tomogram}{SEPARATOR}{validate_feature_name(feature)}{SUFFIX}"


def find_maps(folder: str | os.PathLike) -> list[Path]:
    """The maps ``segment`` wrote into ``folder`` (``<tomogram>__<feature>.mrc``), sorted."""
    return sorted(p for p in Path(folder).glob(f"*{SEPARATOR}*{SUFFIX}") if p.is_file())


def check_stored_dtype(dtype: str) -> str:
    """Return ``dtype`` if maps can be stored so; raise BadInputError naming the choices otherwise."""
    if dtype not in STORED_DTYPES:
        raise BadInputError(
            f"output dtype {dtype!r} not supported; choose one of {', '.join(STORED_DTYPES)}"
        )
    return dtype


def encode_probabilities(probabilities: np.ndarray, dtype: str) -> np.ndarray:
    """Probabilities in [0, 1] as stored: float32/float16 as they are, uint8 as ``round(255 p)``."""
    check_stored_dtype(dtype)
    if dtype == "uint8":
        scaled = np.clip(np.asarray(probabilities, np.float32), 0.0, 1.0) * _INTEGER_SCALE
        return np.rint(scaled).astype(np.uint8)
    return np.asarray(probabilities).astype(dtype)


def decode_probabilities(
    stored: np.ndarray, stored_dtype: np.dtype | type | str | None = None
) -> np.ndarray:
    """Float32 probabilities from a map as stored: integers of any width are 0-255, booleans 0/1.

    ``stored_dtype`` is the type on disk when ``stored`` was already converted (a viewer reads
    slices as float32); by default it is ``stored.dtype``. Floats come back as float32 (a view
    when they already are).

    >>> decode_probabilities(np.array([0, 128, 255], np.uint16))
    array([0.       , 0.5019608, 1.       ], dtype=float32)
    """
    stored = np.asarray(stored)
    dtype = np.dtype(stored_dtype) if stored_dtype is not None else stored.dtype
    if dtype == np.bool_:
        return stored.astype(np.float32)
    if np.issubdtype(dtype, np.integer):
        return stored.astype(np.float32) / _INTEGER_SCALE
    return stored.astype(np.float32, copy=False)
