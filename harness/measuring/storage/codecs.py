"""Codec names, the HDF5 filters they stand for, and decoders of stored HDF5 chunks.

A codec name means the same settings in every storage that supports it, so HDF5 and other
chunked stores can be compared on the same bytes:

=====================  ====================================================================
name                   codec
=====================  ====================================================================
None / "none"          uncompressed
"gzip"                 deflate level 4 (h5py's default), no shuffle
"gzip-1", "gzip-4"     deflate level 1 / 4
"gzip-1-shuffle", ...  byte shuffle, then deflate level 1 / 4
"lzf"                  h5py's lzf (HDF5 only)
"blosc-lz4"            blosc, lz4, byte shuffle, clevel 5
"blosc-zstd"           blosc, zstd, byte shuffle, clevel 5
"zstd"                 plain zstd, level 3
"blosc", "blosc2",     hdf5plugin's defaults for those filters
"lz4", "bitshuffle"
=====================  ====================================================================

The filter plugins come from the ``hdf5plugin`` package, never from the system.

:func:`pipeline_decoder` turns a dataset's filter pipeline into a :class:`ChunkDecoder` that
decodes one stored chunk into a caller's buffer with codecs that release the GIL while they
work (deflate through ``storage.inflate``: libdeflate, zlib-ng, ISA-L or zlib, whichever is
installed and fastest; byte unshuffle through c-blosc2's SIMD routine, numcodecs' where it is
missing; blosc and zstd through numcodecs), so a thread pool can decode on every core. A
filter it cannot decode is refused (:class:`UnsupportedFilter`, naming the filter): never a
silent fallback to HDF5's own, one-call-at-a-time decoding.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import os
from collections.abc import Callable

import numpy as np

from harness.measuring.matrix.spec import COMPRESSIONS
from harness.measuring.storage import inflate

#: Every name a dataset's ``compression`` may take in HDF5 (None: uncompressed).
HDF5_NAMES = COMPRESSIONS
#: The names of compressed codecs, for sweeps (every kind of filter once or more).
COMPRESSED_NAMES = tuple(name for name in HDF5_NAMES if name not in (None, "none"))

#: HDF5 filter ids (H5Zpublic.h and the registered plugin ids).
DEFLATE, SHUFFLE, FLETCHER32, SZIP, NBIT, SCALEOFFSET = 1, 2, 3, 4, 5, 6
LZF, BLOSC, LZ4, BITSHUFFLE, ZSTD, BLOSC2 = 32000, 32001, 32004, 32008, 32015, 32026
FILTER_NAMES = {DEFLATE: "deflate (gzip)", SHUFFLE: "shuffle", FLETCHER32: "fletcher32",
                SZIP: "szip", NBIT: "nbit", SCALEOFFSET: "scaleoffset", LZF: "lzf",
                BLOSC: "blosc", LZ4: "lz4", BITSHUFFLE: "bitshuffle", ZSTD: "zstd",
                BLOSC2: "blosc2"}
#: Filters :func:`pipeline_decoder` decodes in threads.
DECODABLE_FILTERS = (DEFLATE, SHUFFLE, BLOSC, ZSTD)


def normalize(name: str | None) -> str | None:
    """"none" -> None; any other name unchanged."""
    return None if name == "none" else name


def hdf5_filter_kwargs(name: str | None) -> dict:
    """``h5py.Group.create_dataset`` keyword arguments for the codec ``name``."""
    name = normalize(name)
    if name is None:
        return {}
    if name in ("gzip", "lzf"):
        return {"compression": name}  # h5py's own defaults: these files must not change
    if name.startswith("gzip-"):
        level, _, shuffle = name[len("gzip-"):].partition("-")
        return {"compression": "gzip", "compression_opts": int(level),
                "shuffle": shuffle == "shuffle"}
    import hdf5plugin

    blosc_shuffle = hdf5plugin.Blosc.SHUFFLE
    plugins = {
        "blosc-lz4": lambda: hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=blosc_shuffle),
        "blosc-zstd": lambda: hdf5plugin.Blosc(cname="zstd", clevel=5, shuffle=blosc_shuffle),
        "zstd": lambda: hdf5plugin.Zstd(clevel=3),
        "blosc": hdf5plugin.Blosc, "blosc2": hdf5plugin.Blosc2, "lz4": hdf5plugin.LZ4,
        "bitshuffle": hdf5plugin.Bitshuffle,
    }
    if name not in plugins:
        raise ValueError(f"unknown codec {name!r}; known codecs: {HDF5_NAMES}")
    return dict(plugins[name]())


def register_hdf5_filters() -> None:
    """Make the filters of ``hdf5plugin`` (blosc, blosc2, zstd, lz4, bitshuffle, ...) known to
    HDF5 in this process: importing the package registers them. Without it, HDF5 looks for
    plugins in a system directory and fails to read such a dataset."""
    import hdf5plugin  # noqa: F401


def filter_ids(name: str | None) -> tuple[int, ...]:
    """The HDF5 filter ids the codec ``name`` writes, in pipeline order."""
    name = normalize(name)
    if name is None:
        return ()
    kwargs = hdf5_filter_kwargs(name)
    compression = kwargs.get("compression")
    ids = {"gzip": DEFLATE, "lzf": LZF}.get(compression, compression)
    return (SHUFFLE, ids) if kwargs.get("shuffle") else (ids,)


def decodable(name: str | None) -> bool:
    """True when :func:`pipeline_decoder` decodes every filter the codec ``name`` writes."""
    return all(fid in DECODABLE_FILTERS for fid in filter_ids(name))


def undecodable_filters(name: str | None) -> list[str]:
    """Names of the filters of codec ``name`` that :func:`pipeline_decoder` cannot decode."""
    return [FILTER_NAMES.get(fid, str(fid)) for fid in filter_ids(name)
            if fid not in DECODABLE_FILTERS]


#: Working memory one decoding call allocates itself, per filter (bytes): c-blosc 1's
#: ``blosc_decompress_ctx`` takes about three blocks of at most 1 MiB (measured here: 3.5 MiB
#: of anonymous memory kept by one thread decoding blosc-lz4 chunks of 4 MB); a zstd
#: decompression context; zlib's inflate state and 32 KiB window.
DECODER_WORKING_BYTES = {BLOSC: 4 << 20, ZSTD: 256 << 10, DEFLATE: 64 << 10, SHUFFLE: 0}


def decoder_working_bytes(name: str | None, decoded_bytes: int = 0) -> int:
    """Working memory one thread decoding chunks of codec ``name`` holds beyond its buffers;
    ``decoded_bytes``: a chunk's decoded size, when this module's inflate decodes it (the
    inflate libraries that return a new object hold one decoded chunk per call)."""
    working = sum(DECODER_WORKING_BYTES.get(fid, 0) for fid in filter_ids(name))
    if DEFLATE in filter_ids(name):
        working += inflate.working_bytes(decoded_bytes) - DECODER_WORKING_BYTES[DEFLATE]
    return working


def decode_stages(name: str | None) -> int:
    """How many decoding stages a chunk of codec ``name`` goes through (shuffle + deflate: 2)."""
    return len(filter_ids(name))


class UnsupportedFilter(ValueError):
    """A dataset's filter pipeline holds a filter the thread-pool decoders cannot decode."""


