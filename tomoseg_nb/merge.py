"""Competitive merging: turn one probability map per feature into a single labelled volume.

EMAN2's rule is the default: a constant "nothing" level (the threshold) competes with every
feature map and the highest wins, so label 0 is background and label ``k`` is the ``k``-th map.
Per-feature thresholds generalise it (a feature is a candidate only above its own threshold; the
most probable candidate wins). Ais's model interactions are options applied before the vote:
competition (an *absorbing* map is zeroed where an *emitting* map is higher) and context
(*colocalize*: keep a map only within a radius of a partner feature; *avoid*: only outside it).

Tomograms larger than memory are merged slab by slab from memory-mapped maps (`merge_files`),
with a z halo wide enough for the context radii, so the result equals the in-memory one.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from .atomic import check_output_path, write_json_atomic
from .errors import BadInputError, EmptyResultWarning, MissingInputError
from .maps import MapName, decode_probabilities
from .progress import ProgressCallback, progress_bar
from .volume import Volume, create_volume, open_volume

BACKGROUND = "background"
LABEL_MAP_FORMAT = "tomoseg_nb-labels"
LABEL_MAP_VERSION = 1
MAX_FEATURES = int(np.iinfo(np.uint8).max)
"""Labels are uint8 and 0 is the background."""

FeatureRef = int | str
Context = tuple[FeatureRef, FeatureRef, float]
"""``(target, partner, radius_angstrom)``: a feature name or map index, its partner, a radius."""


def compete(
    maps: Sequence[np.ndarray],
    *,
    emit: Sequence[int] = (),
    absorb: Sequence[int] = (),
) -> list[np.ndarray]:
    """Ais competition: zero an absorbing map wherever an emitting map is higher.

    Use it when one network over-calls at the edges of another's feature (e.g. a membrane network
    firing on the rim of a vesicle full of ribosomes): the absorbing map gives way to any emitter
    that is more confident, even where the emitter itself stays below its threshold.

    Parameters
    ----------
    maps : sequence of ndarray
        Probability maps of equal shape.
    emit, absorb : sequence of int
        Indices of the emitting and absorbing maps; a map may be both (it never absorbs itself).

    Returns
    -------
    list of ndarray
        Float32 copies of the maps, absorbers zeroed where beaten.
    """
    out = [np.array(m, dtype=np.float32, copy=True) for m in maps]
    for target in absorb:
        emitters = [maps[k] for k in emit if k != target]
        if not emitters:
            continue
        strongest = np.maximum.reduce([np.asarray(m, dtype=np.float32) for m in emitters])
        out[target][strongest > out[target]] = 0.0
    return out


def near_mask(mask: np.ndarray, radius_angstrom: float, voxel_size: float) -> np.ndarray:
    """Voxels within ``radius_angstrom`` (Euclidean, physical units) of any True voxel of ``mask``."""
    if not mask.any():
        return np.zeros(mask.shape, dtype=bool)
    if radius_angstrom <= 0:
        return mask.copy()
    distance = ndimage.distance_transform_edt(~mask, sampling=voxel_size)
    return distance <= radius_angstrom


def apply_context(
    maps: Sequence[np.ndarray],
    thresholds: Sequence[float],
    *,
    colocalize: Sequence[tuple[int, int, float]] = (),
    avoid: Sequence[tuple[int, int, float]] = (),
    voxel_size: float = 1.0,
) -> list[np.ndarray]:
    """Ais context rules: keep a feature only near (colocalize) or away from (avoid) a partner.

    The partner's mask is its map above its threshold, grown by a sphere of the given radius.
    Typical uses: membrane-bound particles colocalize with membrane; ribosomes avoid the nucleus.

    Parameters
    ----------
    maps : sequence of ndarray
        Probability maps of equal shape.
    thresholds : sequence of float
        Per-map thresholds defining each partner's mask.
    colocalize, avoid : sequence of (target, partner, radius_angstrom)
        Map indices and a radius in Angstrom.
    voxel_size : float
        Angstrom per voxel of the maps.
    """
    out = [np.asarray(m, dtype=np.float32) for m in maps]
    rules = [(t, p, r, True) for t, p, r in colocalize] + [(t, p, r, False) for t, p, r in avoid]
    # Partner masks come from the maps as given, so the rules do not depend on their order.
    partners = {p: np.asarray(maps[p]) > thresholds[p] for _, p, _, _ in rules}
    for target, partner, radius, keep_near in rules:
        near = near_mask(partners[partner], radius, voxel_size)
        out[target] = np.where(near if keep_near else ~near, out[target], np.float32(0.0))
    return out


def merge_competitive(
    maps: Sequence[np.ndarray],
    *,
    threshold: float | Sequence[float] = 0.8,
    names: Sequence[str] | None = None,
    emit: Sequence[FeatureRef] = (),
    absorb: Sequence[FeatureRef] = (),
    colocalize: Sequence[Context] = (),
    avoid: Sequence[Context] = (),
    voxel_size: float = 1.0,
) -> np.ndarray:
    """Label every voxel with the most probable feature, or 0 where no feature is confident.

    EMAN2's competitive merge: with one threshold ``t`` this is ``argmax([t, p1, p2, ...])``, so a
    voxel gets label ``k`` when map ``k`` is above ``t`` and above every other map, and 0 when no
    map exceeds ``t`` (ties go to 0, then to the lower index). With per-feature thresholds a map is
    a candidate only above its own threshold and the most probable candidate wins. Competition and
    context rules (Ais) are applied to the maps first.

    Parameters
    ----------
    maps : sequence of ndarray
        One probability map per feature, all the same shape (as stored: ``maps.decode_probabilities`` reads them).
    threshold : float or sequence of float
        The "nothing" level, one for all maps or one per map.
    names : sequence of str, optional
        Feature names, needed only to refer to maps by name in the rules below.
    emit, absorb : sequence of str or int
        Features that emit / absorb in the competition (see `compete`).
    colocalize, avoid : sequence of (target, partner, radius_angstrom)
        Context rules (see `apply_context`).
    voxel_size : float
        Angstrom per voxel, for the context radii.

    Returns
    -------
    ndarray of uint8
        Labels: 0 = nothing, ``k`` = the ``k``-th map (1-based).

    Examples
    --------
    >>> membrane = np.array([[0.9, 0.6, 0.1]])
    >>> ribosome = np.array([[0.85, 0.95, 0.2]])
    >>> merge_competitive([membrane, ribosome], threshold=0.8)
    array([[1, 2, 0]], dtype=uint8)
    """
    plan = MergePlan.build(
        [np.shape(m) for m in maps],
        threshold=threshold,
        names=names,
        emit=emit,
        absorb=absorb,
        colocalize=colocalize,
        avoid=avoid,
        voxel_size=voxel_size,
    )
    return plan.label([decode_probabilities(m) for m in maps])


@dataclass(frozen=True)
class MergePlan:
    """Validated merge settings with every feature reference resolved to a map index."""

    names: tuple[str, ...]
    thresholds: tuple[float, ...]
    emit: tuple[int, ...] = ()
    absorb: tuple[int, ...] = ()
    colocalize: tuple[tuple[int, int, float], ...] = ()
    avoid: tuple[tuple[int, int, float], ...] = ()
    voxel_size: float = 1.0

    @classmethod
    def build(
        cls,
        shapes: Sequence[tuple[int, ...]],
        *,
        threshold: float | Sequence[float],
        names: Sequence[str] | None,
        emit: Sequence[FeatureRef],
        absorb: Sequence[FeatureRef],
        colocalize: Sequence[Context],
        avoid: Sequence[Context],
        voxel_size: float,
    ) -> MergePlan:
        if len(shapes) == 0:
            raise BadInputError("merge needs at least one probability map")
        if len(shapes) > MAX_FEATURES:
            raise BadInputError(
                f"merge takes at most {MAX_FEATURES} maps (uint8 labels), got {len(shapes)}"
            )
        if len(set(shapes)) > 1:
            listing = ", ".join(str(tuple(s)) for s in shapes)
            raise BadInputError(
                f"probability maps differ in shape ({listing}); merge maps of the same tomogram "
                "made at the same binning"
            )
        names = (
            tuple(names)
            if names is not None
            else tuple(f"feature{k + 1}" for k in range(len(shapes)))
        )
        if len(names) != len(shapes):
            raise BadInputError(
                f"{len(names)} names given for {len(shapes)} maps; give one name per map"
            )
        if len(set(names)) != len(names) or BACKGROUND in names:
            raise BadInputError(
                f"feature names must be unique and not {BACKGROUND!r}, got {list(names)}"
            )
        thresholds = _thresholds(threshold, len(shapes))
        if not voxel_size > 0:
            raise BadInputError(f"voxel size must be positive, got {voxel_size}")

        def index(ref: FeatureRef) -> int:
            if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
                if 0 <= ref < len(names):
                    return int(ref)
            elif ref in names:
                return names.index(ref)
            raise BadInputError(
                f"unknown feature {ref!r} in a merge rule; the features are {list(names)}"
            )

        def rules(items: Sequence[Context], kind: str) -> tuple[tuple[int, int, float], ...]:
            resolved = []
            for item in items:
                if len(item) != 3:
                    raise BadInputError(
                        f"{kind} rule {item!r}: expected (target, partner, radius_angstrom)"
                    )
                target, partner, radius = index(item[0]), index(item[1]), float(item[2])
                if target == partner or not radius >= 0 or not math.isfinite(radius):
                    raise BadInputError(
                        f"{kind} rule {item!r}: target and partner must differ and the radius be >= 0 A"
                    )
                resolved.append((target, partner, radius))
            return tuple(resolved)

        return cls(
            names=names,
            thresholds=thresholds,
            emit=tuple(index(r) for r in emit),
            absorb=tuple(index(r) for r in absorb),
            colocalize=rules(colocalize, "colocalize"),
            avoid=rules(avoid, "avoid"),
            voxel_size=float(voxel_size),
        )

    @property
    def halo_voxels(self) -> int:
        """Slices of context a slab needs on each side so that context rules see every partner."""
        radii = [r for _, _, r in self.colocalize + self.avoid]
        return math.ceil(max(radii) / self.voxel_size) if radii else 0

    def label(self, maps: Sequence[np.ndarray]) -> np.ndarray:
        """Apply the rules and the vote to float maps (one slab or the whole volume)."""
        if self.absorb:
            maps = compete(maps, emit=self.emit, absorb=self.absorb)
        if self.colocalize or self.avoid:
            maps = apply_context(
                maps,
                self.thresholds,
                colocalize=self.colocalize,
                avoid=self.avoid,
                voxel_size=self.voxel_size,
            )
        labels = np.zeros(np.shape(maps[0]), dtype=np.uint8)
        best = np.full(np.shape(maps[0]), -np.inf, dtype=np.float32)
        for k, (probability, threshold) in enumerate(
            zip(maps, self.thresholds, strict=True), start=1
        ):
            # Strictly above: ties with the "nothing" level and with earlier maps keep the earlier.
            wins = (probability > threshold) & (probability > best)
            labels[wins] = k
            best = np.where(wins, probability, best)
        return labels


def _thresholds(threshold: float | Sequence[float], n: int) -> tuple[float, ...]:
    if isinstance(threshold, Sequence | np.ndarray) and not isinstance(threshold, str):
        values = [float(v) for v in threshold]
    else:
        values = [float(threshold)] * n
    if len(values) != n:
        raise BadInputError(
            f"{len(values)} thresholds given for {n} maps; give one, or one per map"
        )
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise BadInputError(
            f"thresholds are probabilities, finite and >= 0 (e.g. 0.8), got {values}"
        )
    return tuple(values)


@dataclass
class MergeResult:
    """What `merge_files` wrote: the label volume, its name map and how many voxels each label got."""

    labels_path: Path
    names_path: Path
    names: dict[int, str]
    voxel_counts: dict[str, int] = field(default_factory=dict)


def label_names_path(labels_path: str | os.PathLike) -> Path:
    """Where the name map of a label volume lives: ``LABELS.mrc`` -> ``LABELS.json``."""
    return Path(labels_path).with_suffix(".json")


def write_label_names(
    path: str | os.PathLike,
    names: Sequence[str],
    *,
    thresholds: Sequence[float] | None = None,
    sources: Sequence[str] | None = None,
    voxel_counts: dict[str, int] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the JSON name map of a label volume (label value -> feature name, plus provenance).

    The layout is ``{"format": "tomoseg_nb-labels", "format_version": 1, "labels": {"0":
    "background", "1": NAME, ...}, "thresholds": {NAME: T}, "sources": {NAME: PATH},
    "voxel_counts": {NAME: N}}``; only ``labels`` is required by readers.
    """
    document: dict[str, object] = {
        "format": LABEL_MAP_FORMAT,
        "format_version": LABEL_MAP_VERSION,
        "labels": {"0": BACKGROUND, **{str(k): n for k, n in enumerate(names, start=1)}},
    }
    if thresholds is not None:
        document["thresholds"] = dict(zip(names, (float(t) for t in thresholds), strict=True))
    if sources is not None:
        document["sources"] = dict(zip(names, sources, strict=True))
    if voxel_counts is not None:
        document["voxel_counts"] = voxel_counts
    return write_json_atomic(path, document, overwrite=overwrite)


