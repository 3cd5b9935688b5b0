"""dask: ``dask.array`` over an HDF5 file or a zarr store, in one process's threads or on a
dask.distributed cluster.

- ``dask-threads``: ``A @ x`` with dask's threaded scheduler.
- ``dask-distributed``: the same graph computed by a ``distributed.Client``: on a
  ``LocalCluster`` of worker processes the harness starts (``workers``, ``threads_per_worker``,
  ``worker_memory_limit``), or on an existing cluster by address (``scheduler``, else
  ``$HARNESS_DASK_SCHEDULER``); see ``harness.measuring.cluster``. Its operand meters the whole
  cluster (``harness.measuring.cluster_memory``): every worker's exact peak, summed.

Opening (the store, the cluster) is setup; the product is building and submitting the graph,
computing, and gathering ``y``. dask's chunks are whole storage chunk-rows, full width, about
``DASK_CHUNK_BYTES``: each task reads one row slab (opening the store by its path, so that the
graph pickles and any worker that sees the path can run it) and multiplies it by ``x``.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np

from harness.measuring import cluster
from harness.measuring.datasets import DatasetSpec
from harness.measuring.strategies.base import (
    Options,
    Strategy,
    as_vector,
    block_rows,
    one_block_bytes,
    register,
    streaming_seconds,
)

#: Target bytes of one dask chunk (a row slab): large enough that the scheduler's per-task
#: cost stays small against reading and multiplying it.
DASK_CHUNK_BYTES = 16 * 1024 * 1024
#: Fixed cost of one task assumed by the pass-time estimate (seconds), and of one distributed
#: compute (graph submission and gathering).
ASSUMED_SECONDS_PER_TASK = 1e-3
ASSUMED_SECONDS_PER_COMPUTE = 0.05
#: A product on a cluster that has not finished after this many seconds, or this many times
#: its estimate, is abandoned with an error (never a hang).
MIN_PRODUCT_TIMEOUT_SECONDS = 120.0
#: How often a waiting product checks that the cluster still has the workers it started with.
WORKER_CHECK_SECONDS = 0.5


def _storage_chunk_rows(spec: DatasetSpec) -> int:
    if spec.storage == "zarr":
        from harness.measuring import zarr_store

        return zarr_store.chunk_shape(spec)[0]
    from harness.measuring.strategies.hdf5 import stored_chunk_shape

    chunks = stored_chunk_shape(spec)
    return chunks[0] if chunks else 1


def chunk_rows(spec: DatasetSpec, opts: Options) -> int:
    """Rows of one dask chunk: ``block_rows`` if given, else whole storage chunk-rows of about
    ``DASK_CHUNK_BYTES`` (at most ``memory_budget``)."""
    import dataclasses

    if opts.block_rows is None:
        opts = dataclasses.replace(opts, memory_budget=min(opts.memory_budget, DASK_CHUNK_BYTES))
    return block_rows(spec, opts, align_rows=_storage_chunk_rows(spec))


def chunk_bytes(spec: DatasetSpec, opts: Options) -> int:
    return chunk_rows(spec, opts) * spec.shape[1] * spec.itemsize


class SlabReader:
    """What ``dask.array.from_array`` reads from: shape, dtype and ``__getitem__`` over a store
    opened by path in the process that runs the task (picklable; h5py and zarr handles are
    not shared between processes)."""

    def __init__(self, spec: DatasetSpec, path: Path):
        # A path, or a FileLocation (a user's file: it names the dataset or array); both pickle.
        self.storage, self.location = spec.storage, path
        self.shape, self.dtype, self.ndim = spec.shape, np.dtype(spec.dtype), 2

    def __getitem__(self, key):
        if self.storage == "zarr":
            from harness.measuring import zarr_store

            return zarr_store.open_array(self.location)[key]
        import h5py

        from harness.measuring.strategies.base import hdf5_dataset
        from harness.measuring.strategies.hdf5 import DATASET_NAME

        with h5py.File(os.fspath(self.location), "r") as f:
            return f[hdf5_dataset(self.location, DATASET_NAME)][key]


def _product(spec: DatasetSpec, path: Path, opts: Options, x: np.ndarray):
    """The dask graph of ``A @ x`` (a 1-D dask array of the matrix dtype)."""
    import dask.array as da

    matrix = da.from_array(SlabReader(spec, path), chunks=(chunk_rows(spec, opts), -1),
                           lock=False, asarray=True, meta=np.empty((0, 0), dtype=spec.dtype),
                           name=f"A-{Path(path).name}")
    return matrix @ da.from_array(x, chunks=-1)


class ThreadsOperand:
    def __init__(self, spec, path, opts):
        self.spec, self.path, self.opts = spec, path, opts

    def matvec(self, x):
        x = as_vector(x, self.spec)
        return _product(self.spec, self.path, self.opts, x).compute(scheduler="threads")


class DistributedOperand:
    """``A @ x`` on a dask.distributed cluster; ``measure_peak`` meters every process of it."""

    def __init__(self, spec, path, opts, cluster_spec: cluster.ClusterSpec):
        self.spec, self.path, self.opts, self.cluster_spec = spec, path, opts, cluster_spec
        self.client = cluster.client(cluster_spec)
        self.workers = set(self.client.ncores())
        if not self.workers:
            raise cluster.ClusterError(f"the dask cluster at {cluster_spec.label()} has no workers")
        self.timeout_seconds = max(MIN_PRODUCT_TIMEOUT_SECONDS,
                                   20 * _distributed_seconds(spec, opts))
        self.last_cluster_peak = None

    def matvec(self, x):
        x = as_vector(x, self.spec)
        future = self.client.compute(_product(self.spec, self.path, self.opts, x))
        try:
            return self._wait(future)
        finally:
            future.release()

    def _wait(self, future):
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            try:
                y = future.result(timeout=WORKER_CHECK_SECONDS)
            except TimeoutError:
                self._check_workers()
                if time.monotonic() > deadline:
                    future.cancel()
                    raise cluster.ClusterError(
                        f"the product did not finish within {self.timeout_seconds:.0f} s on the "
                        f"dask cluster at {self.cluster_spec.label()}") from None
                continue
            except Exception as exc:
                self._check_workers()
                raise cluster.ClusterError(
                    f"the product failed on the dask cluster at {self.cluster_spec.label()}: "
                    f"{type(exc).__name__}: {exc}") from exc
            self._check_workers()
            return y

    def _check_workers(self) -> None:
        try:
            now = set(self.client.ncores())
        except OSError as exc:
            raise cluster.ClusterError(
                f"lost the dask scheduler at {self.cluster_spec.label()}: {exc}") from exc
        lost = sorted(self.workers - now)
        if lost:
            raise cluster.ClusterError(
                f"worker(s) {', '.join(lost)} left the dask cluster at "
                f"{self.cluster_spec.label()} during the product (killed or out of memory); "
                "its figures would not be those of the cluster asked for")

    def measure_peak(self, fn, *args, **kwargs):
        """``fn(*args)`` metered on every process of the cluster (and this one): returns its
        result and the summed :class:`PeakMemory`; the per-process figures are kept in
        ``last_cluster_peak``."""
        from harness.measuring.cluster_memory import measure_cluster

        result, peak = measure_cluster(self.client, fn, *args, **kwargs)
        self.last_cluster_peak = peak
        return result, peak.peak_memory()


@contextlib.contextmanager
def _open_threads(spec: DatasetSpec, path: Path, opts: Options):
    yield ThreadsOperand(spec, path, opts)


@contextlib.contextmanager
def _open_distributed(spec: DatasetSpec, path: Path, opts: Options):
    yield DistributedOperand(spec, path, opts, cluster.ClusterSpec.from_options(opts))


def _threads_seconds(spec: DatasetSpec, opts: Options) -> float:
    tasks = -(-spec.shape[0] // chunk_rows(spec, opts))
    return streaming_seconds(spec, opts) + tasks * ASSUMED_SECONDS_PER_TASK


def _distributed_seconds(spec: DatasetSpec, opts: Options) -> float:
    return _threads_seconds(spec, opts) + ASSUMED_SECONDS_PER_COMPUTE


def _threads(opts: Options) -> int:
    return os.cpu_count() or 1


def _cluster_threads(opts: Options) -> int:
    spec = cluster.ClusterSpec.from_options(opts)
    return spec.workers * spec.threads_per_worker


def _accepts(spec: DatasetSpec) -> bool:
    if spec.storage == "zarr":
        from harness.measuring import zarr_store

        return zarr_store.accepts_compression(spec.compression)
    return True


_REFUSAL = "its compression is not a zarr codec"

register(Strategy(
    name="dask-threads", family="distributed", storage=("zarr", "hdf5"), out_of_core=True,
    description="dask.array over the store (chunks: storage chunk-rows), threaded scheduler",
    opener=_open_threads,
    # Each thread holds a slab it read and the one it is about to read.
    budget=lambda spec, opts: 2 * _threads(opts) * chunk_bytes(spec, opts),
    resident=one_block_bytes, pass_seconds=_threads_seconds,
    accepts_fn=_accepts, refusal=_REFUSAL,
))
register(Strategy(
    name="dask-distributed", family="distributed", storage=("zarr", "hdf5"), out_of_core=True,
    description="the same graph on a dask.distributed cluster (a LocalCluster, or --scheduler)",
    opener=_open_distributed, spans_processes=True,
    # Summed over the cluster: each worker thread holds two slabs at most.
    budget=lambda spec, opts: 2 * _cluster_threads(opts) * chunk_bytes(spec, opts),
    resident=one_block_bytes, pass_seconds=_distributed_seconds,
    accepts_fn=_accepts, refusal=_REFUSAL,
))
