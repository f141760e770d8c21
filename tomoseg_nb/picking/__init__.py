"""Particle and filament picking from a feature's probability map, in the source tomogram's frame.

`pick_map_file` picks from a map file in its tomogram's frame (the CLI and widgets use it);
`pick_particles` (one pick per blob, EMAN2 rules by default, or touching particles split by the
distance transform) and `pick_filaments` (points along traced axes with orientations) return
`tomoseg_nb.coords.Picks`; `scoring` measures picks against phantom truth.
"""

from .filaments import Filament, pick_filaments, trace_filaments
from .frame import SourceFrame, direction_from_euler, euler_from_direction
from .from_file import PICK_MODES, LocatedMap, MapPicks, check_diameter, locate_map, pick_map_file
from .particles import (
    MODES,
    ParticleCandidates,
    diameter_rules,
    find_particle_candidates,
    pick_particles,
)
from .scoring import FilamentScore, score_filaments, score_particles

__all__ = [
    "MODES",
    "PICK_MODES",
    "Filament",
    "FilamentScore",
    "LocatedMap",
    "MapPicks",
    "ParticleCandidates",
    "SourceFrame",
    "check_diameter",
    "diameter_rules",
    "direction_from_euler",
    "euler_from_direction",
    "find_particle_candidates",
    "locate_map",
    "pick_filaments",
    "pick_map_file",
    "pick_particles",
    "score_filaments",
    "score_particles",
    "trace_filaments",
]
