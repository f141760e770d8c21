"""Segment many tomograms with Dask: plan work units, skip recorded ones, assemble the outputs.

Per tomogram and network, the client pre-allocates the output as a hidden MRC beside its final name
(``DIR/.<tomogram>__<feature>.partial.mrc``) with the tomogram's shape, voxel size and origin. Workers
write their slabs into it; the client records each finished unit in the tomogram's manifest and, when
the last unit is in, sets the header statistics and renames the file into place. An interrupted run
leaves the partial files and the manifest, and the same call resumes from them.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np

from ..atomic import check_output_path
from ..errors import BadInputError, CancelledError
from ..maps import check_stored_dtype, map_path
from ..progress import ProgressCallback, progress_bar
from ..segment import as_networks
from ..volume import create_volume, finish_mrc_header, open_volume
from .manifest import Manifest, as_json, manifest_path
from .units import (
    ModelFile,
    WorkUnit,
    cached_network,
    file_stamp,
    model_fingerprint,
    plan_units,
    run_unit,
)

POLL_SECONDS = 0.1  # how often a waiting client looks for finished units and its cancel event
MANIFEST_INTERVAL_SECONDS = 1.0  # most frequent manifest rewrite while units stream in


@dataclass
class SegmentationRun:
    """What ``segment_volumes`` did.

    Attributes
    ----------
    outputs : list of list of Path
        Per tomogram, its probability maps in the order of the models.
    manifests : list of Path
        Per tomogram, the manifest with per-unit timing.
    units_total, units_computed, units_skipped : int
        Work units of the run; skipped ones were recorded as done by an earlier run.
    seconds : float
        Wall time of the call.
    """

    outputs: list[list[Path]]
    manifests: list[Path]
    units_total: int
    units_computed: int
    units_skipped: int
    seconds: float


def partial_path(final: Path) -> Path:
    """Hidden sibling that holds an output while its units are written (fixed name, for resuming)."""
    return final.with_name(f".{final.stem}.partial{final.suffix}")


@dataclass
class _Tomogram:
    """One tomogram's share of the run: its outputs, manifest and units."""

    path: Path
    name: str
    shape: tuple[int, ...]
    voxel_size: float
    origin: tuple[float, float, float]
    finals: list[Path]
    manifest: Manifest
    units: list[WorkUnit]
    fresh: bool = False
    saved_at: float = 0.0
    dirty: bool = False
    remaining: set[str] = field(default_factory=set)

    @property
    def partials(self) -> list[Path]:
        return [partial_path(final) for final in self.finals]

    def start(self, dtype: str) -> list[WorkUnit]:
        """Create the partial outputs of a fresh start; return the units still to compute."""
        if self.fresh:
            self.manifest.save()  # forget old units before the files they describe are replaced
            for partial in self.partials:
                with create_volume(
                    partial,
                    self.shape,
                    np.dtype(dtype),
                    voxel_size=self.voxel_size,
                    origin=self.origin,
                    overwrite=True,
                ):
                    pass
        todo = [unit for unit in self.units if unit.id not in self.manifest.units]
        self.remaining = {unit.id for unit in todo}
        if not todo and not self.manifest.complete:  # interrupted while moving outputs into place
            self.finish()
        return todo

    def record(self, unit: WorkUnit, result: dict) -> None:
        self.manifest.units[unit.id] = result
        self.remaining.discard(unit.id)
        self.dirty = True
        if not self.remaining:
            self.finish()
        elif time.monotonic() - self.saved_at > MANIFEST_INTERVAL_SECONDS:
            self.save()

    def save(self) -> None:
        if self.dirty:
            self.manifest.save()
            self.saved_at = time.monotonic()
            self.dirty = False

    def finish(self) -> None:
        """Set header statistics and move every partial output into place."""
        for partial, final in zip(self.partials, self.finals, strict=True):
            if not partial.exists():  # moved already by a run interrupted while finishing
                continue
            with mrcfile.mmap(partial, mode="r+") as mrc:
                finish_mrc_header(mrc)
            os.replace(partial, final)
        self.manifest.complete = True
        self.dirty = True
        self.save()


def _partial_fits(partial: Path, shape: tuple[int, ...]) -> bool:
    try:
        with mrcfile.open(partial, mode="r", header_only=True) as mrc:
            header = mrc.header
            return (int(header.nz), int(header.ny), int(header.nx)) == tuple(shape)
    except (ValueError, OSError):
        return False


