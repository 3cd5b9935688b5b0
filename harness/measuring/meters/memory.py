"""Peak-memory meter: the memory one call adds, not the whole process's high-water mark.

Linux keeps an exact high-water mark of a process's resident set (``VmHWM`` in
``/proc/self/status``) and lets the process reset it to the current RSS by writing ``5`` to
``/proc/self/clear_refs`` (Linux >= 4.0). Reset, run, read: the increment is exact however short
the spike, and it counts every thread of the process. The kernel keeps no peak of the anonymous
and file-backed parts, so a thread samples ``/proc/self/statm`` (resident and shared pages)
every ``interval_seconds`` (default 0.5 ms; one read through a kept-open descriptor costs
a few microseconds) for those two figures.

Platform branches, in one place (``PeakMeter._method``):

- ``"clear_refs"``: the exact method above.
- ``"sampled-status"``: Linux where ``clear_refs`` is not writable; the increment is the peak of
  the sampled RSS (from /proc), so a spike shorter than the sampling interval can be missed.
- ``"sampled-psutil"``: elsewhere; psutil's RSS sampled; anonymous/file split unknown (0).

All figures are bytes.

Side effect: the reset also lowers the process's ``ru_maxrss`` (``getrusage``), which is what
asv's ``peakmem_`` benchmarks report; after a ``measure_peak`` it covers only what came after.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from harness.measuring.meters import libc

__all__ = [
    "PeakMemory",
    "PeakMeter",
    "measure_peak",
    "measure_tree_peak",
    "prefault",
    "trim_malloc_heap",
]

DEFAULT_INTERVAL_SECONDS = 0.0005
# Listing a process's descendants scans /proc; do it this often, not at every sample.
TREE_REFRESH_SECONDS = 0.02

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

_STATUS_FIELDS = re.compile(rb"^(VmRSS|VmHWM|RssAnon|RssFile):\s+(\d+) kB", re.MULTILINE)


@dataclass(frozen=True)
class PeakMemory:
    """What one call added to resident memory, in bytes.

    ``increment``: peak RSS during the call minus RSS at its start.
    ``anon_increment`` / ``file_increment``: the same for anonymous memory (heap, numpy buffers)
    and file-backed pages (memory maps, which the kernel can drop at will; shared memory
    counts here too, as statm lumps it in), both sampled.
    ``baseline``: RSS at the start. ``method``: how the peak was found (see the module doc).
    ``samples``: how many samples were taken during the call (the sampler's and two of the
    caller's, at the start and end).
    """

    increment: int
    anon_increment: int
    file_increment: int
    baseline: int
    method: str
    samples: int = 0


@dataclass(frozen=True)
class MemorySnapshot:
    """One reading of a process's memory, in bytes (``hwm`` is 0 where unknown)."""

    rss: int
    anon: int
    file: int
    hwm: int = 0


def _status_path(pid: int | None) -> str:
    return "/proc/self/status" if pid is None else f"/proc/{pid}/status"


def read_status(pid: int | None = None) -> MemorySnapshot:
    """Read RSS, RssAnon, RssFile and VmHWM of ``pid`` (None: this process) from /proc."""
    with open(_status_path(pid), "rb") as status:
        fields = {name: int(kib) * 1024 for name, kib in _STATUS_FIELDS.findall(status.read())}
    return MemorySnapshot(
        rss=fields.get(b"VmRSS", 0),
        anon=fields.get(b"RssAnon", 0),
        file=fields.get(b"RssFile", 0),
        hwm=fields.get(b"VmHWM", 0),
    )


class StatmReader:
    """Reads ``/proc/<pid>/statm`` through file descriptors kept open between samples.

    statm gives resident and shared (file-backed + shmem) pages; anonymous = resident - shared.
    A ``pread`` at offset 0 regenerates it: 1.3-2.7 us a sample here, against 26-44 us to open
    and parse ``status`` (``timeit`` of ``StatmReader().read`` and ``read_status``; the
    spread is the machine's load), so the sampler steals next to no CPU from the measured call.
    """

    def __init__(self) -> None:
        self._fds: dict[int | None, int] = {}

    def read(self, pid: int | None = None) -> MemorySnapshot:
        fd = self._fds.get(pid)
        if fd is None:
            fd = os.open("/proc/self/statm" if pid is None else f"/proc/{pid}/statm", os.O_RDONLY)
            self._fds[pid] = fd
        fields = os.pread(fd, 256, 0).split()
        if len(fields) < 3:  # the process has exited
            raise ProcessLookupError(pid)
        resident, shared = int(fields[1]) * PAGE_BYTES, int(fields[2]) * PAGE_BYTES
        return MemorySnapshot(rss=resident, anon=resident - shared, file=shared)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _read_psutil(pid: int | None = None) -> MemorySnapshot:
    info = psutil.Process(pid).memory_info()
    return MemorySnapshot(rss=int(info.rss), anon=0, file=0)


def _proc_status_readable() -> bool:
    try:
        read_status()
    except OSError:
        return False
    return True


class Sampler(threading.Thread):
    """Samples the summed memory of a set of processes until stopped, keeping the peaks."""

    def __init__(
        self,
        read: Callable[[int | None], MemorySnapshot],
        pids: Callable[[], Iterable[int | None]],
        interval_seconds: float,
    ) -> None:
        super().__init__(name="harness-memory-sampler", daemon=True)
        self._read = read
        self._pids = pids
        self._interval_seconds = interval_seconds
        self._stop_event = threading.Event()
        self._started_event = threading.Event()
        # sample() runs in this thread and, at the start and end of a call, in the caller's;
        # the readers it calls keep state (open file descriptors).
        self._lock = threading.Lock()
        self.peak_rss = self.peak_anon = self.peak_file = 0
        self.samples = 0

    def sample(self) -> MemorySnapshot:
        with self._lock:
            rss = anon = file = 0
            for pid in self._pids():
                try:
                    snap = self._read(pid)
                except (OSError, psutil.Error):
                    continue  # a child that exited between listing and reading
                rss += snap.rss
                anon += snap.anon
                file += snap.file
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_anon = max(self.peak_anon, anon)
            self.peak_file = max(self.peak_file, file)
            self.samples += 1
        return MemorySnapshot(rss=rss, anon=anon, file=file)

    def run(self) -> None:
        self._started_event.set()
        while not self._stop_event.wait(self._interval_seconds):
            self.sample()

    def start_and_wait(self) -> None:
        self.start()
        self._started_event.wait()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


class _SwitchInterval:
    """Let the sampler thread get the GIL at least every ``seconds`` while fn runs Python code.

    CPython hands the GIL over only every ``sys.getswitchinterval()`` (5 ms by default); numpy
    releases it during large operations, but a pure-Python ``fn`` would otherwise starve the
    sampler.
    """

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._saved = sys.getswitchinterval()

    def __enter__(self) -> None:
        sys.setswitchinterval(min(self._saved, self._seconds))

    def __exit__(self, *exc: object) -> None:
        sys.setswitchinterval(self._saved)


class PeakMeter:
    """Measures the peak memory added by one call. ``measure_peak`` uses a default instance.

    ``interval_seconds``: sampling period of the anonymous/file split (and of the whole figure
    under the sampled fallbacks). ``clear_refs_path``: the file whose writability decides the
    method; tests point it elsewhere to exercise the fallback. ``trim_heap``: hand memory that
    glibc keeps after ``free`` back to the kernel (``malloc_trim(0)``) before the baseline, so a
    call that re-allocates what an earlier one freed is still charged for it (otherwise a
    repeated 16 MiB allocation measures 0 bytes: glibc's dynamic mmap threshold moves it to the
    heap, whose freed pages stay resident).
    """

    def __init__(
        self,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        clear_refs_path: str | os.PathLike[str] = "/proc/self/clear_refs",
        trim_heap: bool = True,
    ) -> None:
        if not interval_seconds > 0:
            raise ValueError(
                f"interval_seconds must be a positive number of seconds, got {interval_seconds!r}"
            )
        self.interval_seconds = float(interval_seconds)
        self.clear_refs_path = Path(clear_refs_path)
        self.trim_heap = trim_heap

    def _method(self) -> str:
        if not _proc_status_readable():
            return "sampled-psutil"
        if os.access(self.clear_refs_path, os.W_OK):
            return "clear_refs"
        return "sampled-status"

    def _reset_high_water_mark(self) -> int:
        """Reset VmHWM to the current RSS; return the reset's generation number."""
        global _reset_generation
        # "5" resets VmHWM to the current RSS (Documentation/filesystems/proc.rst).
        with open(self.clear_refs_path, "w") as clear_refs:
            clear_refs.write("5")
        with _reset_lock:
            _reset_generation += 1
            return _reset_generation

    def measure(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> tuple[Any, PeakMemory]:
        """Run ``fn(*args, **kwargs)`` once; return its result and the ``PeakMemory`` it caused."""
        _require_callable(fn)
        method = self._method()
        statm = StatmReader()
        read = _read_psutil if method == "sampled-psutil" else statm.read
        sampler = Sampler(read, lambda: (None,), self.interval_seconds)
        if self.trim_heap:
            trim_malloc_heap()
        sampler.start_and_wait()  # its stack is touched before the baseline is taken
        try:
            generation = self._reset_high_water_mark() if method == "clear_refs" else 0
            start = sampler.sample()
            with _SwitchInterval(self.interval_seconds):
                result = fn(*args, **kwargs)
            sampler.sample()
            end_hwm = read_status().hwm if method == "clear_refs" else 0
        finally:
            sampler.stop()
            statm.close()
        peak_rss = sampler.peak_rss
        if method == "clear_refs":
            # VmHWM is exact; the sampled peak can only agree or be lower.
            peak_rss = max(peak_rss, end_hwm)
            if _reset_generation != generation:
                # A nested or concurrent measurement reset VmHWM after us: the part of our
                # peak before its reset is known only from our samples. Say so.
                method = "sampled-status (VmHWM reset by a nested measurement)"
        return result, PeakMemory(
            increment=max(0, peak_rss - start.rss),
            anon_increment=max(0, sampler.peak_anon - start.anon),
            file_increment=max(0, sampler.peak_file - start.file),
            baseline=start.rss,
            method=method,
            samples=sampler.samples,
        )

    def measure_tree(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> tuple[Any, PeakMemory]:
        """Like ``measure`` for this process plus all its descendants (e.g. dask workers).

        The figure is the peak of the sampled *sum* of their RSS (method ``"tree-sampled"``):
        the kernel keeps no joint high-water mark, so a child's spike shorter than the sampling
        interval, or a child that lives less than ``TREE_REFRESH_SECONDS``, can be missed. The
        calling process's own exact peak is used as a lower bound.
        """
        _require_callable(fn)
        use_proc = _proc_status_readable()
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
            with _SwitchInterval(self.interval_seconds):
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


def _require_callable(fn: object) -> None:
    if not callable(fn):
        raise TypeError(
            f"measure_peak needs a callable as its first argument (the operation to measure), "
            f"got {type(fn).__name__} {fn!r:.80}; wrap code in a function or lambda, "
            f"e.g. measure_peak(lambda: A @ x)"
        )


def trim_malloc_heap() -> bool:
    """Return freed heap memory to the kernel (glibc ``malloc_trim(0)``); False where absent.

    glibc keeps freed chunks resident for reuse, so a later allocation of the same size adds
    no RSS; trimming before a measurement charges each call for the memory it really needs.
    """
    try:
        malloc_trim = libc.function("malloc_trim", ctypes.c_int, ctypes.c_size_t)
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return False
    malloc_trim(0)
    return True


# Every VmHWM reset bumps this, so a measurement can tell that another one reset it meanwhile.
_reset_generation = 0
_reset_lock = threading.Lock()

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
