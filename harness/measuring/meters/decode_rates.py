"""Single-core decode rate of a codec on the harness's own values (GB/s of decoded bytes).

A compressed read cannot go faster than its decoders: ``decode_rate_gbps(codec)`` encodes
``SAMPLE_CHUNKS`` chunks of ``SAMPLE_CHUNK_SHAPE`` "smooth" values (the kind that compresses,
as in the suite's compression question) with the codec's settings
(``harness.measuring.storage.codecs``), then decodes them on one thread with the same decoders
the thread-pool readers use (inflate through ``storage.inflate``, numcodecs' blosc, zstd and
unshuffle), and returns decoded bytes over the best of ``SAMPLE_PASSES`` passes. About 0.1 s per
codec. Codecs those decoders do not handle (lzf, lz4, bitshuffle, blosc2) and uncompressed data
have no rate (None).
"""

from __future__ import annotations

import functools
import time
import zlib

import numpy as np

from harness.measuring.matrix.generate import dense_array
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import codecs, inflate

#: One sample chunk: 10 full rows of the notebook's matrix, 4 MB in float32.
SAMPLE_CHUNK_SHAPE = (10, 100_000)
SAMPLE_CHUNKS = 2
SAMPLE_PASSES = 3


def _settings(name: str) -> tuple[bool, object]:
    """(byte shuffle first, the compressor: a deflate level or a numcodecs codec)."""
    import numcodecs

    if name == "gzip":
        return False, 4  # h5py's default level
    if name.startswith("gzip-"):
        level, _, shuffle = name[len("gzip-"):].partition("-")
        return shuffle == "shuffle", int(level)
    if name in ("blosc-lz4", "blosc-zstd", "blosc"):
        cname = "zstd" if name == "blosc-zstd" else "lz4"
        clevel = 9 if name == "blosc" else 5  # hdf5plugin's default, else the harness's
        return False, numcodecs.Blosc(cname=cname, clevel=clevel, shuffle=numcodecs.Blosc.SHUFFLE)
    if name == "zstd":
        return False, numcodecs.Zstd(level=3)
    raise KeyError(name)


def _decoder(shuffle: bool, compressor, itemsize: int):
    """decode(stored, out, scratch): the readers' decoders, on one thread."""
    if isinstance(compressor, int):
        first = functools.partial(inflate.inflate_into, wbits=inflate.ZLIB_WBITS)
    elif compressor.codec_id == "blosc":
        from numcodecs import blosc

        first = blosc.decompress
    else:
        from numcodecs import zstd

        first = zstd.decompress
    if shuffle:
        import numcodecs

        unshuffle = functools.partial(numcodecs.Shuffle(elementsize=itemsize).decode)
    else:
        unshuffle = None

    def decode(stored: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
        if unshuffle is None:
            first(stored, out)
            return
        first(stored, scratch)
        unshuffle(scratch, out=out)

    return decode


@functools.cache
def decode_rate_gbps(name: str | None, dtype: str = "float32") -> float | None:
    """GB/s of decoded bytes one thread decodes chunks of codec ``name`` at (None: no rate)."""
    name = codecs.normalize(name)
    try:
        shuffle, compressor = _settings(name) if name is not None else (False, None)
    except KeyError:
        return None
    if compressor is None:
        return None
    rows, cols = SAMPLE_CHUNK_SHAPE
    matrix = dense_array(DatasetSpec((rows * SAMPLE_CHUNKS, cols), dtype, values="smooth"))
    itemsize = matrix.itemsize
    stored = []
    for r0 in range(0, matrix.shape[0], rows):
        chunk = matrix[r0:r0 + rows]
        if isinstance(compressor, int):  # deflate, after a byte shuffle where the codec has one
            data = chunk.view(np.uint8).reshape(-1, itemsize).T.copy() if shuffle else chunk
            encoded = zlib.compress(data.tobytes(), compressor)
        else:  # blosc shuffles inside, by the values' item size
            encoded = compressor.encode(np.ascontiguousarray(chunk))
        stored.append(np.frombuffer(encoded, dtype=np.uint8))
    decode = _decoder(shuffle, compressor, itemsize)
    out = np.empty(rows * cols * itemsize, dtype=np.uint8)
    scratch = np.empty_like(out)
    best = float("inf")
    for _ in range(SAMPLE_PASSES):
        started = time.perf_counter()
        for chunk in stored:
            decode(chunk, out, scratch)
        best = min(best, time.perf_counter() - started)
    return matrix.nbytes / best / 1e9
