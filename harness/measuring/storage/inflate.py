"""Inflate (deflate, zlib and gzip containers) at the fastest rate an installed library offers.

Four libraries inflate the same streams, and all four release the GIL while they work:
libdeflate (bundled by the ``deflate`` package, called here through ctypes, straight into the
caller's buffer), zlib-ng (the ``zlib-ng`` package, module ``zlib_ng``), ISA-L (the ``isal``
package, module ``isal.isal_zlib``) and the standard library's ``zlib``. :func:`best` picks the
first one available in :data:`PREFERENCE`; a missing package falls back to the next, and
``zlib`` is always there.

Measured on this project's own chunks (``tools/inflate_rates.py``: 10 chunks of 10 x 100000
float32 "smooth" values, 4 MB decoded each, inflated into a reused buffer; GB/s of decoded
output on one core, the best of 7 passes, three rounds, on a 2-core VM shared with other jobs)::

    chunks                                       ratio  zlib  isal       zlib-ng    libdeflate
    shuffle + deflate 1 (HDF5 gzip-1-shuffle)    1.73   0.92  1.89-2.00  2.16-2.19  3.11-3.15
    deflate 1, gzip container (zarr gzip-1)      1.14   0.21  0.31       0.26-0.27  0.32-0.33
    deflate 4, gzip container (zarr gzip-4)      1.15   0.24  0.32       0.29-0.30  0.34-0.35

and on the chunks of the harness's gzip-1-shuffle HDF5 file of the notebook's matrix (smooth
values, written by HDF5's own zlib; ``read_direct_chunk``, the best of 5): libdeflate 2.32 GB/s,
zlib-ng 0.97, ISA-L 0.89. libdeflate is first: the fastest on every kind of chunk (1.1-2.4x the
next library), and it writes into the caller's buffer, with no copy. A stream libdeflate
refuses (several gzip members, a damaged one) goes to zlib, which names the damage.

Memory: zlib-ng and ISA-L return a new ``bytes`` object that is then copied into the caller's
buffer, so one decoding call holds one decoded chunk besides its buffers
(:func:`working_bytes`); libdeflate (one decompressor per thread, made on its first call) and
the zlib fallback (the zlib library's ``uncompress``, for zlib streams) write straight into it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import importlib
import threading
import zlib
from collections.abc import Callable

import numpy as np

#: ``wbits`` of a zlib stream (HDF5's deflate filter) and of a gzip one (zarr's gzip codec).
ZLIB_WBITS = 15
GZIP_WBITS = 31
#: Libraries in order of preference: (name, module); the last is always importable.
#: libdeflate's module is the ``deflate`` package's extension, whose library ctypes loads.
PREFERENCE = (("libdeflate", "deflate._deflate"), ("zlib-ng", "zlib_ng.zlib_ng"),
              ("isal", "isal.isal_zlib"), ("zlib", "zlib"))
#: zlib's inflate state and 32 KiB window (bytes), held by every library during one call.
INFLATE_STATE_BYTES = 64 << 10


@dataclasses.dataclass(frozen=True)
class Inflater:
    """One library's ``decompress(data, wbits, bufsize) -> bytes``, the error it raises on a
    damaged stream, and its name."""

    name: str
    decompress: Callable[..., bytes]
    error: type[Exception]


@dataclasses.dataclass(frozen=True)
class LibDeflate:
    """libdeflate's C functions, loaded by ctypes (which releases the GIL around each call)."""

    alloc: Callable[[], int]
    zlib_decompress: Callable[..., int]
    gzip_decompress: Callable[..., int]


@functools.lru_cache(maxsize=1)
def _libdeflate() -> LibDeflate | None:
    """libdeflate from the ``deflate`` package's extension (it exports the library's symbols),
    or None where the package is missing or its library cannot be loaded."""
    try:
        path = importlib.import_module("deflate._deflate").__file__
        library = ctypes.CDLL(path)
        alloc = library.libdeflate_alloc_decompressor
        functions = (library.libdeflate_zlib_decompress, library.libdeflate_gzip_decompress)
    except (ImportError, OSError, AttributeError, TypeError):
        return None
    alloc.argtypes, alloc.restype = (), ctypes.c_void_p
    for function in functions:
        # (decompressor, in, in_nbytes, out, out_nbytes_avail, actual_out_nbytes_ret) -> status
        function.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                             ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t))
        function.restype = ctypes.c_int
    return LibDeflate(alloc, *functions)


def available() -> list[Inflater]:
    """Every library of :data:`PREFERENCE` available here (libdeflate: when its library
    loads), in that order; zlib at least."""
    found = []
    for name, module in PREFERENCE:
        try:
            library = importlib.import_module(module)
        except ImportError:
            continue
        if name != "libdeflate":
            found.append(Inflater(name, library.decompress, library.error))
        elif _libdeflate() is not None:
            found.append(Inflater(name, None, ValueError))
    return found or [Inflater("zlib", zlib.decompress, zlib.error)]


@functools.lru_cache(maxsize=1)
def best() -> Inflater:
    """The first library of :func:`available`."""
    return available()[0]


def working_bytes(decoded_bytes: int) -> int:
    """Memory one inflate call holds beyond the caller's buffers (bytes), for a chunk of
    ``decoded_bytes``: the inflate state, plus the decoded ``bytes`` object unless the library
    writes straight into the buffer (libdeflate; zlib's ``uncompress``)."""
    in_place = best().name == "libdeflate" or (best().name == "zlib" and _libz() is not None)
    return INFLATE_STATE_BYTES + (0 if in_place else decoded_bytes)


_thread = threading.local()


def _libdeflate_into(source: np.ndarray, target: np.ndarray, wbits: int) -> bool:
    """Inflate with libdeflate straight into ``target``; False when it refuses the stream
    (another library then decodes it, or names the damage)."""
    library = _libdeflate()
    decompressor = getattr(_thread, "decompressor", None)
    if decompressor is None:  # one per thread: a decompressor is not shared between threads
        decompressor = _thread.decompressor = library.alloc()
        if not decompressor:
            return False
    function = library.gzip_decompress if wbits == GZIP_WBITS else library.zlib_decompress
    size = ctypes.c_size_t(0)
    status = function(decompressor, source.ctypes.data, source.nbytes, target.ctypes.data,
                      target.nbytes, ctypes.byref(size))
    return status == 0 and size.value == target.nbytes


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


def inflate_into(source: np.ndarray, target: np.ndarray, wbits: int = ZLIB_WBITS,
                 inflater: Inflater | None = None) -> None:
    """Inflate ``source`` (uint8, a whole stream) into ``target`` (uint8, exactly the decoded
    size) with ``inflater`` (default :func:`best`); ValueError when the stream decodes to
    another size or is damaged."""
    inflater = inflater or best()
    if inflater.name == "libdeflate":
        if _libdeflate_into(source, target, wbits):
            return
        inflater = Inflater("zlib", zlib.decompress, zlib.error)  # names what is wrong
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
