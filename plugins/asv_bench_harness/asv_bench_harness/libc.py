"""The C library through ctypes, loaded once: the system calls Python's ``mmap`` and ``os``
modules do not expose (``madvise(MADV_POPULATE_READ)`` on an address, ``mincore``) and glibc's
``malloc_trim``. ``harness.measuring.meters.libc`` is this module under the harness's name.

A call through ctypes releases the GIL, so a helper thread can fault pages in while another
thread multiplies. ``errno`` is kept for ``ctypes.get_errno()``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


@functools.cache
def function(name: str, restype, *argtypes):
    """The C library's function ``name`` with its prototype declared (one prototype per name).

    Raises ``OSError`` where the C library cannot be loaded and ``AttributeError`` where it
    lacks the function (``malloc_trim`` outside glibc).
    """
    func = getattr(_library(), name)
    func.restype = restype
    func.argtypes = list(argtypes)
    return func
