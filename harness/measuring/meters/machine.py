"""The machine a figure was measured on: a fingerprint, and its roofline (memory and disk limits).

``fingerprint()`` gathers what can change a figure: CPU, cores, RAM, kernel, the data
directory's filesystem and free space, Python and library versions, HDF5's default chunk cache,
and BLAS threads. ``roofline()`` measures, in a few seconds, the two ceilings a matvec runs
against: memory read bandwidth (a large in-RAM ``A @ x``) and cold sequential disk read
bandwidth (a scratch file written, evicted from the page cache, read, deleted). Bandwidths are
GB/s (1e9 bytes per second).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from harness.measuring.meters.memory import prefault
from harness.measuring.meters.pagecache import (
    evict,
    populate,
    read_sequentially,
    resident_fraction,
)
from harness.measuring.storage.datasets import default_root

__all__ = ["Roofline", "default_data_dir", "fingerprint", "roofline"]

MiB = 1 << 20
# Big enough to dwarf the CPU caches (tens of MiB), small enough to take well under a second.
MEMORY_PROBE_BYTES = 512 * MiB
# "A few hundred MB": long enough to average out the disk's ramp-up, short enough for seconds.
DISK_PROBE_BYTES = 384 * MiB
DISK_READ_BLOCK_BYTES = 8 * MiB
# Each memory pass takes ~20 ms; other processes only ever slow a pass, so take many.
PROBE_REPEATS = 10
DISK_PROBE_REPEATS = 3


class DataDirError(OSError):
    """The data directory cannot hold the disk probe's scratch file."""


@dataclass(frozen=True)
class Roofline:
    """This machine's ceilings, measured now. Bandwidths in GB/s (1e9 bytes/s), sizes in bytes.

    ``memory_read_gbps``: float32 ``A @ x`` over ``memory_probe_bytes`` in RAM with the BLAS's
    threads (the dense matvec's own ceiling); best of ``repeats`` passes (noise from other
    processes only slows a pass), with the median beside it in ``memory_read_median_gbps``.
    ``memory_read_one_thread_gbps``: ``numpy.sum`` of the same bytes (one core).
    ``disk_read_gbps``: cold reads of a ``disk_probe_bytes`` scratch file in ``data_dir``
    after ``evict``, in each of the read patterns the out-of-core strategies use
    (``DISK_PATTERNS``), ``disk_repeats`` passes each; the best pass, so that no strategy's
    cold read beats its ceiling by reading in a faster pattern (``disk_read_median_gbps``:
    the median pass; ``disk_best_pattern``: the pattern of the best pass).
    ``disk_resident_before_read`` is the largest page-cache fraction seen just before a pass
    (should be ~0). On a virtual disk the host may still serve "cold" reads from its own
    cache: this guest cannot tell.
    """

    memory_read_gbps: float
    disk_read_gbps: float
    memory_read_one_thread_gbps: float
    memory_read_median_gbps: float
    memory_probe_bytes: int
    disk_probe_bytes: int
    disk_resident_before_read: float
    disk_read_seconds: tuple[float, ...]
    data_dir: str
    probe_seconds: float
    disk_read_median_gbps: float | None = None
    disk_best_pattern: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field."""
        record = asdict(self)
        record["disk_read_seconds"] = list(self.disk_read_seconds)
        return record


def default_data_dir() -> Path:
    """Where datasets live: ``harness.measuring.storage.datasets.default_root()`` ($HARNESS_DATA_DIR first)."""
    return default_root()


# ---------------------------------------------------------------- fingerprint


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _hdf5_facts() -> dict[str, Any]:
    try:
        import h5py
    except ImportError:
        return {"h5py": None, "hdf5": None, "hdf5_default_chunk_cache_bytes": None}
    # What h5py.File uses when rdcc_nbytes is not given: the library's file-access default.
    _mdc, rdcc_nslots, rdcc_nbytes, rdcc_w0 = h5py.h5p.create(h5py.h5p.FILE_ACCESS).get_cache()
    return {
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "hdf5_default_chunk_cache_bytes": int(rdcc_nbytes),
        "hdf5_default_chunk_cache_slots": int(rdcc_nslots),
        "hdf5_default_chunk_cache_w0": float(rdcc_w0),
    }


def _thread_pools() -> list[dict[str, Any]]:
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "num_threads", "version", "architecture", "filepath")
    return [{key: pool.get(key) for key in keys} for pool in threadpool_info()]


def _filesystem(path: Path) -> dict[str, Any]:
    """Filesystem type, device and space of the mount holding ``path`` (its nearest existing
    ancestor, so a data directory not made yet still tells where it would go)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    resolved = existing.resolve()
    mount = max(
        (part for part in psutil.disk_partitions(all=True)
         if resolved == Path(part.mountpoint) or Path(part.mountpoint) in resolved.parents),
        key=lambda part: len(part.mountpoint),
        default=None,
    )
    usage = shutil.disk_usage(existing)
    return {
        "path": str(path),
        "exists": path.exists(),
        "mountpoint": mount.mountpoint if mount else None,
        "fstype": mount.fstype if mount else None,
        "device": mount.device if mount else None,
        "total_bytes": usage.total,
        "free_bytes": usage.free,
    }