def _plan_tomogram(
    path: Path,
    out_dir: Path,
    models: tuple[ModelFile, ...],
    layout: dict[str, Any],
    overwrite: bool,
) -> _Tomogram:
    """Decide, without writing anything, whether a tomogram is done, resumable or to start over."""
    with open_volume(path, ndim=3) as volume:
        name, shape, voxel_size, origin = (
            volume.name,
            volume.shape,
            volume.voxel_size,
            volume.origin,
        )
    finals = [map_path(out_dir, name, model.feature) for model in models]
    partials = [partial_path(final) for final in finals]
    units = plan_units(str(path), shape[0], models, tuple(map(str, partials)), **layout)
    signature = as_json(
        {
            "tomogram": {"path": str(path), "stamp": file_stamp(path), "shape": shape},
            "models": [
                {"path": m.path, "feature": m.feature, "stamp": m.fingerprint} for m in models
            ],
            **layout,
        }
    )
    manifest = Manifest.load(manifest_path(out_dir, name))
    keep = False
    if manifest is not None and manifest.signature == signature:
        if manifest.complete:
            keep = all(final.exists() for final in finals) and not overwrite
        else:
            keep = _resumable(manifest, units, partials, finals, shape, overwrite)
    elif manifest is not None and not manifest.complete:
        warnings.warn(
            f"{manifest.path}: the tomogram or a model changed since this unfinished run; "
            f"segmenting {name} from the start",
            stacklevel=3,
        )
    if manifest is None or not keep:  # keep implies a manifest
        for final in finals:
            check_output_path(final, overwrite)
        manifest = Manifest(
            manifest_path(out_dir, name),
            signature,
            outputs={m.feature: f.name for m, f in zip(models, finals, strict=True)},
            total_units=len(units),
        )
    return _Tomogram(path, name, shape, voxel_size, origin, finals, manifest, units, fresh=not keep)


def _resumable(
    manifest: Manifest,
    units: list[WorkUnit],
    partials: list[Path],
    finals: list[Path],
    shape: tuple[int, ...],
    overwrite: bool,
) -> bool:
    """Whether an unfinished run's partial outputs can be completed (all there, right shape)."""
    all_done = all(unit.id in manifest.units for unit in units)
    for partial, final in zip(partials, finals, strict=True):
        if partial.exists():
            if not _partial_fits(partial, shape):
                return False
            check_output_path(final, overwrite)
        elif not (all_done and final.exists()):  # moved into place by a run cut short
            return False
    return True


