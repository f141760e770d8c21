"""tomoseg_nb: segment cryo-electron tomograms with small per-feature networks, in Jupyter.

The public API is listed here and imported lazily, so ``import tomoseg_nb`` stays fast and does not
start Keras until a network is needed.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    # data
    "Volume": "volume",
    "open_volume": "volume",
    "write_volume": "volume",
    "create_volume": "volume",
    # errors
    "TomosegError": "errors",
    "BadInputError": "errors",
    "MissingInputError": "errors",
    "OutputExistsError": "errors",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module 'tomoseg_nb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