# ------------------------------------------------------------------------------- decoders
# Each stage decodes ``source`` (uint8) into ``target`` (uint8, exactly the decoded size:
# the filters here all decode to the chunk's size) and releases the GIL while it works.

def _inflate(source: np.ndarray, target: np.ndarray) -> None:
    # zlib-ng, ISA-L or zlib, whichever is fastest here (see harness.measuring.storage.inflate).
    inflate.inflate_into(source, target, inflate.ZLIB_WBITS)


@functools.lru_cache(maxsize=1)
def _blosc2_unshuffle():
    """c-blosc2's ``blosc2_unshuffle(typesize, nbytes, src, dest)`` (SSE2/AVX2, the byte
    layout of HDF5's shuffle filter, leftover bytes copied), from the blosc2 plugin hdf5plugin
    ships, or None where it cannot be loaded. Through ctypes, so the GIL is released: measured
    here on 4 MB chunks, 22 GB/s on one thread and 31 GB/s on two, against 1.55 and 1.78 GB/s
    for numcodecs' ``Shuffle`` (which holds the GIL, so that two decoding threads wait for
    each other)."""
    try:
        import hdf5plugin

        function = ctypes.CDLL(os.path.join(hdf5plugin.PLUGIN_PATH, "libh5blosc2.so")
                               ).blosc2_unshuffle
    except (ImportError, OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p)
    function.restype = ctypes.c_int32
    return function


