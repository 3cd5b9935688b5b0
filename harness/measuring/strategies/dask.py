"""dask over an HDF5 file or a zarr store, in one process's threads or on a dask.distributed
cluster.

- ``dask-threads``: ``dask.array`` over the store, ``A @ x`` with dask's threaded scheduler, as
  a user writes it (``da.from_zarr(...) @ x``). dask's chunks are whole storage chunk-rows, full
  width, about ``DASK_CHUNK_BYTES``: each task reads one row slab through the store's library
  (opening the store by its path) and multiplies it by ``x``.
- ``dask-distributed``: the product on a ``distributed.Client``: on a ``LocalCluster`` of worker
  processes the harness starts (``workers``, ``threads_per_worker``, ``worker_memory_limit``),
  or on an existing cluster by address (``scheduler``, else ``$HARNESS_DASK_SCHEDULER``); see
  ``harness.measuring.strategies.cluster``. One task per worker thread, each the product of one range of
  whole storage chunk-rows, read by a reader its worker opened at setup (the fastest the store
  allows: ``WORKER_READERS``). dask's cost is per task (``tools/dask_task_cost.py`` on this
  2-core machine: 18 ms to submit and gather two trivial tasks, 76 ms for 25): one task per
  thread keeps a 0.4 GB product near the time its reads take, where ``dask.array``'s 25 chunks
  of 16 MiB would pay 76 ms before reading anything. Its operand meters the whole cluster
  (``harness.measuring.meters.cluster_memory``): every worker's exact peak, summed.

Opening (the store, the cluster, the workers' readers) is setup; the product is submitting the
tasks, computing, and gathering ``y``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import time
import uuid
from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import DatasetSpec, computed
from harness.measuring.meters.cluster_memory import measure_cluster
from harness.measuring.storage import hdf5 as hdf5_storage
from harness.measuring.storage import zarr as zarr_store
from harness.measuring.strategies import cluster
from harness.measuring.strategies.base import (
    Options,
    Strategy,
    block_rows,
    one_block_bytes,
    register,
    registry,
    streaming_seconds,
)
from harness.measuring.strategies.hdf5 import filter_pipeline_bytes
from harness.measuring.strategies.products import BlockProducts, Product
from harness.measuring.strategies.zarr import reader_bytes
from harness.units import human_seconds

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
        return zarr_store.chunk_shape(spec)[0]
    chunks = hdf5_storage.stored_chunk_shape(spec)
    return chunks[0] if chunks else 1


def chunk_rows(spec: DatasetSpec, opts: Options) -> int:
    """Rows of one dask chunk: ``block_rows`` if given, else whole storage chunk-rows of about
    ``DASK_CHUNK_BYTES`` (at most ``memory_budget``)."""
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
        self.spec, self.location = spec, path
        self.shape, self.dtype, self.ndim = spec.shape, np.dtype(spec.dtype), 2

    def __getitem__(self, key):
        # A file of other values is converted slab by slab, in the task that reads the slab.
        if self.spec.storage == "zarr":
            return computed(zarr_store.open_array(self.location)[key], self.spec)
        with hdf5_storage.open_file(self.location) as f:
            return computed(hdf5_storage.dataset_of(f, self.location)[key], self.spec)


def _product(spec: DatasetSpec, path: Path, opts: Options, v: np.ndarray, transpose: bool):
    """The dask graph of ``A @ v``, or ``Aᵀ @ v`` (a dask array of the matrix dtype): one
    task per row slab either way, the transposed slabs' parts summed."""
    import dask.array as da

    rows = chunk_rows(spec, opts)
    matrix = da.from_array(SlabReader(spec, path), chunks=(rows, -1),
                           lock=False, asarray=True, meta=np.empty((0, 0), dtype=spec.dtype),
                           name=f"A-{Path(path).name}")
    if transpose:  # v's rows split like the matrix's, so that each slab meets its own rows
        return matrix.T @ da.from_array(v, chunks=(rows, *v.shape[1:]))
    return matrix @ da.from_array(v, chunks=-1)


class ThreadsOperand(BlockProducts):
    def __init__(self, spec, path, opts):
        self.spec, self.path, self.opts = spec, path, opts

    def _run(self, product: Product) -> None:
        product.out[...] = _product(self.spec, self.path, self.opts, product.v,
                                    product.transpose).compute(scheduler="threads")


#: What a worker reads its rows with, per storage, fastest first: the first that can open the
#: store (the mapped readers refuse compressed or filtered data) is kept for the operand's life.
WORKER_READERS = {"zarr": ("zarr-mmap", "zarr-direct", "zarr-blocked"),
                  "hdf5": ("hdf5-mmap", "hdf5-blocked")}

