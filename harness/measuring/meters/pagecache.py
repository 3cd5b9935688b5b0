"""Cold/warm page-cache control: evict a file's cached pages, measure how much is cached, read
a file into the cache, fault a mapping's pages in.

``evict``, ``resident_fraction``, ``resident_bytes`` and ``CacheEvictionError`` are the meter's
own (``asv_bench_harness.pagecache``, standard library only, which the asv benchmark types use
too): ``evict`` flushes dirty pages (``fsync``) and asks the kernel to drop the file's clean
pages (``posix_fadvise(..., POSIX_FADV_DONTNEED)``), without root, but a live memory map keeps
its pages; ``resident_fraction`` asks ``mincore``. On a virtual disk, "cold" for this guest may
still be served by the host's cache. Here: ``read_sequentially`` and ``populate``.

A path may be a file or a directory (every regular file under it, e.g. a Zarr store).
"""

from __future__ import annotations

import ctypes
import mmap
import os

from asv_bench_harness.pagecache import (
    PAGE_BYTES,
    CacheEvictionError,
    evict,
    files_under,
    resident_bytes,
    resident_fraction,
)

from harness.measuring.meters import libc

__all__ = ["PAGE_BYTES", "CacheEvictionError", "evict", "read_sequentially", "resident_bytes",
           "resident_fraction"]


def read_sequentially(path: str | os.PathLike[str], buffer: bytearray | None = None) -> int:
    """Read the whole file (or every file under a directory) with read(2), in file order, into
    one reused ``buffer`` (default 8 MiB); return the bytes read. Brings it into the page
    cache."""
    buffer = buffer if buffer is not None else bytearray(8 * 1024 * 1024)
    total = 0
    for file in files_under(path, "read"):  # a directory (a zarr store): every file, in name order
        with open(file, "rb", buffering=0) as source:
            while n := source.readinto(buffer):
                total += n
    return total


#: Linux >= 5.14: fault a range of a mapping in, in one call (``MADV_POPULATE_READ``).
MADV_POPULATE_READ = 22


def populate(address: int, nbytes: int) -> None:
    """Fault the pages of [address, address + nbytes) in, reading them if not cached.

    One ``madvise(MADV_POPULATE_READ)`` call, through ctypes so the GIL is released: it runs
    in a helper thread while BLAS multiplies the previous block. Faulting from one thread in
    file order keeps the kernel's readahead sequential; BLAS's own threads fault two streams
    at once, which the per-file readahead state takes for random reads (measured cold:
    0.4-0.9 GB/s for ``mm @ x`` against 2.2 GB/s for a single-threaded row loop).
    Falls back to ``MADV_WILLNEED`` (start reading, do not map) on kernels without it.
    """
    start = address // PAGE_BYTES * PAGE_BYTES
    length = address + nbytes - start
    if length <= 0:
        return
    madvise = libc.function("madvise", ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                            ctypes.c_int)
    if madvise(start, length, MADV_POPULATE_READ) != 0:
        madvise(start, length, mmap.MADV_WILLNEED)
