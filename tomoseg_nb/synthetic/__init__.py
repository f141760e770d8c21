"""Phantom tomograms and micrographs with ground truth, for tutorials, tests and benchmarks.

Imported lazily so that ``import tomoseg_nb.synthetic`` costs nothing until a phantom is built.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_PUBLIC = {
    "LABEL_IDS": "tomogram",
    "TomogramPhantom": "tomogram",
    "simulate_tomogram": "tomogram",
    "write_tomogram_phantom": "tomogram",
    "CellContent": "tomogram",
    "PhantomSpec": "suite",
    "DEVELOPMENT": "suite",
    "HELD_BACK": "suite",
    "MicrographPhantom": "micrograph",
    "simulate_micrograph": "micrograph",
    "write_micrograph_phantom": "micrograph",
    "DENSITY_NAMES": "densities",
    "DENSITY_VOXEL_SIZE": "densities",
    "load_density": "densities",
    "resample_density": "densities",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _PUBLIC)
