"""dask.distributed clients for the ``dask-distributed`` strategy: a ``LocalCluster`` of worker
processes that the harness starts and stops, or an existing cluster by address.

The address comes from the strategy's ``scheduler`` option (``--scheduler`` on the CLI), else
from ``$HARNESS_DASK_SCHEDULER`` (how the asv suite is pointed at a cluster); without either
the harness starts a ``LocalCluster`` on 127.0.0.1 (``workers`` processes of
``threads_per_worker`` threads, ``worker_memory_limit`` bytes each, no limit by default).

A process keeps one client per cluster for its life (starting a cluster takes seconds, and is
setup, not measurement); :func:`shutdown` closes them all, and runs at interpreter exit, so a
cluster the harness started never outlives the process that started it.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import threading

SCHEDULER_ENV_VAR = "HARNESS_DASK_SCHEDULER"
#: The cluster the harness starts by default: two worker processes of one thread (this
#: class of machine has two cores).
DEFAULT_WORKERS = 2
DEFAULT_THREADS_PER_WORKER = 1
#: Seconds to wait for a cluster to start or answer before giving up with a clear error.
CONNECT_TIMEOUT_SECONDS = 60.0


class ClusterError(RuntimeError):
    """The cluster could not be reached, or failed (a worker died) during a product."""


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """Which cluster: ``scheduler`` (an address; None: a LocalCluster of ``workers`` x
    ``threads_per_worker``, ``memory_limit`` bytes per worker, 0 meaning none)."""

    scheduler: str | None = None
    workers: int = DEFAULT_WORKERS
    threads_per_worker: int = DEFAULT_THREADS_PER_WORKER
    memory_limit: int = 0

    @classmethod
    def from_options(cls, opts) -> ClusterSpec:
        scheduler = opts.scheduler or os.environ.get(SCHEDULER_ENV_VAR, "").strip() or None
        return cls(scheduler=scheduler,
                   workers=opts.workers or DEFAULT_WORKERS,
                   threads_per_worker=opts.threads_per_worker or DEFAULT_THREADS_PER_WORKER,
                   memory_limit=opts.worker_memory_limit or 0)

    def label(self) -> str:
        if self.scheduler:
            return self.scheduler
        return f"LocalCluster {self.workers}x{self.threads_per_worker}"


_CLIENTS: dict[ClusterSpec, tuple] = {}
_LOCK = threading.Lock()


def client(spec: ClusterSpec):
    """The client of cluster ``spec``, started (or connected) on first use."""
    with _LOCK:
        if spec in _CLIENTS:
            return _CLIENTS[spec][0]
        _CLIENTS[spec] = _connect(spec)
        return _CLIENTS[spec][0]


def _connect(spec: ClusterSpec) -> tuple:
    from distributed import Client, LocalCluster

    if spec.scheduler is not None:
        from distributed.comm import resolve_address

        try:  # a malformed address fails here, before a Client is half made
            resolve_address(spec.scheduler)
        except (ValueError, OSError) as exc:  # a wrong scheme or port; a host that is unknown
            raise ClusterError(f"{spec.scheduler!r} is not a dask scheduler address ({exc}); "
                               f"give one like tcp://host:8786 to --scheduler / "
                               f"${SCHEDULER_ENV_VAR}") from None
        try:
            return Client(spec.scheduler, timeout=CONNECT_TIMEOUT_SECONDS,
                          set_as_default=False), None
        except OSError as exc:
            raise ClusterError(f"cannot reach the dask scheduler at {spec.scheduler} ({exc}); "
                               f"start it (dask scheduler) or fix --scheduler / "
                               f"${SCHEDULER_ENV_VAR}") from exc
    cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=spec.threads_per_worker,
                           processes=True, host="127.0.0.1", dashboard_address=None,
                           memory_limit=spec.memory_limit, silence_logs=logging.ERROR)
    try:
        return Client(cluster, timeout=CONNECT_TIMEOUT_SECONDS, set_as_default=False), cluster
    except BaseException:
        cluster.close()
        raise


def close(spec: ClusterSpec) -> None:
    """Close the client of cluster ``spec``, and the cluster if the harness started it (no-op
    when there is none): what closing a ``harness.operator`` on a cluster strategy does."""
    with _LOCK:
        entry = _CLIENTS.pop(spec, None)
    if entry is None:
        return
    dask_client, local_cluster = entry
    try:
        dask_client.close(timeout=10)
    finally:
        if local_cluster is not None:
            local_cluster.close(timeout=30)


def shutdown() -> None:
    """Close every client, and every cluster the harness started (their worker processes
    exit with them)."""
    with _LOCK:
        entries = list(_CLIENTS.values())
        _CLIENTS.clear()
    for dask_client, cluster in entries:
        try:
            dask_client.close(timeout=10)
        finally:
            if cluster is not None:
                cluster.close(timeout=30)


atexit.register(shutdown)