#: Readers opened in this process (a worker) for dask-distributed products, by
#: ``(operand key, part)``: ``(exit stack, operand, strategy name)``.
_WORKER_PARTS: dict[tuple[str, int], tuple] = {}


def row_parts(nrows: int, parts: int, align: int) -> list[tuple[int, int]]:
    """``nrows`` split into at most ``parts`` contiguous ranges ``(first, stop)`` of whole
    ``align``-row units (storage chunk-rows), as even as those units allow."""
    units = -(-nrows // align)
    parts = max(1, min(parts, units))
    bounds = [min(nrows, (units * i // parts) * align) for i in range(parts + 1)]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _worker_options(spec: DatasetSpec, opts: Options) -> Options:
    """A worker's reader holds at most one dask chunk (``chunk_rows``) of rows at a time."""
    return dataclasses.replace(opts, block_rows=chunk_rows(spec, opts))


def open_parts_in_worker(key: str, spec: DatasetSpec, path, opts: Options,
                         parts: list[int]) -> list[str]:
    """Open one reader per part in this process (one per task that may run at once, since a
    reader's buffer is not shared); returns the names of the readers opened."""
    names = []
    for part in parts:
        stack = contextlib.ExitStack()
        refusals = []
        for name in WORKER_READERS[spec.storage]:
            strat = registry()[name]
            if not strat.accepts(spec):
                continue
            try:
                operand = stack.enter_context(strat.opener(spec, path, _worker_options(spec, opts)))
            except ValueError as exc:  # a mapped reader refuses filtered bytes: try the next
                refusals.append(str(exc))
                continue
            _WORKER_PARTS[(key, part)] = (stack, operand, name)
            names.append(name)
            break
        else:
            stack.close()
            raise ValueError(f"no reader can open {Path(path).name} on this worker: "
                             + "; ".join(refusals))
    return names


def part_product_in_worker(key: str, part: int, first: int, stop: int, v: np.ndarray,
                           transpose: bool = False):
    """``(A @ v)[first:stop]``, or ``A[first:stop]ᵀ @ v[first:stop]`` when ``transpose``,
    with the reader this worker opened for ``part``."""
    return _WORKER_PARTS[(key, part)][1].product_rows(v, first, stop, transpose)


def close_parts_in_worker(key: str) -> int:
    """Close every reader opened for ``key`` in this process; returns how many."""
    mine = [k for k in _WORKER_PARTS if k[0] == key]
    for k in mine:
        _WORKER_PARTS.pop(k)[0].close()
    return len(mine)


class DistributedOperand(BlockProducts):
    """``A @ x`` on a dask.distributed cluster: one task per worker thread, each the product of
    one contiguous range of storage chunk-rows, read by a reader its worker opened at setup
    (``WORKER_READERS``: the mapped chunk files when the store allows it, else slabs of one
    dask chunk into one reused buffer); ``y`` is the ranges gathered and joined on the client.
    ``measure_peak`` meters every process of the cluster."""

    def __init__(self, spec, path, opts, cluster_spec: cluster.ClusterSpec):
        self.spec, self.path, self.opts, self.cluster_spec = spec, path, opts, cluster_spec
        self.client = cluster.client(cluster_spec)
        threads = self.client.nthreads()
        if not threads:
            raise cluster.ClusterError(f"the dask cluster at {cluster_spec.label()} has no workers")
        self.workers = set(threads)
        slots = [address for address in sorted(threads) for _ in range(threads[address])]
        ranges = row_parts(spec.shape[0], len(slots), _storage_chunk_rows(spec))
        self.parts = [(part, slots[part], first, stop) for part, (first, stop) in enumerate(ranges)]
        self.key = uuid.uuid4().hex
        self.readers = {}
        try:
            for address in sorted({address for _, address, _, _ in self.parts}):
                mine = [part for part, a, _, _ in self.parts if a == address]
                self.readers.update(self.client.run(open_parts_in_worker, self.key, spec, path,
                                                    opts, mine, workers=[address]))
        except BaseException:
            self.close()  # what the other workers opened
            raise
        self.timeout_seconds = max(MIN_PRODUCT_TIMEOUT_SECONDS,
                                   20 * _distributed_seconds(spec, opts))
        self.last_cluster_peak = None

    def _run(self, product: Product) -> None:
        # Each part gets v whole (a part reads its rows of it when transposed).
        futures = [self.client.submit(part_product_in_worker, self.key, part, first, stop,
                                      product.v, product.transpose,
                                      workers=[address], allow_other_workers=False, pure=False)
                   for part, address, first, stop in self.parts]
        try:
            parts = self._wait(futures)
            if product.transpose:
                for part in parts:
                    product.out += part
            else:
                np.concatenate(parts, out=product.out)
        finally:
            for future in futures:
                future.release()

    def _wait(self, futures) -> list:
        deadline = time.monotonic() + self.timeout_seconds
        parts = []
        for future in futures:
            while True:
                try:
                    parts.append(future.result(timeout=WORKER_CHECK_SECONDS))
                    break
                except TimeoutError:
                    self._check_workers()
                    if time.monotonic() > deadline:
                        self.client.cancel(futures)
                        raise cluster.ClusterError(
                            f"the product did not finish within {human_seconds(self.timeout_seconds)} on "
                            f"the dask cluster at {self.cluster_spec.label()}") from None
                except Exception as exc:
                    self._check_workers()
                    raise cluster.ClusterError(
                        f"the product failed on the dask cluster at {self.cluster_spec.label()}: "
                        f"{type(exc).__name__}: {exc}") from exc
        # Every part arrived: the product is whole, whatever happens to the cluster next.
        return parts

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
        result, peak = measure_cluster(self.client, fn, *args, **kwargs)
        self.last_cluster_peak = peak
        return result, peak.peak_memory()

    def close(self) -> None:
        """Close the readers the workers opened (a worker that has left has nothing to close)."""
        with contextlib.suppress(Exception):
            self.client.run(close_parts_in_worker, self.key)


@contextlib.contextmanager
def _open_threads(spec: DatasetSpec, path: Path, opts: Options):
    yield ThreadsOperand(spec, path, opts)


@contextlib.contextmanager
def _open_distributed(spec: DatasetSpec, path: Path, opts: Options):
    operand = DistributedOperand(spec, path, opts, cluster.ClusterSpec.from_options(opts))
    try:
        yield operand
    finally:
        operand.close()


def _threads_seconds(spec: DatasetSpec, opts: Options) -> float:
    tasks = -(-spec.shape[0] // chunk_rows(spec, opts))
    return streaming_seconds(spec, opts) + tasks * ASSUMED_SECONDS_PER_TASK


def _distributed_seconds(spec: DatasetSpec, opts: Options) -> float:
    """One task per cluster thread, and the submission and gathering around them."""
    return (streaming_seconds(spec, opts) + _cluster_threads(opts) * ASSUMED_SECONDS_PER_TASK
            + ASSUMED_SECONDS_PER_COMPUTE)


def _worker_reader(spec: DatasetSpec):
    """The reader a worker is expected to open for ``spec`` (the first of ``WORKER_READERS``
    that accepts it; a user's filtered HDF5 file may still fall back to the next at opening)."""
    return next(registry()[name] for name in WORKER_READERS[spec.storage] if registry()[name].accepts(spec))


def _distributed_budget(spec: DatasetSpec, opts: Options) -> int:
    """Summed over the cluster: one reader per worker thread, each with its own budget."""
    return _cluster_threads(opts) * int(_worker_reader(spec).budget(spec,
                                                                   _worker_options(spec, opts)))


def _library_read_bytes(spec: DatasetSpec) -> int:
    """What the storage's library holds besides the slab it returns while one task reads it
    (bytes): zarr's chunks in flight (HDF5 decodes into the slab, with its chunk cache)."""
    if spec.storage == "zarr":
        return reader_bytes(spec)
    return filter_pipeline_bytes(spec)


def _threads(opts: Options) -> int:
    return os.cpu_count() or 1


def _cluster_threads(opts: Options) -> int:
    spec = cluster.ClusterSpec.from_options(opts)
    return spec.workers * spec.threads_per_worker


def _accepts(spec: DatasetSpec) -> bool:
    if spec.storage == "zarr":
        return zarr_store.accepts_compression(spec.compression)
    return True


_REFUSAL = zarr_store.codec_refusal()

register(Strategy(
    name="dask-threads", family="distributed", storage=("zarr", "hdf5"), out_of_core=True,
    description="dask.array over the store (chunks: storage chunk-rows), threaded scheduler",
    opener=_open_threads,
    # Each thread: the slab it is filling, one it freed that its malloc arena still holds,
    # and what the library holds while reading.
    budget=lambda spec, opts: _threads(opts) * (2 * chunk_bytes(spec, opts)
                                                + _library_read_bytes(spec)),
    resident=one_block_bytes, pass_seconds=_threads_seconds,
    accepts_fn=_accepts, refusal=_REFUSAL, imports=("dask.array",),
))
register(Strategy(
    name="dask-distributed", family="distributed", storage=("zarr", "hdf5"), out_of_core=True,
    description="one task per thread of a dask.distributed cluster (a LocalCluster, or "
                "--scheduler), each streaming its rows with a reader opened at setup",
    opener=_open_distributed, spans_processes=True, budget=_distributed_budget,
    resident=one_block_bytes, pass_seconds=_distributed_seconds,
    accepts_fn=_accepts, refusal=_REFUSAL, imports=("dask.array", "distributed"),
))