def _transparent_hugepages() -> str | None:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as setting:
            return setting.read().strip()
    except OSError:
        return None


# Environment variables that change thread counts or BLAS kernels, hence timings.
_RELEVANT_ENV = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
    "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "BLOSC_NTHREADS", "HDF5_PLUGIN_PATH",
    "HARNESS_DATA_DIR",
)


def fingerprint(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Everything about this machine and software stack that can move a figure (JSON-safe).

    Sizes in bytes. ``data_dir`` defaults to ``default_data_dir()``.
    """
    data_path = Path(data_dir) if data_dir is not None else default_data_dir()
    memory = psutil.virtual_memory()
    try:
        usable_cores = len(os.sched_getaffinity(0))
    except AttributeError:
        usable_cores = os.cpu_count()
    return {
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "machine": platform.machine(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": usable_cores,
        "ram_bytes": int(memory.total),
        "ram_available_bytes": int(memory.available),
        "swap_bytes": int(psutil.swap_memory().total),
        "os": platform.system(),
        "kernel": platform.release(),
        "transparent_hugepages": _transparent_hugepages(),
        "data_dir": _filesystem(data_path),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "numpy": np.__version__,
        "scipy": _version("scipy"),
        **_hdf5_facts(),
        "hdf5plugin": _version("hdf5plugin"),
        "psutil": psutil.__version__,
        "threadpoolctl": _version("threadpoolctl"),
        "harness": _version("harness"),
        "thread_pools": _thread_pools(),
        "environment": {name: os.environ[name] for name in _RELEVANT_ENV if name in os.environ},
    }


# ---------------------------------------------------------------- roofline


def _pass_seconds(operation: Callable[[], object], repeats: int) -> list[float]:
    operation()  # warm-up: page tables, BLAS thread start
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        operation()
        timings.append(time.perf_counter() - started)
    return timings


def _memory_probe(nbytes: int, repeats: int) -> tuple[float, float, float, int]:
    """(best and median BLAS gemv GB/s, best one-core sum GB/s, bytes read) over ~``nbytes``
    of float32 in RAM."""
    ncols = 4096
    nrows = max(1, nbytes // (4 * ncols))
    matrix = np.ones((nrows, ncols), dtype=np.float32)
    prefault(matrix)
    vector = np.ones(ncols, dtype=np.float32)
    read_bytes = matrix.nbytes
    gemv_seconds = _pass_seconds(lambda: matrix @ vector, repeats)
    sum_seconds = _pass_seconds(lambda: matrix.sum(dtype=np.float32), repeats)
    return (
        read_bytes / min(gemv_seconds) / 1e9,
        read_bytes / float(np.median(gemv_seconds)) / 1e9,
        read_bytes / min(sum_seconds) / 1e9,
        read_bytes,
    )


def _usable_data_dir(data_dir: Path, nbytes: int) -> Path:
    if data_dir.exists() and not data_dir.is_dir():
        raise DataDirError(
            f"the data directory {str(data_dir)!r} is not a directory; pass a writable "
            "directory (--data-dir, or set HARNESS_DATA_DIR)"
        )
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(
            exc.errno,
            f"cannot create the data directory {str(data_dir)!r} ({exc.strerror}); pass a "
            "writable directory (--data-dir, or set HARNESS_DATA_DIR)",
        ) from exc
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise DataDirError(
            f"the data directory {str(data_dir)!r} is not writable, so the disk probe cannot "
            "write its scratch file there; pass a writable directory (--data-dir, or set "
            "HARNESS_DATA_DIR)"
        )
    free = shutil.disk_usage(data_dir).free
    if free < 2 * nbytes:
        raise DataDirError(
            f"the data directory {str(data_dir)!r} has {free / MiB:.0f} MiB free; the disk "
            f"probe needs {2 * nbytes / MiB:.0f} MiB; free space or pass another --data-dir"
        )
    return data_dir


def _write_probe_file(path: Path, nbytes: int) -> None:
    # A multiplicative hash of the word index: no two blocks alike, so a deduplicating or
    # compressing virtual disk cannot shortcut the read.
    block_words = DISK_READ_BLOCK_BYTES // 8
    with open(path, "wb") as out:
        for first_word in range(0, (nbytes + 7) // 8, block_words):
            words = np.arange(first_word, first_word + block_words, dtype=np.uint64)
            words *= np.uint64(0x9E3779B97F4A7C15)
            out.write(words.view(np.uint8)[: nbytes - first_word * 8])
        out.flush()
        os.fsync(out.fileno())


_PROBE_PREFIX = ".roofline-probe-"
# A probe takes seconds; an older scratch file was left by a killed run, not a live probe.
_STALE_PROBE_SECONDS = 600.0


def _remove_stale_probe_files(directory: Path) -> None:
    for stale in directory.glob(f"{_PROBE_PREFIX}*.tmp"):
        try:
            if time.time() - stale.stat().st_mtime > _STALE_PROBE_SECONDS:
                stale.unlink()
        except OSError:
            pass  # another process removed it first


def _read_pattern(path: Path, buffer: bytearray) -> int:
    """Sequential ``readinto`` of ``DISK_READ_BLOCK_BYTES`` blocks (hdf5-blocked, hdf5-direct)."""
    return read_sequentially(path, buffer)


def _populate_pattern(path: Path, buffer: bytearray) -> int:
    """memmap-blocked's pattern: a read-only map advised sequential, faulted in block by
    block with ``MADV_POPULATE_READ`` from one thread."""
    import mmap

    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        mapping.madvise(mmap.MADV_SEQUENTIAL)
        view = np.frombuffer(mapping, dtype=np.uint8)
        base = view.ctypes.data
        for start in range(0, len(mapping), DISK_READ_BLOCK_BYTES):
            populate(base + start, min(DISK_READ_BLOCK_BYTES, len(mapping) - start))
        del view
        return len(mapping)
    finally:
        mapping.close()


#: Read patterns of the disk probe: name -> reader(path, buffer) returning the bytes read.
DISK_PATTERNS = {"read 8 MiB": _read_pattern, "mmap populate 8 MiB": _populate_pattern}


def _disk_probe(data_dir: Path, nbytes: int, repeats: int
                ) -> tuple[float, float, list[float], float, str]:
    """(best GB/s, worst residency before a pass, seconds per pass, median GB/s, the best
    pass's pattern) of cold reads, ``repeats`` passes in each of ``DISK_PATTERNS``."""
    directory = _usable_data_dir(data_dir, nbytes)
    _remove_stale_probe_files(directory)
    try:
        fd, name = tempfile.mkstemp(prefix=_PROBE_PREFIX, suffix=".tmp", dir=directory)
    except OSError as exc:
        raise DataDirError(
            exc.errno,
            f"cannot write the disk probe's scratch file in {str(directory)!r} ({exc.strerror}); "
            "pass a writable directory (--data-dir, or set HARNESS_DATA_DIR)",
        ) from exc
    os.close(fd)
    path = Path(name)
    try:
        try:
            _write_probe_file(path, nbytes)
        except OSError as exc:
            raise DataDirError(
                exc.errno,
                f"writing the disk probe's {nbytes / MiB:.0f} MiB scratch file in "
                f"{str(directory)!r} failed ({exc.strerror}); free space or pass another "
                "--data-dir",
            ) from exc
        buffer = bytearray(DISK_READ_BLOCK_BYTES)
        seconds: list[float] = []
        patterns: list[str] = []
        worst_residency = 0.0
        for _ in range(repeats):  # interleaved: load that comes and goes hits every pattern
            for pattern, reader in DISK_PATTERNS.items():
                evict(path)
                worst_residency = max(worst_residency, resident_fraction(path))
                started = time.perf_counter()
                read = reader(path, buffer)
                seconds.append(time.perf_counter() - started)
                patterns.append(pattern)
                if read != nbytes:
                    raise OSError(f"disk probe read {read} bytes of {nbytes} from {name!r}")
    finally:
        path.unlink(missing_ok=True)  # the scratch file never outlives the probe
    best = int(np.argmin(seconds))
    return (nbytes / seconds[best] / 1e9, worst_residency, seconds,
            nbytes / float(np.median(seconds)) / 1e9, patterns[best])


def roofline(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    memory_bytes: int = MEMORY_PROBE_BYTES,
    disk_bytes: int = DISK_PROBE_BYTES,
    repeats: int = PROBE_REPEATS,
    disk_repeats: int = DISK_PROBE_REPEATS,
) -> Roofline:
    """Measure memory and cold-disk read bandwidth now (a few seconds; see ``Roofline``).

    The disk probe writes a scratch file of ``disk_bytes`` in ``data_dir`` (default
    ``default_data_dir()``, created if missing) and deletes it afterwards.
    """
    for name, value in (("memory_bytes", memory_bytes), ("disk_bytes", disk_bytes)):
        if value < MiB:
            raise ValueError(f"{name} must be at least 1 MiB to measure a bandwidth, got {value}")
    for name, value in (("repeats", repeats), ("disk_repeats", disk_repeats)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    started = time.perf_counter()
    disk_gbps, residency, disk_seconds, disk_median_gbps, disk_pattern = _disk_probe(
        directory, disk_bytes, disk_repeats)
    memory_gbps, memory_median_gbps, one_thread_gbps, memory_read_bytes = _memory_probe(
        memory_bytes, repeats
    )
    return Roofline(
        memory_read_gbps=memory_gbps,
        disk_read_gbps=disk_gbps,
        memory_read_one_thread_gbps=one_thread_gbps,
        memory_read_median_gbps=memory_median_gbps,
        memory_probe_bytes=memory_read_bytes,
        disk_probe_bytes=disk_bytes,
        disk_resident_before_read=residency,
        disk_read_seconds=tuple(disk_seconds),
        data_dir=str(directory),
        probe_seconds=time.perf_counter() - started,
        disk_read_median_gbps=disk_median_gbps,
        disk_best_pattern=disk_pattern,
    )
