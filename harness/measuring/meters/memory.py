"""Peak-memory meter: the memory one call adds, not the whole process's high-water mark.

The meter itself lives in ``asv_bench_harness.memory`` (standard library only, shipped from
this repository as the ``asv_bench_harness`` distribution, whose asv benchmark types and pytest
marker measure with it): reset the kernel's high-water mark (``/proc/self/clear_refs``), run,
read ``VmHWM``; a thread samples ``/proc/self/statm`` every 0.5 ms for the anonymous and
file-backed parts. Read its docstring for the method and its platform branches.

What this module adds for the harness:

- ``PeakMeter``: the core's meter with a fallback where /proc is missing (method
  ``"sampled-psutil"``: psutil's RSS sampled; anonymous/file split unknown, 0), and
  ``measure_tree`` for this process plus its children (dask workers, method
  ``"tree-sampled"``).
- ``prefault``: take the VM's slow first touch of fresh memory out of later measurements.

All figures are bytes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil
from asv_bench_harness.memory import (
    DEFAULT_INTERVAL_SECONDS,
    PAGE_BYTES,
    MemorySnapshot,
    PeakMemory,
    Sampler,
    StatmReader,
    SwitchInterval,
    proc_status_readable,
    read_status,
    require_callable,
    trim_malloc_heap,
)
from asv_bench_harness.memory import PeakMeter as CorePeakMeter

__all__ = [
    "DEFAULT_INTERVAL_SECONDS",
    "MemorySnapshot",
    "PeakMemory",
    "PeakMeter",
    "Sampler",
    "StatmReader",
    "measure_peak",
    "measure_tree_peak",
    "prefault",
    "read_status",
    "trim_malloc_heap",
]

# Listing a process's descendants scans /proc; do it this often, not at every sample.
TREE_REFRESH_SECONDS = 0.02


def _read_psutil(pid: int | None = None) -> MemorySnapshot:
    try:
        info = psutil.Process(pid).memory_info()
    except psutil.Error as exc:  # gone, or not ours: the sampler skips it as an OSError
        raise ProcessLookupError(pid) from exc
    return MemorySnapshot(rss=int(info.rss), anon=0, file=0)


class PeakMeter(CorePeakMeter):
    """``asv_bench_harness.memory.PeakMeter`` (``measure``, ``start``/``stop``) with psutil as
    the fallback where /proc is missing, and ``measure_tree``. ``measure_peak`` and
    ``measure_tree_peak`` use a default instance."""

    fallback_method = "sampled-psutil"

    def _fallback_read(self, pid: int | None = None) -> MemorySnapshot:
        return _read_psutil(pid)

    def measure_tree(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> tuple[Any, PeakMemory]:
        """Like ``measure`` for this process plus all its descendants (e.g. dask workers).

        The figure is the peak of the sampled *sum* of their RSS (method ``"tree-sampled"``):
        the kernel keeps no joint high-water mark, so a child's spike shorter than the sampling
        interval, or a child that lives less than ``TREE_REFRESH_SECONDS``, can be missed. The
        calling process's own exact peak is used as a lower bound.
        """
        require_callable(fn)
        use_proc = proc_status_readable()
        statm = StatmReader()
        read = statm.read if use_proc else _read_psutil
        tree = _ProcessTree(psutil.Process(), TREE_REFRESH_SECONDS)
        sampler = Sampler(read, tree.pids, self.interval_seconds)
        can_reset = use_proc and os.access(self.clear_refs_path, os.W_OK)
        if self.trim_heap:
            trim_malloc_heap()
        sampler.start_and_wait()
        try:
            if can_reset:
                self._reset_high_water_mark()
            start = sampler.sample()
            own_start = read(None)
            with SwitchInterval(self.interval_seconds):
                result = fn(*args, **kwargs)
            own_end_hwm = read_status().hwm if can_reset else 0
            sampler.sample()
        finally:
            sampler.stop()
            statm.close()
        own_increment = own_end_hwm - own_start.rss if can_reset else 0
        return result, PeakMemory(
            increment=max(0, sampler.peak_rss - start.rss, own_increment),
            anon_increment=max(0, sampler.peak_anon - start.anon),
            file_increment=max(0, sampler.peak_file - start.file),
            baseline=start.rss,
            method="tree-sampled",
            samples=sampler.samples,
        )


class _ProcessTree:
    """This process and its descendants; the list is refreshed at most every ``refresh_seconds``."""

    def __init__(self, root: psutil.Process, refresh_seconds: float) -> None:
        self._clock = time.monotonic
        self._root = root
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._last_refresh = float("-inf")
        self._pids: list[int | None] = [None]

    def pids(self) -> list[int | None]:
        with self._lock:
            now = self._clock()
            if now - self._last_refresh >= self._refresh_seconds:
                try:
                    children = self._root.children(recursive=True)
                except psutil.Error:  # the tree changed while psutil walked it: keep the last list
                    children = None
                if children is not None:
                    self._pids = [None, *(child.pid for child in children)]
                self._last_refresh = now
            return list(self._pids)


_DEFAULT_METER = PeakMeter()


def measure_peak(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> tuple[Any, PeakMemory]:
    """Run ``fn(*args, **kwargs)`` once; return ``(result, PeakMemory)`` (bytes).

    ``increment`` is exact on Linux (``VmHWM`` after a ``clear_refs`` reset) and counts
    allocations of every thread of this process; ``method`` says which method was used.
    """
    return _DEFAULT_METER.measure(fn, *args, **kwargs)


def measure_tree_peak(
    fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> tuple[Any, PeakMemory]:
    """Like ``measure_peak`` for this process plus its child processes (sampled sum of RSS)."""
    return _DEFAULT_METER.measure_tree(fn, *args, **kwargs)


def prefault(nbytes_or_array: int | np.ndarray) -> None:
    """Take the VM's slow first touch of fresh memory out of later measurements.

    On these VMs the first touch of a guest page costs far more than later ones (600 ms for
    200 MB the first time, 22 ms after). Given a byte count, allocate that much, write one byte
    per page, and free it, so the pages the kernel hands out next are already backed. Given an
    array, touch each of its pages in place: writes (same values back) for a writable array of
    anonymous memory, reads for read-only arrays and memory maps (a write would dirty the file).
    """
    if isinstance(nbytes_or_array, np.ndarray):
        _touch_array(nbytes_or_array)
        return
    if isinstance(nbytes_or_array, bool) or not isinstance(nbytes_or_array, (int, np.integer)):
        raise TypeError(
            "prefault takes a byte count (int) or a numpy array, "
            f"got {type(nbytes_or_array).__name__}"
        )
    nbytes = int(nbytes_or_array)
    if nbytes < 0:
        raise ValueError(f"prefault needs a byte count >= 0, got {nbytes}")
    if nbytes == 0:
        return
    buffer = np.empty(nbytes, dtype=np.uint8)
    buffer[::PAGE_BYTES] = 1
    del buffer


def _is_memory_mapped(array: np.ndarray) -> bool:
    import mmap

    base: object = array
    while base is not None:
        if isinstance(base, (np.memmap, mmap.mmap)):
            return True
        base = getattr(base, "base", None)
    return False


def _touch_array(array: np.ndarray) -> None:
    if array.nbytes == 0:
        return
    if array.dtype.hasobject:
        return  # object arrays hold pointers; their pages are touched on creation
    if array.flags.c_contiguous:
        flat = array.reshape(-1)
    elif array.flags.f_contiguous:
        flat = array.T.reshape(-1)  # a view, where reshape(-1) of an F-ordered array copies
    else:
        # Non-contiguous views: read every element (rare; correctness over speed).
        np.add.reduce(array, axis=None)
        return
    raw = flat.view(np.uint8)
    page_stride = raw[::PAGE_BYTES]
    if array.flags.writeable and not _is_memory_mapped(array):
        # A write backs each page (a read would map the shared zero page); `x[...] = x` is
        # optimised away by numpy, an in-place ufunc is not.
        np.bitwise_or(page_stride, 0, out=page_stride)
    else:
        int(page_stride.sum(dtype=np.uint64))