#: blosc2_unshuffle takes a block size of int32.
_BLOSC2_MAX_BYTES = 2**31 - 1


def _unshuffle(element_size: int) -> Callable[[np.ndarray, np.ndarray], None]:
    import numcodecs

    codec = numcodecs.Shuffle(elementsize=element_size)
    fast = _blosc2_unshuffle()

    def decode(source: np.ndarray, target: np.ndarray) -> None:
        if source.nbytes != target.nbytes:
            raise ValueError(f"shuffle: {source.nbytes} bytes to unshuffle into {target.nbytes}")
        usable = fast is not None and 0 < element_size <= 256 and \
            source.nbytes <= _BLOSC2_MAX_BYTES
        done = usable and fast(element_size, source.nbytes, source.ctypes.data,
                               target.ctypes.data) == source.nbytes
        if not done:  # HDF5 leaves the bytes past the last whole element where they are
            whole = source.nbytes // max(1, element_size) * max(1, element_size)
            codec.decode(source[:whole], out=target[:whole])
            target[whole:] = source[whole:]

    return decode


def _blosc(source: np.ndarray, target: np.ndarray) -> None:
    from numcodecs import blosc

    # numcodecs uses blosc's context API (no global lock, GIL released) off the main thread;
    # it refuses a target smaller than the chunk's header says.
    blosc.decompress(source, target)


def _zstd(source: np.ndarray, target: np.ndarray) -> None:
    from numcodecs import zstd

    zstd.decompress(source, target)


@dataclasses.dataclass(frozen=True)
class ChunkDecoder:
    """Decodes one stored chunk of a dataset whose pipeline is ``filters`` (HDF5 filter ids,
    in the order they were applied when writing).

    ``scratch_needed``: a chunk passes through more than one stage, so decoding needs a second
    buffer of the chunk's size (the stages alternate between it and the output).
    """

    filters: tuple[int, ...]
    stages: tuple[Callable[[np.ndarray, np.ndarray], None], ...]

    @property
    def scratch_needed(self) -> bool:
        return len(self.stages) > 1

    def decode(self, stored: np.ndarray, filter_mask: int, out: np.ndarray,
               scratch: np.ndarray | None) -> None:
        """Decode ``stored`` (uint8, the chunk's bytes in the file) into ``out`` (uint8, the
        chunk's decoded size). Bit ``i`` of ``filter_mask`` set: filter ``i`` was skipped
        for this chunk when it was written (an optional filter that did not shrink it)."""
        active = [stage for index, stage in enumerate(self.stages)
                  if not filter_mask & (1 << index)]
        if not active:
            if stored.nbytes != out.nbytes:
                raise ValueError(f"an unfiltered chunk of {stored.nbytes} bytes, expected "
                                 f"{out.nbytes}")
            out[:] = stored
            return
        # Undo the last filter first; alternate buffers so that the last stage writes to out.
        targets = [out if (len(active) - k) % 2 == 0 else scratch for k in range(1, len(active) + 1)]
        source = stored
        for stage, target in zip(reversed(active), targets):
            stage(source, target)
            source = target


def pipeline_decoder(dcpl, itemsize: int) -> ChunkDecoder:
    """The decoder of a dataset's filter pipeline (``dset.id.get_create_plist()``).

    Raises :class:`UnsupportedFilter` naming every filter of the pipeline it cannot decode.
    """
    filters, stages, refused = [], [], []
    for index in range(dcpl.get_nfilters()):
        filter_id, _flags, cd_values, name = dcpl.get_filter(index)
        filters.append(filter_id)
        if filter_id == DEFLATE:
            stages.append(_inflate)
        elif filter_id == SHUFFLE:
            stages.append(_unshuffle(int(cd_values[0]) if cd_values else itemsize))
        elif filter_id == BLOSC:
            stages.append(_blosc)
        elif filter_id == ZSTD:
            stages.append(_zstd)
        else:
            label = FILTER_NAMES.get(filter_id) or name.decode(errors="replace").split(";")[0]
            refused.append(f"{label} (filter id {filter_id})")
    if refused:
        raise UnsupportedFilter(
            f"cannot decode the HDF5 filter {', '.join(refused)} in Python threads (decodable: "
            f"{', '.join(FILTER_NAMES[f] for f in DECODABLE_FILTERS)}); read this dataset "
            "with hdf5-blocked, which lets HDF5 decode it")
    return ChunkDecoder(tuple(filters), tuple(stages))
