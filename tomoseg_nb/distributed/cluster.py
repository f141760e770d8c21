"""Open the Dask cluster a run asks for: local worker processes, a scheduler, SLURM/PBS or a Gateway.

A cluster is named by one short string so the command line, notebooks and batch scripts share it:

``local:N``
    ``N`` worker processes on this machine (``local`` alone: one per core).
``tcp://HOST:PORT`` (or ``HOST:PORT``, ``tls://...``)
    A running ``dask scheduler`` the workers are already connected to.
``slurm[:N]``, ``pbs[:N]``
    ``N`` batch jobs (default 1) started with ``dask-jobqueue``; queue, cores, memory and walltime come
    from the Dask configuration (``~/.config/dask/jobqueue.yaml``), as the site's documentation says.
``gateway[:N]``, ``gateway:ADDRESS``
    A cluster from a Dask Gateway (JupyterHub): up to ``N`` workers (default 4), adaptively.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import BadInputError

CLUSTER_HELP = "local:N | tcp://HOST:PORT | slurm[:N] | pbs[:N] | gateway[:N|ADDRESS]"
DEFAULT_GATEWAY_WORKERS = 4
_JOBQUEUE_CLASSES = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}
_HOST_PORT = re.compile(r"^[\w.\-]+:\d+$")


@dataclass(frozen=True)
class ClusterSpec:
    """A parsed ``--cluster`` value.

    Attributes
    ----------
    kind : {"local", "address", "slurm", "pbs", "gateway"}
    workers : int or None
        Worker processes (local), batch jobs (slurm/pbs) or the most workers (gateway).
    address : str or None
        Scheduler address (``address``) or Gateway address (``gateway``; None: from the config).
    """

    kind: str
    workers: int | None = None
    address: str | None = None


def _count(text: str, spec: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise BadInputError(
            f"--cluster {spec!r}: {text!r} is not a positive number of workers; "
            f"expected {CLUSTER_HELP}"
        )
    return int(text)


def parse_cluster(spec: str) -> ClusterSpec:
    """Parse a cluster string (see the module docstring) without connecting to anything.

    >>> parse_cluster("local:2")
    ClusterSpec(kind='local', workers=2, address=None)
    >>> parse_cluster("tcp://10.0.0.5:8786").kind
    'address'
    """
    spec = spec.strip()
    kind, _, rest = spec.partition(":")
    kind = kind.lower()
    if "://" in spec and kind not in ("gateway",):
        return ClusterSpec("address", address=spec)
    if kind == "local":
        return ClusterSpec("local", workers=_count(rest, spec) if rest else None)
    if kind in _JOBQUEUE_CLASSES:
        return ClusterSpec(kind, workers=_count(rest, spec) if rest else 1)
    if kind == "gateway":
        if not rest:
            return ClusterSpec("gateway", workers=DEFAULT_GATEWAY_WORKERS)
        if rest.isdigit():
            return ClusterSpec("gateway", workers=_count(rest, spec))
        return ClusterSpec("gateway", workers=DEFAULT_GATEWAY_WORKERS, address=rest)
    if _HOST_PORT.match(spec):
        return ClusterSpec("address", address=f"tcp://{spec}")
    raise BadInputError(f"--cluster {spec!r}: not understood; expected {CLUSTER_HELP}")


def usable_cores() -> int:
    """Cores this process may run on (the CPU affinity mask under SLURM/cgroups, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_environment(threads: int) -> dict[str, str]:
    """Environment for a worker process that may use ``threads`` cores for Keras.

    TensorFlow otherwise sizes its thread pools to every core of the node in each worker process,
    so N workers would run N x cores threads and slow each other down.
    """
    count = str(max(1, int(threads)))
    return {"TF_NUM_INTRAOP_THREADS": count, "TF_NUM_INTEROP_THREADS": count}


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as error:
        raise BadInputError(
            "--cluster needs Dask; pip install 'tomoseg_nb[dask]' (dask[distributed])"
        ) from error
    return distributed


@contextmanager
def open_cluster(spec: str | ClusterSpec) -> Iterator[Any]:
    """Yield a ``distributed.Client`` for ``spec``; clusters started here are shut down on exit.

    Parameters
    ----------
    spec : str or ClusterSpec
        See the module docstring, e.g. ``"local:4"``, ``"tcp://scheduler:8786"``, ``"slurm:8"``.

    Raises
    ------
    BadInputError
        The string is not understood, or the optional package a kind needs (``dask-jobqueue``,
        ``dask-gateway``) is missing or not configured.
    """
    if isinstance(spec, str):
        spec = parse_cluster(spec)
    distributed = _distributed()
    with ExitStack() as stack:
        if spec.kind == "address":
            client = stack.enter_context(distributed.Client(spec.address))
        elif spec.kind == "local":
            workers = spec.workers or usable_cores()
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    # loopback only: on a shared hub nobody else should reach this dashboard
                    dashboard_address="127.0.0.1:0",
                    env=worker_environment(usable_cores() // workers),
                )
            )
            client = stack.enter_context(distributed.Client(cluster))
        elif spec.kind in _JOBQUEUE_CLASSES:
            cluster = stack.enter_context(_jobqueue_cluster(spec.kind))
            cluster.scale(jobs=spec.workers)
            client = stack.enter_context(distributed.Client(cluster))
        else:
            cluster = stack.enter_context(_gateway_cluster(spec.address))
            cluster.adapt(minimum=1, maximum=spec.workers)
            client = stack.enter_context(cluster.get_client())
        yield client


def _jobqueue_cluster(kind: str) -> Any:
    try:
        import dask_jobqueue
    except ImportError as error:
        raise BadInputError(
            f"--cluster {kind} needs dask-jobqueue: pip install dask-jobqueue, then describe your "
            f"queue under 'jobqueue: {kind}:' in ~/.config/dask/jobqueue.yaml (see docs/cluster.md)"
        ) from error
    try:
        return getattr(dask_jobqueue, _JOBQUEUE_CLASSES[kind])()
    except ValueError as error:  # e.g. cores/memory not configured
        raise BadInputError(
            f"--cluster {kind}: {error}; set it under 'jobqueue: {kind}:' in "
            "~/.config/dask/jobqueue.yaml (see docs/cluster.md)"
        ) from error


@contextmanager
def _gateway_cluster(address: str | None) -> Iterator[Any]:
    try:
        from dask_gateway import Gateway
    except ImportError as error:
        raise BadInputError(
            "--cluster gateway needs dask-gateway: pip install dask-gateway (preinstalled on "
            "Pangeo/daskhub JupyterHubs; see docs/cluster.md)"
        ) from error
    try:
        gateway = Gateway(address) if address else Gateway()
    except ValueError as error:  # no address given or configured
        raise BadInputError(
            f"--cluster gateway: {error}; give the address (--cluster gateway:https://HUB/services/"
            "dask-gateway) or set gateway.address in the Dask configuration"
        ) from error
    with gateway, gateway.new_cluster(shutdown_on_close=True) as cluster:
        yield cluster