def segment_volumes(
    models: Sequence[str | os.PathLike],
    tomograms: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    client: Any = None,
    engine: str = "auto",
    dtype: str = "float32",
    slab_size: int = 4,
    unit_slices: int = 16,
    features_per_unit: int | None = None,
    overwrite: bool = False,
    retries: int = 1,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> SegmentationRun:
    """Segment many tomograms with every network, in parallel on a Dask cluster, resumably.

    The outputs are byte for byte those of ``segment.segment_volume``: ``DIR/<tomogram>__<feature>.mrc``
    with the tomogram's voxel size and origin. Work is split into units of (tomogram, z slices,
    networks); each finished unit is recorded in ``DIR/<tomogram>.segment.json``, so calling this again
    after an interruption, a crash or a lost worker computes only what is missing, and a tomogram
    whose manifest says it is complete is not computed again. A changed tomogram or model file
    (size or modification time) voids the record and that tomogram starts over. A network with z
    context ``k`` (from its sidecar) gets its ``k`` neighbouring slices on each side across unit
    boundaries, mirrored at the tomogram's ends, as in ``segment_volume``.

    Parameters
    ----------
    models : sequence of path
        Saved networks (``MODEL.keras`` with their JSON sidecar); workers load them from these paths,
        so they must be visible to every worker.
    tomograms : sequence of path
        Tomograms (MRC, TIFF, OME-Zarr), also visible to the workers.
    out_dir : path
        Output folder, on a file system shared by the client and the workers.
    client : distributed.Client, optional
        Where units run (see ``open_cluster``); None runs them one after another in this process.
    engine, dtype, slab_size
        As for ``segment.segment_volume``.
    unit_slices : int
        Slices per work unit (rounded up to whole slabs). Smaller units balance the load and lose
        less to a lost worker; larger ones amortise the per-unit overhead.
    features_per_unit : int, optional
        Networks applied together by one unit (default: all, so they share the preprocessing).
    overwrite : bool
        Replace finished outputs and recompute; otherwise outputs this run did not produce are
        refused before any work is done.
    retries : int
        Extra attempts for a unit that raises (e.g. a transient file-system error). Units of a worker
        that dies are rescheduled by Dask regardless.
    progress : callable, optional
        ``callback(units_done, units_to_do)``.
    cancel : threading.Event, optional
        Set it to stop; finished units stay recorded, so the next call resumes.

    Returns
    -------
    SegmentationRun
    """
    started = time.perf_counter()
    check_stored_dtype(dtype)
    out_dir = Path(out_dir).resolve()
    paths = [str(Path(m).resolve()) for m in models]
    fingerprints = [model_fingerprint(path) for path in paths]
    # Loaded here to check them and learn their features; units run in this process reuse them.
    networks = as_networks([cached_network(p, f) for p, f in zip(paths, fingerprints, strict=True)])
    model_files = tuple(
        ModelFile(path, network.feature, fingerprint)
        for path, network, fingerprint in zip(paths, networks, fingerprints, strict=True)
    )
    layout = {
        "dtype": dtype,
        "engine": engine,
        "slab_size": slab_size,
        "unit_slices": unit_slices,
        "features_per_unit": features_per_unit,
    }
    jobs = []  # every check before anything is written
    for tomogram in tomograms:
        jobs.append(
            _plan_tomogram(Path(tomogram).resolve(), out_dir, model_files, layout, overwrite)
        )
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise BadInputError(
            f"two tomograms have the same name ({', '.join(names)}); their outputs would collide "
            f"in {out_dir}; rename one or segment them into different folders"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [(index, job, unit) for index, job in enumerate(jobs) for unit in job.start(dtype)]
    total = sum(len(job.units) for job in jobs)
    description = f"segment {len(jobs)} tomogram{'s' if len(jobs) != 1 else ''}"
    try:
        with progress_bar(len(todo), description, progress, unit="unit") as advance:
            if client is None:
                _run_here(todo, advance, cancel)
            else:
                _run_on_cluster(client, todo, advance, cancel, retries)
    finally:
        for job in jobs:
            job.save()
    return SegmentationRun(
        outputs=[job.finals for job in jobs],
        manifests=[job.manifest.path for job in jobs],
        units_total=total,
        units_computed=len(todo),
        units_skipped=total - len(todo),
        seconds=time.perf_counter() - started,
    )


def _cancelled(todo: list, done: int) -> CancelledError:
    manifests = sorted({str(job.manifest.path.name) for _, job, _ in todo})
    return CancelledError(
        f"segmentation cancelled after {done} of {len(todo)} units; the finished ones are recorded "
        f"in {', '.join(manifests)}; run the same command again to resume"
    )


def _run_here(todo: list, advance: Any, cancel: threading.Event | None) -> None:
    for done, (_, job, unit) in enumerate(todo):
        if cancel is not None and cancel.is_set():
            raise _cancelled(todo, done)
        job.record(unit, run_unit(unit))
        advance(1)


def _run_on_cluster(
    client: Any, todo: list, advance: Any, cancel: threading.Event | None, retries: int
) -> None:
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]  # fresh keys: never reuse a result held from an earlier run
    owners: dict[Any, tuple[_Tomogram, WorkUnit]] = {}
    for index, job, unit in todo:
        future = client.submit(
            run_unit,
            unit,
            key=f"tomoseg-unit-{token}-{len(owners)}",
            retries=retries,
            priority=-index,  # earlier tomograms first, so their outputs appear early
            pure=False,
        )
        owners[future] = (job, unit)
    completed = as_completed(list(owners))
    done = 0
    try:
        while owners:
            if cancel is not None and cancel.is_set():
                raise _cancelled(todo, done)
            if not completed.has_ready():
                time.sleep(POLL_SECONDS)
                continue
            for future in completed.next_batch(block=False):
                job, unit = owners.pop(future)  # dropping the future frees its result
                job.record(unit, future.result())  # re-raises the unit's error, if any
                done += 1
                advance(1)
    finally:
        if owners:
            client.cancel(list(owners))
