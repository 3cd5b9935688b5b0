"""The exact memory of every process of a dask cluster during one call, and the bytes each
read.

In every worker process (through ``Client.run``) and in the client, before the call: return
freed heap to the kernel, start a sampler of the anonymous/file-backed split, and reset the
kernel's high-water mark (``/proc/self/clear_refs``, as ``harness.measuring.meters.memory`` does for
one process); after it: read each one's ``VmHWM``, the split's peaks and its I/O counters
(``/proc/self/io``). The figures are per process and summed, in bytes, with the same meaning
as :class:`harness.measuring.meters.memory.PeakMemory` (the peak over the start). Beside them, the
peak of dask's own ``distributed.diagnostics.MemorySampler`` (the workers' memory as their
heartbeats report it, every ``sampler_interval_seconds``) over the same call, as it is: it
shows what such a sampler misses of a short product.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

from asv_bench_harness import reads

from harness.measuring.meters import memory

#: Sampling period of each process's anonymous/file split (seconds).
SPLIT_INTERVAL_SECONDS = 0.001
#: dask's MemorySampler default period (seconds).
SAMPLER_INTERVAL_SECONDS = 0.5


def _io_counters() -> tuple[int, int, int]:
    """(bytes read from storage, bytes read through read calls) of this process so far, and
    the bytes this reading's own read returned; (0, 0, 0) where /proc/self/io is not
    readable."""
    try:
        counters, cost = reads.read_counters_and_cost()
    except OSError:
        return 0, 0, 0
    return counters.storage_bytes, counters.read_call_bytes, cost


@dataclasses.dataclass(frozen=True)
class ProcessPeak:
    """One process's figures over a call (bytes): ``increment`` (exact: VmHWM after a reset
    minus RSS at the start), ``anon_increment`` / ``file_increment`` (sampled split),
    ``baseline`` (RSS at the start), ``read_bytes`` (read from storage: the kernel's
    ``read_bytes``), ``read_call_bytes`` (read through read calls, page cache included:
    ``rchar``); ``name`` (the worker's address, or "client") and ``pid``."""

    name: str
    pid: int
    increment: int
    anon_increment: int
    file_increment: int
    baseline: int
    read_bytes: int
    read_call_bytes: int
    method: str


class ProcessMeter:
    """Started and stopped by two calls (``start``, ``stop``) in the process it measures: the
    meter's own ``start``/``stop`` (``asv_bench_harness.memory``) and the I/O counters.

    ``read_call_bytes`` is the process's ``rchar`` over the call less the reads that are
    never the call's: the meter's own (its ``statm`` samples, 1 ms apart, ~40 bytes each, and
    its readings of the counters), those of dask's profiler thread (``HOUSEKEEPING_THREADS``)
    and, with ``housekeeping_caller``, those of the thread that starts the meter: a worker's
    event loop, which runs ``Client.run``'s functions, the system monitor (~1.6 kB of
    ``/proc`` every 0.5 s) and dask's sampling of the task threads' stacks, whose
    ``linecache`` reads the source file of each new frame (a first pass over a mapped store
    "read" 96-145 kB that way; the lazy import of dask's numpy serializer is another). A
    worker's products run in its task threads, never on its event loop.
    """

    def __init__(self, interval_seconds: float = SPLIT_INTERVAL_SECONDS,
                 housekeeping_caller: bool = False) -> None:
        self.meter = memory.PeakMeter(interval_seconds)
        self.housekeeping_caller = housekeeping_caller

    def start(self) -> None:
        # The worker's task threads run beside the sampler: no switch-interval change.
        self.measurement = self.meter.start(switch_interval=False)
        self.io_start = self._io()
        self.housekeeping = _housekeeping_threads(self.housekeeping_caller)
        self.threads_start, self.threads_start_cost = _thread_read_calls(self.housekeeping)

    def _io(self) -> tuple[int, int, int, int]:
        """``_io_counters()`` and the meter's own read-call bytes so far, at one instant of
        its sampler."""
        with self.measurement.between_samples():
            return (*_io_counters(), self.measurement.own_read_call_bytes)

    def stop(self, name: str) -> ProcessPeak:
        try:
            threads_end, threads_end_cost = _thread_read_calls(self.housekeeping)
            io_end = self._io()
        finally:
            peak = self.measurement.stop()
        storage, calls, cost, own = self.io_start
        housekeeping = sum(threads_end[t] - self.threads_start[t] for t in threads_end
                           if t in self.threads_start)
        # The meter's readings that rchar counted and no housekeeping thread's delta holds:
        # /proc/self/io at the start, the threads' counters at the end, and at the start too
        # unless the calling thread (which read them after its own counter) is housekeeping.
        readings = cost + threads_end_cost + (
            0 if self.housekeeping_caller else self.threads_start_cost)
        return ProcessPeak(
            name=name, pid=os.getpid(), increment=peak.increment,
            anon_increment=peak.anon_increment, file_increment=peak.file_increment,
            baseline=peak.baseline,
            read_bytes=io_end[0] - storage,
            read_call_bytes=io_end[1] - calls - (io_end[3] - own) - housekeeping - readings,
            method=peak.method)


#: Threads whose reads are never a measured call's: dask's profiler of its event loop, which
#: reads the source file of each new frame it samples (``linecache``) every 10 ms.
HOUSEKEEPING_THREADS = frozenset({"Profile"})


def _housekeeping_threads(caller: bool) -> list[int]:
    """Native ids of this process's ``HOUSEKEEPING_THREADS``, the calling thread first when
    ``caller`` (its counter is read before the others': see ``ProcessMeter.stop``)."""
    ids = [threading.get_native_id()] if caller else []
    return ids + [t.native_id for t in threading.enumerate()
                  if t.name in HOUSEKEEPING_THREADS and t.native_id is not None
                  and t.native_id not in ids]


def _thread_read_calls(thread_ids: list[int]) -> tuple[dict[int, int], int]:
    """Each live thread's bytes read through read calls so far (``rchar`` of
    ``/proc/self/task/<id>/io``), and the bytes these readings returned."""
    counts, cost = {}, 0
    for tid in thread_ids:
        try:
            counters, size = reads.read_counters_and_cost(f"/proc/self/task/{tid}/io")
        except OSError:
            continue  # the thread has ended, or no per-task accounting
        counts[tid] = counters.read_call_bytes
        cost += size
    return counts, cost


# Meters running in this process (a worker), by the token of the measurement.
_RUNNING: dict[str, ProcessMeter] = {}


def _start_in_worker(token: str) -> int:
    meter = ProcessMeter(housekeeping_caller=True)  # Client.run: on the worker's event loop
    _RUNNING[token] = meter
    meter.start()
    return os.getpid()


def _stop_in_worker(token: str, dask_worker=None) -> dict | None:
    """This worker's figures, or None when its meter never started here (a worker that joined
    during the call: a restarted one, at a new address)."""
    name = dask_worker.address if dask_worker is not None else "worker"
    meter = _RUNNING.pop(token, None)
    return None if meter is None else dataclasses.asdict(meter.stop(name))


@dataclasses.dataclass(frozen=True)
class ClusterPeak:
    """Every process's :class:`ProcessPeak` over one call, the summed figures (bytes), and
    dask's ``MemorySampler`` over the same call: ``sampled_peak_bytes`` (its largest summed
    reading) and ``sampled_increment_bytes`` (that minus its first reading); 0 when it took no
    sample."""

    workers: tuple[ProcessPeak, ...]
    client: ProcessPeak
    sampled_peak_bytes: int
    sampled_increment_bytes: int
    sampled_count: int

    @property
    def processes(self) -> tuple[ProcessPeak, ...]:
        return (*self.workers, self.client)

    @property
    def increment(self) -> int:
        """Summed exact peaks of every process: the cluster's memory if every process peaked
        at once (an upper bound of the joint peak, exact per process)."""
        return sum(p.increment for p in self.processes)

    @property
    def anon_increment(self) -> int:
        return sum(p.anon_increment for p in self.processes)

    @property
    def file_increment(self) -> int:
        return sum(p.file_increment for p in self.processes)

    @property
    def worker_read_bytes(self) -> int:
        return sum(p.read_bytes for p in self.workers)

    @property
    def worker_read_call_bytes(self) -> int:
        return sum(p.read_call_bytes for p in self.workers)

    @property
    def method(self) -> str:
        methods = sorted({p.method for p in self.processes})
        return "cluster-" + "+".join(methods)

    def peak_memory(self) -> memory.PeakMemory:
        """The summed figures as a :class:`PeakMemory` (what one-machine figures hold)."""
        return memory.PeakMemory(
            increment=self.increment, anon_increment=self.anon_increment,
            file_increment=self.file_increment,
            baseline=sum(p.baseline for p in self.processes), method=self.method)

    def to_dict(self) -> dict:
        """JSON-safe: the per-process records and the summed figures, units in the names."""
        return {
            "workers": [dataclasses.asdict(p) for p in self.workers],
            "client": dataclasses.asdict(self.client),
            "increment_bytes": self.increment,
            "anon_increment_bytes": self.anon_increment,
            "file_increment_bytes": self.file_increment,
            "worker_read_bytes": self.worker_read_bytes,
            "worker_read_call_bytes": self.worker_read_call_bytes,
            "sampled_peak_bytes": self.sampled_peak_bytes,
            "sampled_increment_bytes": self.sampled_increment_bytes,
            "sampled_count": self.sampled_count,
            "method": self.method,
        }


def measure_cluster(client, fn: Callable[..., Any], /, *args: Any,
                    sampler_interval_seconds: float = SAMPLER_INTERVAL_SECONDS,
                    **kwargs: Any) -> tuple[Any, ClusterPeak]:
    """Run ``fn(*args, **kwargs)`` (which uses ``client``'s cluster) once; return its result
    and the :class:`ClusterPeak` of every worker process and of this one."""
    from distributed.diagnostics import MemorySampler

    token = uuid.uuid4().hex
    client.run(_start_in_worker, token)
    own = ProcessMeter()
    sampler = MemorySampler()
    try:
        own.start()
        with sampler.sample(token, client=client, measure="process",
                            interval=sampler_interval_seconds):
            result = fn(*args, **kwargs)
    except BaseException:
        # Stop the meters, but let the call's own error (a worker that left) be the one seen.
        with contextlib.suppress(Exception):
            own.stop("client")
            client.run(_stop_in_worker, token)
        raise
    own_peak = own.stop("client")
    workers = {address: figures for address, figures in client.run(_stop_in_worker, token).items()
               if figures is not None}
    samples = [value for _, value in sampler.samples.get(token, [])]
    peak = ClusterPeak(
        workers=tuple(ProcessPeak(**workers[address]) for address in sorted(workers)),
        client=own_peak,
        sampled_peak_bytes=int(max(samples)) if samples else 0,
        sampled_increment_bytes=int(max(samples) - samples[0]) if samples else 0,
        sampled_count=len(samples))
    return result, peak
