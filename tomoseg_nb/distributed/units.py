"""Work units of a distributed segmentation and the function a worker runs for one of them.

A unit is one tomogram, a range of z slices and a set of feature networks. The worker loads each
network once (cached per process, keyed by the model files' size and modification time), computes the
probability maps slab by slab with exactly the calls the in-process ``segment_volume`` makes, and writes
each slab straight into its place in the pre-allocated output file. Units touch disjoint byte ranges,
so any number of them can write into the same file at once, and writing a unit twice (after a lost
worker) writes the same bytes.

Networks with z context ``k`` need ``k`` neighbouring slices on each side of every slice: a unit reads
each of its slabs with them (``segment.slab_with_context``: from the neighbouring units' slices inside
the tomogram, mirrored beyond its ends), so its maps do not depend on where the unit boundaries fall.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import BadInputError, MissingInputError
from ..maps import encode_probabilities
from ..segment import FeatureNetwork, probability_slices, slab_with_context
from ..volume import SlabWriter, open_volume

Fingerprint = tuple[int, ...]


def file_stamp(path: str | os.PathLike) -> Fingerprint:
    """``(size, mtime_ns)`` of a file: cheap, and changes whenever the file is rewritten."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path}: no such file or folder")
    status = path.stat()
    return (status.st_size, status.st_mtime_ns)


def model_fingerprint(path: str | os.PathLike) -> Fingerprint:
    """Stamp of a saved network, ``MODEL.keras``, and of its ``MODEL.json`` sidecar when present.

    The sidecar holds the preprocessing and threshold, so a change to either is a different model.
    """
    from ..models import sidecar_path

    sidecar = sidecar_path(path)
    return file_stamp(path) + (file_stamp(sidecar) if sidecar.exists() else ())


@dataclass(frozen=True)
class ModelFile:
    """A saved network as a worker finds it: an absolute path and the fingerprint it must have."""

    path: str
    feature: str
    fingerprint: Fingerprint


@dataclass(frozen=True)
class WorkUnit:
    """Slices ``z_start:z_stop`` of one tomogram through a set of networks.

    ``slab_size`` slices are computed together, aligned on multiples of ``slab_size`` from z = 0 like
    the in-process run, so the numbers are the same bit for bit.
    """

    tomogram: str
    z_start: int
    z_stop: int
    models: tuple[ModelFile, ...]
    outputs: tuple[str, ...]  # pre-allocated MRC per network, same order as models
    dtype: str
    slab_size: int
    engine: str

    @property
    def id(self) -> str:
        """Stable name of the unit inside its tomogram's manifest, e.g. ``z0016-0032:membrane``."""
        features = "+".join(m.feature for m in self.models)
        return f"z{self.z_start:04d}-{self.z_stop:04d}:{features}"


def plan_units(
    tomogram: str,
    depth: int,
    models: tuple[ModelFile, ...],
    outputs: tuple[str, ...],
    *,
    dtype: str,
    slab_size: int,
    unit_slices: int,
    features_per_unit: int | None,
    engine: str,
) -> list[WorkUnit]:
    """Split a tomogram of ``depth`` slices into units of ``unit_slices`` (rounded up to whole slabs)."""
    if slab_size < 1 or unit_slices < 1:
        raise BadInputError(
            f"slab size and slices per unit must be at least 1, got {slab_size}, {unit_slices}"
        )
    if features_per_unit is not None and features_per_unit < 1:
        raise BadInputError(f"features per unit must be at least 1, got {features_per_unit}")
    step = -(-unit_slices // slab_size) * slab_size
    group = features_per_unit or len(models)
    units = []
    for first in range(0, len(models), group):
        for z_start in range(0, depth, step):
            units.append(
                WorkUnit(
                    tomogram=tomogram,
                    z_start=z_start,
                    z_stop=min(depth, z_start + step),
                    models=models[first : first + group],
                    outputs=outputs[first : first + group],
                    dtype=dtype,
                    slab_size=slab_size,
                    engine=engine,
                )
            )
    return units


_NETWORKS: dict[tuple[str, Fingerprint], FeatureNetwork] = {}
_NETWORKS_LOCK = threading.Lock()


def cached_network(path: str, fingerprint: Fingerprint) -> FeatureNetwork:
    """The ``FeatureNetwork`` saved at ``path``, loaded once per process and file version.

    Refuses a file whose fingerprint is not ``fingerprint`` (it changed since the run was planned):
    its units would otherwise mix maps of two different networks in one output.
    """
    key = (path, tuple(fingerprint))
    with _NETWORKS_LOCK:
        if key not in _NETWORKS:
            if model_fingerprint(path) != key[1]:
                raise BadInputError(
                    f"{path}: the model changed while the segmentation was running; "
                    "run the command again to segment with the new version"
                )
            for stale in [k for k in _NETWORKS if k[0] == path]:
                del _NETWORKS[stale]
            _NETWORKS[key] = FeatureNetwork.load(path)
        return _NETWORKS[key]


def _limit_threads() -> None:
    """In a Dask worker, size TensorFlow's thread pools to the worker's threads, once, before import.

    ``LocalCluster`` workers get explicit values from ``cluster.worker_environment``; workers started
    by dask-jobqueue or a Gateway get ``--nthreads`` = their share of the node, which is the right
    number of TensorFlow threads too.
    """
    if "tensorflow" in sys.modules or "TF_NUM_INTRAOP_THREADS" in os.environ:
        return
    try:
        from distributed import get_worker

        threads = get_worker().state.nthreads
    except (ImportError, ValueError):  # not running inside a Dask worker
        return
    from .cluster import worker_environment  # Dask is optional: only inside a worker

    for name, value in worker_environment(threads).items():
        os.environ.setdefault(name, value)


def _write_slab(path: str, z_start: int, slab: np.ndarray) -> None:
    """Write one unit's slices into the shared, pre-allocated output (only its own bytes)."""
    try:
        writer = SlabWriter.open(path)
    except FileNotFoundError as error:
        raise MissingInputError(
            f"{path}: the pre-allocated output is not visible on worker {socket.gethostname()}; "
            "the output folder must be on a file system shared by the client and every worker"
        ) from error
    try:
        if writer.shape[1:] != slab.shape[1:] or z_start + len(slab) > writer.shape[0]:
            raise BadInputError(
                f"{path}: holds shape {writer.shape}, which slices {z_start}-{z_start + len(slab) - 1} of "
                f"shape {slab.shape[1:]} do not fit; delete it and the manifest beside it to start over"
            )
        writer[z_start : z_start + len(slab)] = slab
        writer.flush()
    finally:
        writer.close()


def run_unit(unit: WorkUnit) -> dict:
    """Compute and write one unit; returns its timing record for the manifest.

    Runs on a Dask worker (or in-process). Every slab is on disk (fsync'd) before this returns, so a
    unit the client records as done cannot be lost by a later crash.
    """
    _limit_threads()
    started = time.perf_counter()
    networks = [cached_network(model.path, model.fingerprint) for model in unit.models]
    context = max(network.z_context for network in networks)
    with open_volume(unit.tomogram, ndim=3) as volume:
        for start in range(unit.z_start, unit.z_stop, unit.slab_size):
            stop = min(unit.z_stop, start + unit.slab_size)
            maps = probability_slices(
                networks,
                slab_with_context(volume, start, stop, context),
                voxel_size=volume.voxel_size,
                engine=unit.engine,
                context=context,
            )
            for output, probabilities in zip(unit.outputs, maps, strict=True):
                _write_slab(output, start, encode_probabilities(probabilities, unit.dtype))
    return {
        "seconds": round(time.perf_counter() - started, 4),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