def read_label_names(path: str | os.PathLike) -> dict[int, str]:
    """Read a name map written by `write_label_names`: ``{0: "background", 1: NAME, ...}``."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path}: no such label name map")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        labels = {int(k): str(v) for k, v in document["labels"].items()}
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        raise BadInputError(
            f"{path}: not a label name map ({error}); expected JSON with a 'labels' object"
        ) from error
    return labels


def merge_files(
    paths: Sequence[str | os.PathLike],
    out_path: str | os.PathLike,
    *,
    threshold: float | Sequence[float] = 0.8,
    names: Sequence[str] | None = None,
    emit: Sequence[FeatureRef] = (),
    absorb: Sequence[FeatureRef] = (),
    colocalize: Sequence[Context] = (),
    avoid: Sequence[Context] = (),
    slab_size: int = 16,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> MergeResult:
    """Merge probability-map files into a label MRC and its JSON name map, slab by slab.

    Only ``slab_size`` slices (plus the halo that context radii need) of each map are in memory at
    a time, so whole tomograms merge on a laptop. The output keeps the maps' voxel size and origin.

    Parameters
    ----------
    paths : sequence of path-like
        Probability maps of one tomogram (MRC, TIFF, OME-Zarr), same shape and voxel size.
    out_path : path-like
        Label volume to write (``.mrc``); the name map goes next to it as ``.json``.
    threshold, emit, absorb, colocalize, avoid
        As in `merge_competitive`.
    names : sequence of str, optional
        Feature names; default from the file names (``TS_01__ribosome.mrc`` -> ``ribosome``).
    slab_size : int
        Slices merged per step.
    overwrite : bool
        Replace existing outputs.
    progress : callable, optional
        ``callback(done, total)`` in slices.

    Warns
    -----
    EmptyResultWarning
        No voxel passed its threshold; the all-background volume is still written.
    """
    if not paths:
        raise BadInputError("merge needs at least one probability map")
    out_path = check_output_path(out_path, overwrite)
    names_path = check_output_path(label_names_path(out_path), overwrite)
    if slab_size < 1:
        raise BadInputError(f"slab size must be at least 1, got {slab_size}")
    volumes: list[Volume] = []
    try:
        for path in paths:
            volumes.append(open_volume(path, ndim=3))
        _check_same_frame(volumes)
        names = list(names) if names is not None else [MapName.parse(p).feature for p in paths]
        plan = MergePlan.build(
            [v.shape for v in volumes],
            threshold=threshold,
            names=names,
            emit=emit,
            absorb=absorb,
            colocalize=colocalize,
            avoid=avoid,
            voxel_size=volumes[0].voxel_size,
        )
        shape = volumes[0].shape
        counts = np.zeros(len(plan.names) + 1, dtype=np.int64)
        halo = plan.halo_voxels
        with (
            create_volume(
                out_path,
                shape,
                np.uint8,
                voxel_size=volumes[0].voxel_size,
                origin=volumes[0].origin,
                overwrite=overwrite,
            ) as out,
            progress_bar(
                shape[0], f"merging {', '.join(names)}", progress, unit="slice"
            ) as advance,
        ):
            for z0 in range(0, shape[0], slab_size):
                z1 = min(shape[0], z0 + slab_size)
                lo, hi = max(0, z0 - halo), min(shape[0], z1 + halo)
                maps = [_slab_probability(v, lo, hi) for v in volumes]
                labels = plan.label(maps)[z0 - lo : z1 - lo]
                out[z0:z1] = labels
                counts += np.bincount(labels.ravel(), minlength=counts.size)
                advance(z1 - z0)
            voxel_counts = {
                n: int(c) for n, c in zip((BACKGROUND, *plan.names), counts, strict=True)
            }
            if counts[1:].sum() == 0:
                warnings.warn(_nothing_message(plan), EmptyResultWarning, stacklevel=2)
            write_label_names(
                names_path,
                plan.names,
                thresholds=plan.thresholds,
                sources=[str(Path(p)) for p in paths],
                voxel_counts=voxel_counts,
                overwrite=overwrite,
            )
    finally:
        for volume in volumes:
            volume.close()
    return MergeResult(
        labels_path=Path(out_path),
        names_path=names_path,
        names={0: BACKGROUND, **{k: n for k, n in enumerate(plan.names, start=1)}},
        voxel_counts=voxel_counts,
    )


def _slab_probability(volume: Volume, start: int, stop: int) -> np.ndarray:
    if np.issubdtype(volume.data.dtype, np.integer):
        return decode_probabilities(np.asarray(volume.data[start:stop]))
    return volume.slab(start, stop)


def _check_same_frame(volumes: Sequence[Volume]) -> None:
    first = volumes[0]
    for other in volumes[1:]:
        if other.shape != first.shape:
            raise BadInputError(
                f"{other.path}: shape {other.shape} differs from {first.path} {first.shape}; "
                "merge maps of the same tomogram made at the same binning"
            )
        if not math.isclose(other.voxel_size, first.voxel_size, rel_tol=1e-3):
            raise BadInputError(
                f"{other.path}: voxel size {other.voxel_size:g} A differs from {first.path} "
                f"{first.voxel_size:g} A; merge maps made at the same voxel size"
            )


def _nothing_message(plan: MergePlan) -> str:
    return (
        f"no voxel of {', '.join(plan.names)} is above its threshold "
        f"({', '.join(f'{t:g}' for t in plan.thresholds)}); the label volume is all background. "
        "Lower the threshold, or check that the maps are probabilities (float in 0-1, or 8-bit as segment --dtype uint8 writes them)"
    )
