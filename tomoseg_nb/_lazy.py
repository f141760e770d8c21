"""Lazy public names for packages: ``import tomoseg_nb`` must not start Keras or TensorFlow."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, public: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for a package whose public names live in submodules.

    ``public`` maps each name to the submodule (relative to ``package``) that defines it; the
    submodule is imported the first time the name is used.
    """
    names = sorted(public)

    def __getattr__(name: str) -> Any:
        if name in public:
            return getattr(importlib.import_module(f".{public[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__, names
