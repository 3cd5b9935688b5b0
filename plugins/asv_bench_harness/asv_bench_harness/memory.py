"""Peak-memory meter: the memory one call adds, not the whole process's high-water mark.

Linux keeps an exact high-water mark of a process's resident set (``VmHWM`` in
``/proc/self/status``) and lets the process reset it to the current RSS by writing ``5`` to
``/proc/self/clear_refs`` (Linux >= 4.0). Reset, run, read: the increment is exact however short
the spike, and it counts every thread of the process. The kernel keeps no peak of the anonymous
and file-backed parts, so a thread samples ``/proc/self/statm`` (resident and shared pages)
every ``interval_seconds`` (default 0.5 ms; one read through a kept-open descriptor costs
a few microseconds) for those two figures; where one part did not move, the other is the exact
increment less it (``attribute_exact_increment``).

Platform branches, in one place (``PeakMeter._method``):

- ``"clear_refs"``: the exact method above.
- ``"sampled-status"``: Linux where ``clear_refs`` is not writable; the increment is the peak of
  the sampled RSS (from /proc), so a spike shorter than the sampling interval can be missed.
- elsewhere (no ``/proc``): this standard-library core raises ``MeterUnavailableError``; a
  subclass may supply another reader (``fallback_method``, ``_fallback_read``), as the
  harness's meter does with psutil.

All figures are bytes. This module is the meter's one home: the harness
(``harness.measuring.meters.memory``), the asv benchmark types and the pytest marker of this
distribution all measure with it.

Side effect: the reset also lowers the process's ``ru_maxrss`` (``getrusage``), which is what
asv's ``peakmem_`` benchmarks report; after a measurement it covers only what came after.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asv_bench_harness import libc

__all__ = [
    "Measurement",
    "MemorySnapshot",
    "MeterUnavailableError",
    "PeakMemory",
    "PeakMeter",
    "Sampler",
    "StatmReader",
    "SwitchInterval",
    "measure_peak",
    "read_status",
    "trim_malloc_heap",
]

DEFAULT_INTERVAL_SECONDS = 0.0005

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

_STATUS_FIELDS = re.compile(rb"^(VmRSS|VmHWM|RssAnon|RssFile):\s+(\d+) kB", re.MULTILINE)


class MeterUnavailableError(RuntimeError):
    """This platform offers none of the meter's methods (no readable ``/proc/self/status``)."""


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
    ``bytes_read`` counts the bytes its preads returned: a process's ``rchar`` (``reads``)
    counts them too, and a reader of that counter subtracts them.
    """

    def __init__(self) -> None:
        self._fds: dict[int | None, int] = {}
        self.bytes_read = 0

    def read(self, pid: int | None = None) -> MemorySnapshot:
        fd = self._fds.get(pid)
        if fd is None:
            fd = os.open("/proc/self/statm" if pid is None else f"/proc/{pid}/statm", os.O_RDONLY)
            self._fds[pid] = fd
        text = os.pread(fd, 256, 0)
        self.bytes_read += len(text)
        fields = text.split()
        if len(fields) < 3:  # the process has exited
            raise ProcessLookupError(pid)
        resident, shared = int(fields[1]) * PAGE_BYTES, int(fields[2]) * PAGE_BYTES
        return MemorySnapshot(rss=resident, anon=resident - shared, file=shared)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def proc_status_readable() -> bool:
    """Whether ``/proc/self/status`` can be read (Linux, /proc mounted)."""
    try:
        read_status()
    except OSError:
        return False
    return True


class Sampler(threading.Thread):
    """Samples the summed memory of a set of processes until stopped, keeping the peaks.

    ``read`` raises ``OSError`` for a process that is gone; such a process is left out of that
    sample.
    """

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
                except OSError:
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


class SwitchInterval:
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
    under the sampled fallback). ``clear_refs_path``: the file whose writability decides the
    method; tests point it elsewhere to exercise the fallback. ``trim_heap``: hand memory that
    glibc keeps after ``free`` back to the kernel (``malloc_trim(0)``) before the baseline, so a
    call that re-allocates what an earlier one freed is still charged for it (otherwise a
    repeated 16 MiB allocation measures 0 bytes: glibc's dynamic mmap threshold moves it to the
    heap, whose freed pages stay resident).

    ``measure(fn)`` measures one call; ``start()`` ... ``stop()`` measures whatever runs in
    between (a pytest test body).
    """

    #: The method used where /proc is not readable (None: none, the meter is unavailable).
    fallback_method: str | None = None

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
        if not proc_status_readable():
            if self.fallback_method is None:
                raise MeterUnavailableError(
                    "the memory meter reads Linux's /proc/self/status, which is not readable "
                    f"here (platform {sys.platform}); it measures on Linux only"
                )
            return self.fallback_method
        if os.access(self.clear_refs_path, os.W_OK):
            return "clear_refs"
        return "sampled-status"

    def _fallback_read(self, pid: int | None = None) -> MemorySnapshot:
        raise MeterUnavailableError("no reader of memory without /proc")

    def _reset_high_water_mark(self) -> int:
        """Reset VmHWM to the current RSS; return the reset's generation number."""
        global _reset_generation
        # "5" resets VmHWM to the current RSS (Documentation/filesystems/proc.rst).
        with open(self.clear_refs_path, "w") as clear_refs:
            clear_refs.write("5")
        with _reset_lock:
            _reset_generation += 1
            return _reset_generation

    def start(self, *, switch_interval: bool = True) -> Measurement:
        """Begin measuring what this process adds from now on; ``stop()`` the result.

        ``switch_interval``: let the sampler take the GIL every ``interval_seconds`` until
        ``stop`` (``SwitchInterval``), for code that runs Python in this thread meanwhile.
        """
        measurement = Measurement(self, switch_interval)
        measurement._begin()
        return measurement

    def measure(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> tuple[Any, PeakMemory]:
        """Run ``fn(*args, **kwargs)`` once; return its result and the ``PeakMemory`` it caused."""
        require_callable(fn)
        measurement = self.start()
        try:
            result = fn(*args, **kwargs)
        except BaseException:
            measurement.cancel()
            raise
        return result, measurement.stop()


class Measurement:
    """One measurement in progress (``PeakMeter.start``): ``stop()`` returns its
    ``PeakMemory``; ``cancel()`` ends it without a figure. Either one, once."""

    def __init__(self, meter: PeakMeter, switch_interval: bool) -> None:
        self.method = meter._method()
        self._meter = meter
        self._statm = StatmReader()
        read = meter._fallback_read if self.method == meter.fallback_method else self._statm.read
        self._sampler = Sampler(read, lambda: (None,), meter.interval_seconds)
        self._switch = SwitchInterval(meter.interval_seconds) if switch_interval else None
        self._generation = 0
        self._start = MemorySnapshot(0, 0, 0)
        self._running = False

    def _begin(self) -> None:
        if self._meter.trim_heap:
            trim_malloc_heap()
        self._sampler.start_and_wait()  # its stack is touched before the baseline is taken
        self._running = True
        try:
            if self.method == "clear_refs":
                self._generation = self._meter._reset_high_water_mark()
            self._start = self._sampler.sample()
        except BaseException:
            self.cancel()
            raise
        if self._switch is not None:
            self._switch.__enter__()

    @contextlib.contextmanager
    def between_samples(self) -> Iterator[None]:
        """No sample is taken inside: for reading a counter (``own_read_call_bytes`` and the
        process's ``rchar``) at one instant of the sampler's reads."""
        with self._sampler._lock:
            yield

    @property
    def own_read_call_bytes(self) -> int:
        """Bytes the sampler's read calls have returned so far (its ``statm`` samples): part
        of the process's ``rchar`` that is the meter's, not the measured call's."""
        return self._statm.bytes_read

    def cancel(self) -> None:
        """Stop the sampler and put the switch interval back; no figure."""
        if not self._running:
            return
        self._running = False
        try:
            if self._switch is not None:
                self._switch.__exit__()
        finally:
            self._sampler.stop()
            self._statm.close()

    def stop(self) -> PeakMemory:
        """End the measurement; the memory added since ``start`` (bytes)."""
        if not self._running:
            raise RuntimeError("this measurement has already ended")
        try:
            if self._switch is not None:
                self._switch.__exit__()
                self._switch = None
            self._sampler.sample()
            end_hwm = read_status().hwm if self.method == "clear_refs" else 0
        finally:
            self.cancel()
        sampler, method = self._sampler, self.method
        peak_rss = sampler.peak_rss
        if method == "clear_refs":
            # VmHWM is exact; the sampled peak can only agree or be lower.
            peak_rss = max(peak_rss, end_hwm)
            if _reset_generation != self._generation:
                # A nested or concurrent measurement reset VmHWM after us: the part of our
                # peak before its reset is known only from our samples. Say so.
                method = "sampled-status (VmHWM reset by a nested measurement)"
        increment = max(0, peak_rss - self._start.rss)
        anon = max(0, sampler.peak_anon - self._start.anon)
        file = max(0, sampler.peak_file - self._start.file)
        if method == "clear_refs":
            anon, file = attribute_exact_increment(increment, anon, file)
        return PeakMemory(
            increment=increment,
            anon_increment=anon,
            file_increment=file,
            baseline=self._start.rss,
            method=method,
            samples=sampler.samples,
        )


#: A part (anonymous or file-backed) whose sampled increment stays within this many bytes is
#: taken not to have moved during the call.
QUIET_PART_BYTES = 1 << 20


def attribute_exact_increment(increment: int, anon: int, file: int) -> tuple[int, int]:
    """The (anonymous, file-backed) increments, in bytes, given the exact whole ``increment``
    and the two sampled ones: when one part stayed within ``QUIET_PART_BYTES`` in every sample,
    the exact increment less it belongs to the other.

    Why: the sampler runs only when it gets the GIL, so a part that rises and falls between two
    samples is missed, e.g. a 64 MiB bytearray freed microseconds after its C call returns
    (sampled 0 in one of two asv runs here), or the last pages of a map faulted in while the
    reading thread held the GIL and unmapped right after (67 to 100 MB of a 100 MB file in
    twenty runs). The kernel's exact high-water mark still saw them. Where both parts moved,
    the sampled figures stand (each at most its true peak).
    """
    if file <= QUIET_PART_BYTES:
        anon = max(anon, increment - file)
    elif anon <= QUIET_PART_BYTES:
        file = max(file, increment - anon)
    return anon, file


def require_callable(fn: object) -> None:
    """A ``TypeError`` that names the fix when ``fn`` (the operation to measure) is not
    callable."""
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
