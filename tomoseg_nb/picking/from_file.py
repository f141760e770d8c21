"""Picks from a probability-map file, in the frame and with the names of its tomogram.

The one place that turns a map on disk into picks a next tool can use: it reads the map's voxel
size and origin, finds the tomogram the picks refer to (``--tomogram``, or the ``<tomogram>__<feature>``
name ``segment`` gave the map), derives the binning from the two voxel sizes, checks the particle
rules against the map before reading its voxels, and picks. ``tomoseg-nb pick`` and the widgets'
pick panel both call it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..coords import Picks
from ..errors import BadInputError
from ..maps import MapName, decode_probabilities
from ..volume import open_volume
from .filaments import pick_filaments
from .frame import SourceFrame
from .particles import (
    MIN_MASS,
    MODES,
    ParticleCandidates,
    diameter_rules,
    find_particle_candidates,
)

FILAMENT_MODE = "filament"
PICK_MODES = (*MODES, FILAMENT_MODE)
MIN_DIAMETER_VOXELS = 3.0
"""A particle narrower than this many map voxels cannot be told from noise (or was typed in nm)."""


@dataclass(frozen=True)
class LocatedMap:
    """A probability-map file, where its voxels sit in its tomogram, and the names picks carry.

    ``tomogram`` is "" when neither the caller nor the file name says which tomogram it is.
    """

    path: Path
    frame: SourceFrame
    tomogram: str
    feature: str

    @property
    def voxel_size(self) -> float:
        """Angstrom per map voxel."""
        return self.frame.voxel_size


def locate_map(
    path: str | os.PathLike,
    *,
    tomogram: str | os.PathLike | None = None,
    binning: float | None = None,
    voxel_size: float | None = None,
    tomogram_name: str | None = None,
    feature: str | None = None,
) -> LocatedMap:
    """Read the headers of a map (and of its tomogram) and place the map in the tomogram's frame.

    Parameters
    ----------
    path : path
        The probability map of one feature.
    tomogram : path, optional
        The tomogram the picks refer to: its shape, origin and name are used, and the binning is
        the ratio of voxel sizes.
    binning : float, optional
        Tomogram voxels per map voxel; default from ``tomogram``, else 1.
    voxel_size : float, optional
        Angstrom per map voxel, overriding the file's.
    tomogram_name, feature : str, optional
        Names in the output; default from ``tomogram`` or the map's ``<tomogram>__<feature>`` name.
    """
    with open_volume(path, ndim=3, voxel_size=voxel_size) as volume:
        shape, map_voxel_size, origin, map_path = (
            volume.shape,
            volume.voxel_size,
            volume.origin,
            volume.path,
        )
    named = MapName.parse(map_path if map_path is not None else path)
    source_shape = None
    source_name = named.tomogram or ""
    if tomogram is not None:
        with open_volume(tomogram, ndim=3) as source:
            source_shape, origin, source_name = source.shape, source.origin, source.name
            if binning is None:
                binning = map_voxel_size / source.voxel_size
    frame = SourceFrame(
        shape, map_voxel_size, 1.0 if binning is None else binning, origin, source_shape
    )
    return LocatedMap(
        Path(map_path if map_path is not None else path),
        frame,
        tomogram_name or source_name,
        feature or named.feature,
    )


@dataclass(frozen=True)
class MapPicks:
    """Picks from a map file, a one-line summary, and (particle modes) every candidate judged."""

    picks: Picks
    summary: str
    candidates: ParticleCandidates | None = None


def check_diameter(diameter_angstrom: float, located: LocatedMap) -> None:
    """Refuse a particle diameter the map cannot hold, naming both units (a typed nm is common)."""
    if not diameter_angstrom > 0 or not np.isfinite(diameter_angstrom):
        raise BadInputError(
            f"particle diameter must be a positive number of Angstrom, got {diameter_angstrom}"
        )
    voxels = diameter_angstrom / located.voxel_size
    largest = max(located.frame.map_shape)
    if voxels < MIN_DIAMETER_VOXELS:
        raise BadInputError(
            f"particle diameter {diameter_angstrom:g} Angstrom is {voxels:.2g} voxels of "
            f"{located.voxel_size:g} Angstrom in {located.path.name}, below "
            f"{MIN_DIAMETER_VOXELS:g}; give the diameter in Angstrom (a ribosome is about 250, "
            "not 25 nm)"
        )
    if voxels > largest / 2:
        raise BadInputError(
            f"particle diameter {diameter_angstrom:g} Angstrom is {voxels:.0f} voxels of "
            f"{located.voxel_size:g} Angstrom, more than half of {located.path.name} "
            f"({largest} voxels); give the diameter in Angstrom"
        )


def pick_map_file(
    map_file: LocatedMap | str | os.PathLike,
    *,
    threshold: float,
    mode: str = "peak",
    min_distance_px: float | None = None,
    diameter_angstrom: float | None = None,
    min_mass: float = MIN_MASS,
    min_size_voxels: float | None = None,
    max_size_voxels: float | None = None,
    min_size_angstrom3: float | None = None,
    max_size_angstrom3: float | None = None,
    edge_px: float = 0.0,
    spacing_angstrom: float | None = None,
    filament_radius_angstrom: float | None = None,
    prune_length_angstrom: float | None = None,
    min_length_angstrom: float | None = None,
) -> MapPicks:
    """Pick particles (``mode`` peak, centroid or distance) or filament points from a map file.

    ``map_file`` is a path (placed with ``locate_map``'s defaults) or a ``LocatedMap``. Picks are
    in voxels of the source tomogram. A ``diameter_angstrom`` fills ``min_distance_px`` and the
    minimum volume where not given (``diameter_rules``). Every argument is checked before the map's
    voxels are read.
    """
    located = map_file if isinstance(map_file, LocatedMap) else locate_map(map_file)
    if mode not in PICK_MODES:
        raise BadInputError(f"unknown mode {mode!r}; choose one of {', '.join(PICK_MODES)}")
    if not np.isfinite(threshold):
        raise BadInputError(f"threshold must be a finite number, got {threshold}")
    if mode == FILAMENT_MODE and spacing_angstrom is None:
        raise BadInputError(
            "filament mode needs a spacing (--spacing, spacing_angstrom=: Angstrom between "
            "points, e.g. 82)"
        )
    if mode != FILAMENT_MODE:
        if diameter_angstrom is not None:
            check_diameter(diameter_angstrom, located)
            rules = diameter_rules(diameter_angstrom, located.voxel_size)
            if min_distance_px is None:
                min_distance_px = rules["min_distance_px"]
            if min_size_angstrom3 is None and min_size_voxels is None:
                min_size_angstrom3 = rules["min_size_angstrom3"]
        if min_distance_px is None:
            raise BadInputError(
                "particle picking needs a minimum distance (--min-distance, min_distance_px=: map "
                "voxels, about a particle radius) or a diameter (--diameter, diameter_angstrom=: "
                "Angstrom)"
            )
    with open_volume(located.path, ndim=3) as volume:
        probability = decode_probabilities(volume.data[...])
    frame = located.frame
    if mode == FILAMENT_MODE:
        assert spacing_angstrom is not None  # checked above
        picks = pick_filaments(
            probability,
            threshold=threshold,
            spacing_angstrom=spacing_angstrom,
            voxel_size=frame.voxel_size,
            binning=frame.binning,
            origin=frame.origin,
            source_shape=frame.source_shape,
            edge_px=edge_px,
            radius_angstrom=filament_radius_angstrom,
            prune_length_angstrom=prune_length_angstrom,
            min_length_angstrom=min_length_angstrom,
            tomogram=located.tomogram,
            feature=located.feature,
        )
        return MapPicks(picks, f"{len(picks)} filament points")
    assert min_distance_px is not None  # checked above
    candidates = find_particle_candidates(
        probability,
        threshold=threshold,
        min_distance_px=min_distance_px,
        mode=mode,
        min_mass=min_mass,
        min_size_voxels=min_size_voxels,
        max_size_voxels=max_size_voxels,
        min_size_angstrom3=min_size_angstrom3,
        max_size_angstrom3=max_size_angstrom3,
        voxel_size=frame.voxel_size,
        edge_px=edge_px,
    )
    picks = candidates.to_picks(frame, tomogram=located.tomogram, feature=located.feature)
    reasons, counts = np.unique(candidates.dropped[~candidates.kept], return_counts=True)
    dropped = ", ".join(f"{n} by {r}" for r, n in zip(reasons, counts, strict=True))
    summary = f"{len(picks)} particles from {len(candidates)} candidates" + (
        f" (dropped {dropped})" if dropped else ""
    )
    return MapPicks(picks, summary, candidates)
