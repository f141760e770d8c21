"""Where to annotate next: rank candidate tiles by how unsure the trained networks are there.

After a training the whole probability map is at hand, so instead of leaving the person to guess
where the network is wrong, the places where it is least sure are offered as the next tiles. The
score of a tile is the mean, over its pixels, of

- **uncertainty** of the feature's probability ``p`` against its threshold ``t``: 1 where the
  network sits on the threshold, falling linearly to 0 where it is certain (``p`` = 0 or 1);
- plus **disagreement**: 1 where this feature and another feature's network both claim the pixel
  (both at or above their thresholds); a voxel holds one feature, so one of them is wrong there.

So a pixel's score lies in [0, 2]; a tile's is the power mean of its pixels' scores,
``(mean(score ** power)) ** (1 / power)``. ``power`` 1 is the plain mean (the default, the one
measured); a larger power lets the few unsure pixels of a thin feature (a membrane or a
microtubule wall covers a few per cent of a tile) outweigh a tile of faint haze, which the plain
mean ranks first. Candidates are tiles on a ``step_px`` grid of every slice, wholly inside
the slice with ``margin_px`` to spare (a network's answer near the slice edge is padded guesswork,
uncertain for the wrong reason). Within ``min_z_distance`` slices, the chosen tiles never overlap
each other in ``(y, x)`` (one round's tiles are distinct places, not one unsure blob offered
several times), and none shares more than ``MAX_SHARED_FRACTION`` of its pixels with a tile
already annotated (so most of what the person paints is new). Against the annotated tiles any
overlap at all used to count: the protocol's 110 tiles then blocked every candidate of a 48 x 256
x 256 benchmark phantom, and correction rounds there added few tiles or none. ``random_tiles``
applies the same rules with a random score: the control that measures what the score buys.

Plain functions on ``(z, y, x)`` arrays; tile centres follow ``annotations.tile_bounds``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .errors import BadInputError

MARGIN_PX = 16
"""Default distance a suggested tile keeps from the slice edge."""
MIN_Z_DISTANCE = 8
"""Default number of slices within which tiles are kept apart (see the module docstring)."""
STEP_PX = 8
"""Default spacing of candidate tile centres; finer gains little but time."""
MAX_SHARED_FRACTION = 0.5
"""A tile sharing more than this fraction of its pixels with an annotated one within
``MIN_Z_DISTANCE`` slices is not suggested: under half of it would be new labelled pixels."""
TILE_SCORE_POWER = 1.0
"""Default power of the tile score's power mean: the plain mean, the one the rounds measured."""
ROUND_SELECTIONS = ("suggested", "random", "mixed")
"""How a correction round of the simulated annotator chooses its tiles
(``evaluate.correction_round``): ``suggest_tiles``, ``random_tiles`` (the control), or half of
each."""


@dataclass(frozen=True)
class Suggestion:
    """A tile to annotate next: its centre, its score and what made it stand out."""

    z: int
    y: int
    x: int
    score: float
    reason: str


