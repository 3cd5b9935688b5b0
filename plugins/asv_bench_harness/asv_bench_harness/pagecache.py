"""Cold page cache: evict a file's cached pages, and measure how much of it is cached.

``evict`` flushes dirty pages (``fsync``) and then asks the kernel to drop the file's clean pages
(``posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)``). It needs no root, but the kernel keeps pages
that a live memory map (``numpy.memmap``, h5py's core driver, another process) still holds.
``resident_fraction`` maps the file without touching it and asks ``mincore`` which pages are in
RAM. On a virtual disk, "cold" for this guest may still be served by the host's cache.

A path may be a file or a directory (every regular file under it, e.g. a Zarr store).
``harness.measuring.meters.pagecache`` re-exports these names beside its own.
"""

from __future__ import annotations

import ctypes
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

from asv_bench_harness import libc

__all__ = ["CacheEvictionError", "evict", "resident_bytes", "resident_fraction"]

PAGE_BYTES = mmap.PAGESIZE
# mincore is asked about this many bytes at a time, so its result vector stays small.
_MINCORE_WINDOW_BYTES = 1 << 30
# mincore defines only the least significant bit of each byte: these bytes have it clear.
_NOT_RESIDENT = bytes(range(0, 256, 2))


class CacheEvictionError(RuntimeError):
    """The file's pages stayed in the page cache after an eviction was asked for."""


def files_under(path: str | os.PathLike[str], action: str) -> list[Path]:
    """The regular files ``path`` names (itself, or every file under a directory);
    ``FileNotFoundError`` saying what could not be done (``action``) when it does not exist."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"cannot {action} {str(path)!r}: no such file or directory; "
            "check the path (materialize the dataset first if it is one)"
        )
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def evict(path: str | os.PathLike[str], *, require_below: float | None = None) -> None:
    """Drop ``path``'s pages from the page cache (fsync first so that dirty pages can go too).

    Pages held by a live memory map of the file stay cached: close every map first. With
    ``require_below`` (a fraction in [0, 1]), check the result and raise ``CacheEvictionError``
    when more than that fraction of the file is still resident.
    """
    files = files_under(path, "evict from the page cache")
    for file in files:
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)  # DONTNEED skips dirty pages
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    if require_below is not None:
        fraction = resident_fraction(path)
        if fraction >= require_below:
            raise CacheEvictionError(
                f"{fraction:.1%} of {os.fspath(path)!r} is still in the page cache after "
                f"eviction (wanted < {require_below:.1%}); a live memory map of it (numpy.memmap, "
                "h5py, another process) keeps its pages: close it before evicting"
            )


def resident_fraction(path: str | os.PathLike[str]) -> float:
    """Fraction in [0, 1] of ``path``'s pages that are in the page cache (0.0 for empty files)."""
    resident, total = 0, 0
    for file in files_under(path, "read the page-cache residency of"):
        file_resident, file_pages = _resident_pages(file)
        resident += file_resident
        total += file_pages
    return resident / total if total else 0.0


def resident_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes of ``path`` in the page cache (whole pages, so at most the size rounded up)."""
    pages = sum(_resident_pages(file)[0] for file in files_under(path, "read the residency of"))
    return pages * PAGE_BYTES


def can_see_residency(file: str | os.PathLike[str]) -> bool:
    """Whether ``mincore`` tells the truth about ``file`` to this process: since Linux 5.2 it
    reports every page resident unless the caller owns the file or may write it (a
    side-channel fix)."""
    stat = os.stat(file)
    return os.geteuid() == 0 or stat.st_uid == os.geteuid() or os.access(file, os.W_OK)


_MAP_FAILED = ctypes.c_void_p(-1).value


def _windows(size: int) -> Iterator[tuple[int, int]]:
    for offset in range(0, size, _MINCORE_WINDOW_BYTES):
        yield offset, min(_MINCORE_WINDOW_BYTES, size - offset)


def _resident_pages(file: Path) -> tuple[int, int]:
    """(resident pages, total pages) of one regular file, via mmap + mincore."""
    if not can_see_residency(file):
        raise PermissionError(
            f"cannot read the page-cache residency of {str(file)!r}: mincore only reports it for "
            "files you own or may write (Linux >= 5.2); run as the file's owner or make it writable"
        )
    # Through the C library: Python's mmap object has no address to hand to mincore.
    c_mmap = libc.function("mmap", ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                           ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
    c_munmap = libc.function("munmap", ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t)
    c_mincore = libc.function("mincore", ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                              ctypes.POINTER(ctypes.c_ubyte))
    fd = os.open(file, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        resident = 0
        for offset, length in _windows(size):
            # Mapping does not fault pages in; mincore then reads the page cache's state.
            address = c_mmap(None, length, mmap.PROT_READ, mmap.MAP_SHARED, fd, offset)
            if address in (None, _MAP_FAILED):
                err = ctypes.get_errno()
                raise OSError(err, f"mmap of {str(file)!r} for mincore failed: {os.strerror(err)}")
            try:
                pages = (length + PAGE_BYTES - 1) // PAGE_BYTES
                vector = (ctypes.c_ubyte * pages)()
                if c_mincore(address, length, vector) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"mincore on {str(file)!r} failed: {os.strerror(err)}")
                resident += len(bytes(vector).translate(None, _NOT_RESIDENT))
            finally:
                c_munmap(address, length)
    finally:
        os.close(fd)
    return resident, (size + PAGE_BYTES - 1) // PAGE_BYTES
