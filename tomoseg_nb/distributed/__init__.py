"""Scale segmentation out on Dask: many tomograms across worker processes, cluster nodes and hubs.

``segment_volumes(models, tomograms, out_dir, client=...)`` splits the work into units of (tomogram,
z slices, networks) and runs them on any Dask cluster (``open_cluster("local:4")``, a scheduler
address, SLURM/PBS through dask-jobqueue, a Dask Gateway). Outputs are identical to the in-process
``segment_volume``; a manifest per tomogram makes runs resumable; units of lost workers are retried.
"""

from __future__ import annotations

from .cluster import ClusterSpec, open_cluster, parse_cluster, worker_environment
from .manifest import Manifest, manifest_path
from .run import SegmentationRun, segment_volumes
from .units import WorkUnit, run_unit

__all__ = [
    "ClusterSpec",
    "Manifest",
    "SegmentationRun",
    "WorkUnit",
    "manifest_path",
    "open_cluster",
    "parse_cluster",
    "run_unit",
    "segment_volumes",
    "worker_environment",
]
