"""Inflate (deflate, zlib and gzip containers) at the fastest rate an installed library offers.

Three libraries inflate the same streams, and all three release the GIL while they work:
zlib-ng (the ``zlib-ng`` package, module ``zlib_ng``), ISA-L (the ``isal`` package, module
``isal.isal_zlib``) and the standard library's ``zlib``. :func:`best` picks the first one
importable in :data:`PREFERENCE`; a missing package falls back to the next, and ``zlib`` is
always there.

Measured on this project's own chunks (``tools/inflate_rates.py``: 10 chunks of 10 x 100000
float32 "smooth" values, 4 MB decoded each, inflated into a reused buffer; GB/s of decoded
output on one core, the best of 7 passes, three rounds, on a 2-core VM shared with other jobs)::

    chunks                                       ratio  zlib       isal       zlib-ng
    shuffle + deflate 1 (HDF5 gzip-1-shuffle)    1.73   0.71-0.81  1.52-1.96  1.95-2.10
    deflate 1, gzip container (zarr gzip-1)      1.14   0.20-0.22  0.32       0.28
    deflate 4, gzip container (zarr gzip-4)      1.15   0.24       0.33-0.34  0.30-0.31

zlib-ng is first: it is the faster on the shuffled chunks, which are the ones that compress (the
harness's compressed-chunk question), and within 15 % of ISA-L on the unshuffled ones, which
barely compress. Both run 1.4-2.7x zlib.

Memory: zlib-ng and ISA-L return a new ``bytes`` object that is then copied into the caller's
buffer, so one decoding call holds one decoded chunk besides its buffers
(:func:`working_bytes`); the zlib fallback inflates straight into the buffer through the zlib
library's ``uncompress`` (ctypes releases the GIL) where the stream is a zlib one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import importlib
import zlib
from collections.abc import Callable

import numpy as np

#: ``wbits`` of a zlib stream (HDF5's deflate filter) and of a gzip one (zarr's gzip codec).
ZLIB_WBITS = 15
GZIP_WBITS = 31
#: Libraries in order of preference: (name, module); the last is always importable.
PREFERENCE = (("zlib-ng", "zlib_ng.zlib_ng"), ("isal", "isal.isal_zlib"), ("zlib", "zlib"))
#: zlib's inflate state and 32 KiB window (bytes), held by every library during one call.
INFLATE_STATE_BYTES = 64 << 10


@dataclasses.dataclass(frozen=True)
class Inflater:
    """One library's ``decompress(data, wbits, bufsize) -> bytes``, the error it raises on a
    damaged stream, and its name."""

    name: str
    decompress: Callable[..., bytes]
    error: type[Exception]


@functools.lru_cache(maxsize=1)
def best() -> Inflater:
    """The first importable library of :data:`PREFERENCE`."""
    for name, module in PREFERENCE:
        try:
            library = importlib.import_module(module)
        except ImportError:
            continue
        return Inflater(name, library.decompress, library.error)
    return Inflater("zlib", zlib.decompress, zlib.error)


def working_bytes(decoded_bytes: int) -> int:
    """Memory one inflate call holds beyond the caller's buffers (bytes), for a chunk of
    ``decoded_bytes``: the inflate state, plus the decoded ``bytes`` object unless the zlib
    library writes straight into the buffer."""
    copy = 0 if best().name == "zlib" and _libz() is not None else decoded_bytes
    return INFLATE_STATE_BYTES + copy


@functools.lru_cache(maxsize=1)
def _libz():
    """The zlib library's ``uncompress``, or None where it cannot be loaded."""
    path = ctypes.util.find_library("z")
    if path is None:
        return None
    try:
        uncompress = ctypes.CDLL(path).uncompress
    except (OSError, AttributeError):
        return None
    uncompress.argtypes = (ctypes.c_void_p, ctypes.POINTER(ctypes.c_ulong), ctypes.c_void_p,
                           ctypes.c_ulong)
    uncompress.restype = ctypes.c_int
    return uncompress


def inflate_into(source: np.ndarray, target: np.ndarray, wbits: int = ZLIB_WBITS) -> None:
    """Inflate ``source`` (uint8, a whole stream) into ``target`` (uint8, exactly the decoded
    size); ValueError when the stream decodes to another size or is damaged."""
    inflater = best()
    uncompress = _libz() if inflater.name == "zlib" and wbits == ZLIB_WBITS else None
    if uncompress is not None:
        # A ctypes call releases the GIL, and zlib writes straight into the target buffer.
        size = ctypes.c_ulong(target.nbytes)
        status = uncompress(target.ctypes.data, ctypes.byref(size), source.ctypes.data,
                            source.nbytes)
        if status != 0 or size.value != target.nbytes:
            raise ValueError(f"deflate: zlib status {status}, {size.value} bytes decoded, "
                             f"expected {target.nbytes}")
        return
    try:
        decoded = inflater.decompress(source, wbits, max(1, target.nbytes))
    except inflater.error as exc:
        raise ValueError(f"deflate: {inflater.name}: {exc}") from None
    if len(decoded) != target.nbytes:
        raise ValueError(f"deflate: {len(decoded)} bytes decoded, expected {target.nbytes}")
    target[:] = np.frombuffer(decoded, dtype=np.uint8)
