"""Phantom tomograms and micrographs with ground truth, for tutorials, tests and benchmarks.

Imported lazily so that ``import tomoseg_nb.synthetic`` costs nothing until a phantom is built.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "LABEL_IDS": "tomogram",
    "TomogramPhantom": "tomogram",
    "simulate_tomogram": "tomogram",
    "write_tomogram_phantom": "tomogram",
    "MicrographPhantom": "micrograph",
    "simulate_micrograph": "micrograph",
    "write_micrograph_phantom": "micrograph",
    "DENSITY_NAMES": "densities",
    "DENSITY_VOXEL_SIZE": "densities",
    "load_density": "densities",
    "resample_density": "densities",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module 'tomoseg_nb.synthetic' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
