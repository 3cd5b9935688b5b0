"""The C library through ctypes, loaded once (``function(name, restype, *argtypes)``): the
meter's own module (``asv_bench_harness.libc``, standard library only) under the harness's
name, for the calls ``os`` and ``mmap`` do not expose (``madvise`` on an address, ``mincore``,
glibc's ``malloc_trim``)."""

from __future__ import annotations

from asv_bench_harness.libc import function

__all__ = ["function"]