def uncertainty(probability: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """1 on the threshold ``t``, falling linearly to 0 at 0 and at 1 (``1 - (t - p) / t`` below it).

    >>> uncertainty(np.array([0.0, 0.5, 1.0])).tolist()
    [0.0, 1.0, 0.0]
    """
    _check_threshold(threshold)
    probability = np.asarray(probability, dtype=np.float32)
    below = 1.0 - (threshold - probability) / threshold
    above = 1.0 - (probability - threshold) / (1.0 - threshold)
    return np.where(probability < threshold, below, above).astype(np.float32)


def disagreement(
    probability: np.ndarray,
    others: Mapping[str, np.ndarray],
    *,
    threshold: float = 0.5,
    other_thresholds: Mapping[str, float] | None = None,
) -> np.ndarray:
    """1 where this map and at least one of ``others`` are both at or above their thresholds.

    >>> mine, theirs = np.array([0.9, 0.9, 0.1]), np.array([0.8, 0.2, 0.8])
    >>> disagreement(mine, {"ribosome": theirs}).tolist()
    [1.0, 0.0, 0.0]
    """
    claimed = np.asarray(probability) >= threshold
    other_claims = np.zeros(claimed.shape, bool)
    for name, other in others.items():
        other = np.asarray(other)
        if other.shape != claimed.shape:
            raise BadInputError(
                f"the map of {name!r} has shape {other.shape}, this feature's {claimed.shape}"
            )
        other_claims |= other >= _other_threshold(name, threshold, other_thresholds)
    return (claimed & other_claims).astype(np.float32)


def suggest_tiles(
    probability: np.ndarray,
    *,
    k: int = 5,
    tile_size: int = 64,
    threshold: float = 0.5,
    others: Mapping[str, np.ndarray] | None = None,
    other_thresholds: Mapping[str, float] | None = None,
    exclude: Iterable[tuple[int, int, int]] = (),
    margin_px: int = MARGIN_PX,
    min_z_distance: int = MIN_Z_DISTANCE,
    step_px: int = STEP_PX,
    power: float = TILE_SCORE_POWER,
) -> list[Suggestion]:
    """The ``k`` best tiles to annotate next for one feature, best first (see the module docstring).

    Parameters
    ----------
    probability : ndarray
        ``(z, y, x)`` probability map of the feature, in [0, 1].
    k, tile_size : int
        How many tiles, and their size in pixels.
    threshold : float
        The feature's threshold (the model's ``info.threshold``).
    others, other_thresholds : mapping, optional
        Other features' maps of the same shape, and their thresholds (default ``threshold``), for
        the disagreement term.
    exclude : iterable of (z, y, x)
        Centres of the tiles already annotated for this feature (``tile_size`` px).
    margin_px, min_z_distance, step_px : int
        Edge margin, slices within which tiles are kept apart (see the module docstring),
        candidate spacing.
    power : float
        Power of the mean that turns pixel scores into a tile score (>= 1; see the module
        docstring).

    Returns
    -------
    list of Suggestion
        Fewer than ``k`` when no more tiles fit.

    Examples
    --------
    >>> probability = np.zeros((4, 128, 128), np.float32)
    >>> probability[2, 70:90, 40:60] = 0.5  # the network is unsure here
    >>> best = suggest_tiles(probability, k=1, tile_size=32, margin_px=8)[0]
    >>> (best.z, best.y, best.x, best.reason)
    (2, 80, 48, 'uncertain')
    """
    probability = _check_map(probability, "probability")
    unsure = uncertainty(probability, threshold)
    claimed = disagreement(
        probability, others or {}, threshold=threshold, other_thresholds=other_thresholds
    )
    centres, scores = _tile_scores(unsure + claimed, tile_size, margin_px, step_px, power)
    chosen = _spread(centres, scores, k, tile_size, exclude, min_z_distance)
    suggestions = []
    for index in chosen:
        z, y, x = (int(v) for v in centres[index])
        box = (z, slice(y - tile_size // 2, y - tile_size // 2 + tile_size),
               slice(x - tile_size // 2, x - tile_size // 2 + tile_size))  # fmt: skip
        reason = "uncertain"
        if claimed[box].mean() > unsure[box].mean():
            mine = probability[box] >= threshold
            rivals = [
                name
                for name, other in (others or {}).items()
                if (
                    mine
                    & (
                        np.asarray(other)[box]
                        >= _other_threshold(name, threshold, other_thresholds)
                    )
                ).any()
            ]
            reason = "also claimed by " + ", ".join(rivals)
        suggestions.append(Suggestion(z, y, x, float(scores[index]), reason))
    return suggestions


def random_tiles(
    shape: tuple[int, ...],
    *,
    k: int = 5,
    tile_size: int = 64,
    exclude: Iterable[tuple[int, int, int]] = (),
    margin_px: int = MARGIN_PX,
    min_z_distance: int = MIN_Z_DISTANCE,
    step_px: int = STEP_PX,
    seed: int = 0,
) -> list[Suggestion]:
    """``k`` random tiles under ``suggest_tiles``' rules (edge, overlap, spread): its control.

    >>> tiles = random_tiles((8, 128, 128), k=3, tile_size=32, seed=1)
    >>> len(tiles), {t.reason for t in tiles}
    (3, {'random'})
    """
    if len(shape) != 3:
        raise BadInputError(f"a tomogram shape is (z, y, x), got {shape}")
    rng = np.random.default_rng(seed)
    centres = _grid(shape, tile_size, margin_px, step_px)
    scores = rng.random(len(centres))
    chosen = _spread(centres, scores, k, tile_size, exclude, min_z_distance)
    return [
        Suggestion(int(centres[i][0]), int(centres[i][1]), int(centres[i][2]), 0.0, "random")
        for i in chosen
    ]


def _grid(shape: tuple[int, ...], tile_size: int, margin_px: int, step_px: int) -> np.ndarray:
    """``(N, 3)`` candidate centres: every slice, tiles inside the slice with the margin to spare."""
    if tile_size < 1 or step_px < 1 or margin_px < 0:
        raise BadInputError(
            f"tile_size and step_px must be >= 1 and margin_px >= 0, got {tile_size}, "
            f"{step_px}, {margin_px}"
        )
    axes = []
    for length in shape[1:]:
        low = margin_px + tile_size // 2
        high = length - margin_px - tile_size + tile_size // 2
        if high < low:
            raise BadInputError(
                f"a {tile_size} px tile with a {margin_px} px margin does not fit in a slice of "
                f"{tuple(shape[1:])} px; use smaller tiles or margin"
            )
        axes.append(np.arange(low, high + 1, step_px))
    z, y, x = np.meshgrid(np.arange(shape[0]), *axes, indexing="ij")
    return np.stack([z.ravel(), y.ravel(), x.ravel()], axis=1)


def _tile_scores(
    pixel_scores: np.ndarray, tile_size: int, margin_px: int, step_px: int, power: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate centres and the power mean of the pixel scores over each candidate's tile."""
    if not np.isfinite(power) or power < 1:
        raise BadInputError(f"the tile score's power must be a number >= 1, got {power!r}")
    centres = _grid(pixel_scores.shape, tile_size, margin_px, step_px)
    # scipy centres an even window of size s on [i - s//2, i + s//2 - 1]: the tile convention.
    means = ndimage.uniform_filter(
        pixel_scores**power if power != 1 else pixel_scores,
        size=(1, tile_size, tile_size),
        mode="constant",
    )
    picked = np.clip(means[centres[:, 0], centres[:, 1], centres[:, 2]], 0.0, None)
    return centres, picked.astype(np.float64) ** (1.0 / power)


def _spread(
    centres: np.ndarray,
    scores: np.ndarray,
    k: int,
    tile_size: int,
    exclude: Iterable[tuple[int, int, int]],
    min_z_distance: int,
) -> list[int]:
    """Indices of the best-scoring centres, greedily: within ``min_z_distance`` slices, none
    overlapping another, none sharing more than ``MAX_SHARED_FRACTION`` of its pixels with
    ``exclude``."""
    if k < 0 or min_z_distance < 1:
        raise BadInputError(f"k must be >= 0 and min_z_distance >= 1, got {k}, {min_z_distance}")
    available = np.ones(len(centres), bool)

    def block(z: int, y: int, x: int, most_shared: float) -> None:
        shared_y = np.clip(tile_size - np.abs(centres[:, 1] - y), 0, None)
        shared_x = np.clip(tile_size - np.abs(centres[:, 2] - x), 0, None)
        near = (np.abs(centres[:, 0] - z) < min_z_distance) & (
            shared_y * shared_x > most_shared * tile_size**2
        )
        available[near] = False

    for z, y, x in exclude:
        block(int(z), int(y), int(x), MAX_SHARED_FRACTION)
    chosen: list[int] = []
    for index in np.argsort(-scores, kind="stable"):
        if len(chosen) == k:
            break
        if available[index]:
            chosen.append(int(index))
            z, y, x = (int(v) for v in centres[index])
            block(z, y, x, most_shared=0.0)
    return chosen


def _check_map(probability: np.ndarray, name: str) -> np.ndarray:
    probability = np.asarray(probability, dtype=np.float32)
    if probability.ndim != 3:
        raise BadInputError(f"{name} must be a (z, y, x) map, got shape {probability.shape}")
    return probability


def _check_threshold(threshold: float) -> None:
    if not 0 < threshold < 1:
        raise BadInputError(f"threshold must be a probability in (0, 1), got {threshold!r}")


def _other_threshold(
    name: str, threshold: float, other_thresholds: Mapping[str, float] | None
) -> float:
    return (other_thresholds or {}).get(name, threshold)
