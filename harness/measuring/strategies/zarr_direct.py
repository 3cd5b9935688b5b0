"""``zarr-direct``: a zarr store's chunk files read and decoded by the harness itself.

What ``hdf5-direct`` is for HDF5. zarr-python decodes chunks through asyncio and copies them
into the caller's selection; ``zarr-direct`` asks zarr only for the array's metadata when it
opens the store, and lists where every chunk's bytes are: a chunk file (unsharded), or a range
of a shard file found in the shard's index (zarr format 3 ``sharding_indexed``: one little-
endian (offset, size) pair of uint64 per inner chunk, at the end or the start of the file). A
pass then reads each chunk's bytes with a positional read (``os.preadv``), decodes them with
codecs that release the GIL (blosc and zstd through numcodecs; gzip through
``harness.measuring.storage.inflate``), and multiplies the decoded chunk by its slice of
``x``, all in a pool of worker threads, one chunk per worker at a time, each into its own
reused buffers. The main thread adds the partial products up in chunk order (row-major), so
the result does not depend on which worker finished first; meanwhile it tells the kernel which
byte ranges come next (``strategies.readahead``: ``posix_fadvise(WILLNEED)``), so that a cold
pass keeps the disk busy while the workers decode.

Reads format 3 stores (bytes little-endian, then blosc, zstd or gzip, optionally a crc32c
checksum, whose 4 bytes are dropped without being checked; sharded or not) and format 2 stores
(C order, native byte order, no filters, compressor blosc, zstd, gzip or zlib). Anything else is
refused by name when the run is planned (``location_refusal``). Chunks never written hold the
fill value: refused at opening unless it is 0.

Memory (bytes, per worker): a stored-chunk buffer (compressed stores only: uncompressed chunks
are read straight into the decoded buffer), a decoded-chunk buffer of one (inner) chunk, and
the working memory of its codec; workers are as many as the usable cores, fewer where
``memory_budget`` cannot hold their buffers (one at least).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import queue
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import DatasetSpec, computed
from harness.measuring.storage import codecs, inflate
from harness.measuring.storage import zarr as zarr_store
from harness.measuring.strategies import readahead
from harness.measuring.strategies.base import (
    Options,
    Strategy,
    one_block_bytes,
    read_buffer,
    register,
    streaming_seconds,
)
from harness.measuring.strategies.hdf5 import blas_controller, decompress_seconds
from harness.measuring.strategies.hdf5_direct import add_oldest, stored_buffer_bytes, workers_for
from harness.measuring.strategies.products import Product, RowRangeProducts

#: An inner chunk missing from a shard: offset and size both 2**64 - 1 in the shard index.
MISSING = 2**64 - 1
#: Chunk and shard files kept open for the operand's life when there are no more than these
#: (an open and a close per read otherwise): a few hundred descriptors, well within limits.
MAX_OPEN_FILES = 512
CRC32C_BYTES = 4
#: Working memory of one decoding call per codec (bytes); gzip's is inflate's (one decoded
#: copy where the library returns a new object).
WORKING_BYTES = {"blosc": codecs.DECODER_WORKING_BYTES[codecs.BLOSC],
                 "zstd": codecs.DECODER_WORKING_BYTES[codecs.ZSTD]}


class Unsupported(ValueError):
    """The store holds something zarr-direct cannot decode; the message names it."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """How an array's chunks are stored: the decoded (inner) chunk shape, the shard shape
    (None: one file per chunk), the compressor (None, "blosc", "zstd", "gzip", "zlib"),
    whether chunks end in a crc32c checksum, and the shard index's place and checksum."""

    chunk_shape: tuple[int, int]
    shard_shape: tuple[int, int] | None
    compressor: str | None
    chunk_checksum: bool
    index_at_end: bool = True
    index_checksum: bool = False
    fill_value: float = 0.0


_V3_COMPRESSORS = {"BloscCodec": "blosc", "ZstdCodec": "zstd", "GzipCodec": "gzip"}
_V2_COMPRESSORS = {"blosc": "blosc", "zstd": "zstd", "gzip": "gzip", "zlib": "zlib"}


def _bytes_to_bytes(codecs_, where: str) -> tuple[str | None, bool]:
    """(compressor, trailing crc32c) of a chain of format 3 bytes-to-bytes codecs."""
    names = [type(c).__name__ for c in codecs_]
    checksum = bool(names) and names[-1] == "Crc32cCodec"
    compressors = names[:-1] if checksum else names
    unknown = [n for n in compressors if n not in _V3_COMPRESSORS]
    if unknown or len(compressors) > 1:
        raise Unsupported(f"zarr-direct does not decode {' + '.join(compressors)} {where} "
                          f"(it decodes one of {', '.join(_V3_COMPRESSORS)}, then crc32c)")
    return (_V3_COMPRESSORS[compressors[0]] if compressors else None), checksum


def _little_endian_bytes(codec, where: str) -> None:
    if type(codec).__name__ != "BytesCodec":
        raise Unsupported(f"zarr-direct does not decode {type(codec).__name__} {where} "
                          "(it reads plain little-endian bytes)")
    endian = getattr(getattr(codec, "endian", None), "value", None)
    if endian not in ("little", None):
        raise Unsupported(f"zarr-direct does not read {endian}-endian chunks {where}")


def layout_of(array) -> Layout:
    """The layout of an opened zarr array; :class:`Unsupported` naming what it cannot read."""
    meta = array.metadata
    fill = float(meta.fill_value or 0)
    if meta.zarr_format == 2:
        if meta.order != "C":
            raise Unsupported("zarr-direct does not read Fortran-ordered chunks")
        if not array.dtype.isnative:
            raise Unsupported(f"zarr-direct does not read {array.dtype} (not this machine's "
                              "byte order)")
        if meta.filters:
            names = ", ".join(getattr(f, "codec_id", type(f).__name__) for f in meta.filters)
            raise Unsupported(f"zarr-direct does not decode the filters {names}")
        compressor = None
        if meta.compressor is not None:
            codec_id = getattr(meta.compressor, "codec_id", type(meta.compressor).__name__)
            if codec_id not in _V2_COMPRESSORS:
                raise Unsupported(f"zarr-direct does not decode {codec_id} (it decodes "
                                  f"{', '.join(_V2_COMPRESSORS)})")
            compressor = _V2_COMPRESSORS[codec_id]
        return Layout(tuple(array.chunks), None, compressor, False, fill_value=fill)
    chain = list(meta.codecs)
    if len(chain) == 1 and type(chain[0]).__name__ == "ShardingCodec":
        sharding = chain[0]
        inner = list(sharding.codecs)
        _little_endian_bytes(inner[0], "in a shard")
        compressor, checksum = _bytes_to_bytes(inner[1:], "in a shard")
        index = [type(c).__name__ for c in sharding.index_codecs]
        if index not in (["BytesCodec"], ["BytesCodec", "Crc32cCodec"]):
            raise Unsupported(f"zarr-direct does not read a shard index encoded {index}")
        _little_endian_bytes(sharding.index_codecs[0], "in a shard index")
        at_end = getattr(sharding.index_location, "value", sharding.index_location) == "end"
        return Layout(tuple(sharding.chunk_shape), tuple(array.shards), compressor, checksum,
                      at_end, len(index) == 2, fill)
    if not chain or type(chain[0]).__name__ != "BytesCodec":
        names = ", ".join(type(c).__name__ for c in chain)
        raise Unsupported(f"zarr-direct does not decode {names} (array-to-array codecs such "
                          "as transpose, or a serializer other than bytes)")
    _little_endian_bytes(chain[0], "")
    compressor, checksum = _bytes_to_bytes(chain[1:], "")
    return Layout(tuple(array.chunks), None, compressor, checksum, fill_value=fill)


@dataclasses.dataclass(frozen=True)
class StoredChunk:
    """Where one chunk's bytes are: its first (row, column), its file, offset and size."""

    row: int
    col: int
    file: Path
    offset: int
    size: int


def _shard_index(file: Path, layout: Layout) -> np.ndarray:
    """The (offset, size) rows of a shard's index, one per inner chunk in C order."""
    (sr, sc), (cr, cc) = layout.shard_shape, layout.chunk_shape
    count = (sr // cr) * (sc // cc)
    nbytes = 16 * count + (CRC32C_BYTES if layout.index_checksum else 0)
    with open(file, "rb") as fh:
        file_size = os.fstat(fh.fileno()).st_size
        at = file_size - nbytes if layout.index_at_end else 0
        raw = os.pread(fh.fileno(), nbytes, at)
    if len(raw) != nbytes or at < 0:
        raise ValueError(f"zarr-direct: shard {file.name} holds {file_size} bytes, less than "
                         f"its index of {nbytes}")
    return np.frombuffer(raw[:16 * count], dtype="<u8").reshape(count, 2)


def stored_chunks(array, location, layout: Layout) -> list[StoredChunk]:
    """Every chunk written to the store, in row-major order of their positions."""
    nrows, ncols = array.shape
    cr, cc = layout.chunk_shape
    unit = layout.shard_shape or layout.chunk_shape
    chunks: list[StoredChunk] = []
    for i in range(math.ceil(nrows / unit[0])):
        for j in range(math.ceil(ncols / unit[1])):
            file = zarr_store.chunk_file(array, location, (i, j))
            if not file.exists():
                continue
            if layout.shard_shape is None:
                chunks.append(StoredChunk(i * cr, j * cc, file, 0, file.stat().st_size))
                continue
            per_row = unit[1] // cc
            for k, (offset, size) in enumerate(_shard_index(file, layout)):
                row, col = i * unit[0] + k // per_row * cr, j * unit[1] + k % per_row * cc
                if offset != MISSING and row < nrows and col < ncols:
                    chunks.append(StoredChunk(row, col, file, int(offset), int(size)))
    return sorted(chunks, key=lambda c: (c.row, c.col))


# ------------------------------------------------------------------------------- decoders
# Each decodes ``source`` (uint8) into ``target`` (uint8, exactly the chunk's decoded size)
# and releases the GIL while it works.

def _blosc(source: np.ndarray, target: np.ndarray) -> None:
    from numcodecs import blosc

    blosc.decompress(source, target)


def _zstd(source: np.ndarray, target: np.ndarray) -> None:
    from numcodecs import zstd

    zstd.decompress(source, target)


DECODERS = {
    "blosc": _blosc, "zstd": _zstd,
    "gzip": lambda source, target: inflate.inflate_into(source, target, inflate.GZIP_WBITS),
    "zlib": lambda source, target: inflate.inflate_into(source, target, inflate.ZLIB_WBITS),
}


# ------------------------------------------------------------------------------- memory
def _compressor_of(spec: DatasetSpec) -> str | None:
    """The compressor a spec's codec name stands for (None: uncompressed)."""
    name = codecs.normalize(spec.compression)
    if name is None:
        return None
    return "blosc" if name.startswith("blosc") else "gzip" if name.startswith("gzip") else name


def worker_bytes(spec: DatasetSpec) -> int:
    """Memory one worker holds (bytes): stored chunk (compressed stores only), decoded chunk,
    and its codec's working memory."""
    chunk = zarr_store.chunk_bytes(spec)
    compressor = _compressor_of(spec)
    if compressor is None:
        return chunk
    working = (inflate.working_bytes(chunk) if compressor in ("gzip", "zlib")
               else WORKING_BYTES.get(compressor, 0))
    return stored_buffer_bytes(chunk) + chunk + working


def _chunk_count(spec: DatasetSpec) -> int:
    (rows, cols), (cr, cc) = spec.shape, zarr_store.chunk_shape(spec)
    return math.ceil(rows / cr) * math.ceil(cols / cc)


def worker_count(spec: DatasetSpec, opts: Options) -> int:
    """Decoding threads, as ``hdf5-direct`` chooses them (``workers_for``)."""
    return workers_for(worker_bytes(spec), _chunk_count(spec), opts)


def declared_budget(spec: DatasetSpec, opts: Options) -> int:
    """Every worker's buffers (bytes)."""
    return worker_count(spec, opts) * worker_bytes(spec)


# ------------------------------------------------------------------------------- operand
@dataclasses.dataclass
class Buffers:
    stored: np.ndarray   # uint8, the largest stored chunk (empty when uncompressed)
    decoded: np.ndarray  # the chunk's shape, the store's dtype
    converted: np.ndarray | None = None  # the product's dtype, for a store of other values


class DirectOperand(RowRangeProducts):
    """Chunks read with ``preadv`` and decoded by a pool of workers; see the module docstring.

    ``profile`` (after each product): seconds summed over the workers spent reading,
    decoding and multiplying, their CPU seconds, the main thread's seconds waiting for a
    worker (``wait_seconds``), adding partial products (``add_seconds``) and advising the
    kernel to read ahead (``advise_seconds``), and bytes read and decoded.
    """

    def __init__(self, spec: DatasetSpec, layout: Layout, chunks: list[StoredChunk],
                 workers: int):
        self.spec, self.layout, self.chunks, self.workers = spec, layout, chunks, workers
        self.decode = DECODERS[layout.compressor] if layout.compressor else None
        chunk_bytes = math.prod(layout.chunk_shape) * spec.file_dtype.itemsize
        trailer = CRC32C_BYTES if layout.chunk_checksum else 0
        largest = max([c.size for c in chunks], default=0)
        stored = max(largest, stored_buffer_bytes(chunk_bytes)) if self.decode else trailer
        self.free: queue.SimpleQueue[Buffers] = queue.SimpleQueue()
        for _ in range(workers):
            self.free.put(Buffers(
                read_buffer((stored,), np.uint8), read_buffer(layout.chunk_shape, spec.file_dtype),
                read_buffer(layout.chunk_shape, spec.dtype) if spec.converts else None))
        files = list(dict.fromkeys(c.file for c in chunks))
        self.fds = {f: os.open(f, os.O_RDONLY) for f in files} if len(files) <= MAX_OPEN_FILES \
            else {}
        self.blas = blas_controller()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zarr-direct")
        self.profile: dict = {}

    def _chunk_product(self, chunk: StoredChunk, product: Product, first: int, stop: int):
        """Read, decode and multiply one chunk (in a worker): its part of the product (rows
        ``first:stop`` of the chunk's rows) and timings."""
        buffers = self.free.get()
        try:
            cpu_started = time.thread_time()
            started = time.perf_counter()
            decoded = buffers.decoded.reshape(-1).view(np.uint8)
            trailer = CRC32C_BYTES if self.layout.chunk_checksum else 0
            if self.decode:
                stored = buffers.stored[:chunk.size]
                targets = [stored]
            else:  # the chunk's bytes are its values: read straight into the decoded buffer
                if chunk.size != decoded.nbytes + trailer:
                    raise ValueError(f"zarr-direct: chunk at ({chunk.row}, {chunk.col}) of "
                                     f"{chunk.file.name} holds {chunk.size} bytes, expected "
                                     f"{decoded.nbytes + trailer}")
                targets = [decoded, buffers.stored[:trailer]] if trailer else [decoded]
            fd = self.fds.get(chunk.file)
            if fd is not None:
                read = os.preadv(fd, targets, chunk.offset)
            else:
                fd = os.open(chunk.file, os.O_RDONLY)
                try:
                    read = os.preadv(fd, targets, chunk.offset)
                finally:
                    os.close(fd)
            if read != chunk.size:
                raise OSError(f"zarr-direct read {read} of {chunk.size} bytes of "
                              f"{chunk.file.name}: the store is shorter than its index says")
            decoding = time.perf_counter()
            if self.decode:
                self.decode(stored[:chunk.size - trailer], decoded)
            multiplying = time.perf_counter()
            ncols = self.spec.shape[1]
            width = min(self.layout.chunk_shape[1], ncols - chunk.col)
            # Edge chunks are stored whole (padded): their valid part only.
            block = buffers.decoded[first:stop, :width]
            if buffers.converted is not None:  # a store of integers, float16...: converted here
                block = computed(block, self.spec, out=buffers.converted[first:stop, :width])
            part = product.part(chunk.row + first, chunk.col, block)
            done = time.perf_counter()
            return part, (decoding - started, multiplying - decoding, done - multiplying,
                          time.thread_time() - cpu_started)
        finally:
            self.free.put(buffers)

    def _run(self, product: Product) -> None:
        """One pass over the chunks that hold the product's rows (only those are read)."""
        # One BLAS thread per product: the workers are the parallelism.
        with self.blas.limit(limits=1, user_api="blas"):
            self._pass(product)

    def _pass(self, product: Product) -> None:
        first, stop = product.first, product.stop
        chunk_rows = self.layout.chunk_shape[0]
        wanted = [c for c in self.chunks if c.row < stop and c.row + chunk_rows > first]
        totals = np.zeros(4)
        wait = add = advise = 0.0
        window = 2 * self.workers  # partial products waiting to be added stay few
        pending: deque = deque()
        hints = readahead.Readahead([readahead.Range(self.fds.get(c.file, c.file), c.offset,
                                                     c.size) for c in wanted])
        for index, chunk in enumerate(wanted):
            started = time.perf_counter()
            hints.reached(index)
            advise += time.perf_counter() - started
            top = max(first, chunk.row) - chunk.row
            bottom = min(stop, chunk.row + chunk_rows, self.spec.shape[0]) - chunk.row
            pending.append((chunk.row + top, chunk.col,
                            self.pool.submit(self._chunk_product, chunk, product, top, bottom)))
            if len(pending) >= window:
                wait, add = add_oldest(pending, product, totals, wait, add)
        while pending:
            wait, add = add_oldest(pending, product, totals, wait, add)
        self.profile = {
            "workers": self.workers, "chunks": len(wanted),
            "read_seconds": totals[0], "decode_seconds": totals[1],
            "multiply_seconds": totals[2], "worker_cpu_seconds": totals[3],
            "wait_seconds": wait, "add_seconds": add, "advise_seconds": advise,
            "stored_bytes": sum(c.size for c in wanted),
            "decoded_bytes": (stop - first) * self.spec.shape[1] * self.spec.file_dtype.itemsize,
        }

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


def _opened_layout(location) -> tuple[object, Layout]:
    array = zarr_store.open_array(location)
    return array, layout_of(array)


def location_refusal(spec: DatasetSpec, location) -> str:
    """What zarr-direct cannot decode in the store at ``location`` ("" when it can)."""
    try:
        _opened_layout(location)
    except Unsupported as exc:
        return f"{exc}; use zarr-blocked"
    return ""


@contextlib.contextmanager
def _open_direct(spec: DatasetSpec, path, opts: Options):
    name = Path(os.fspath(path)).name
    try:
        array, layout = _opened_layout(path)
    except Unsupported as exc:
        raise Unsupported(f"zarr-direct cannot read {name}: {exc}") from None
    chunks = stored_chunks(array, path, layout)
    expected = math.prod(math.ceil(n / c) for n, c in zip(array.shape, layout.chunk_shape))
    if len(chunks) != expected and layout.fill_value != 0:
        raise ValueError(f"zarr-direct cannot read {name}: {expected - len(chunks)} chunks were "
                         f"never written and the fill value is {layout.fill_value}, not 0")
    operand = DirectOperand(spec, layout, chunks, worker_count(spec, opts))
    readahead.start()
    try:
        yield operand
    finally:
        operand.close()


def _pass_seconds(spec: DatasetSpec, opts: Options) -> float:
    """Reading the stored bytes, and decoding them on ``worker_count`` cores."""
    return streaming_seconds(spec, opts) + decompress_seconds(spec) / worker_count(spec, opts)


register(Strategy(
    name="zarr-direct", family="zarr", storage=("zarr",), out_of_core=True,
    description="chunk and shard files read with preadv, decoded and multiplied in a thread "
                "pool (codecs that release the GIL), partial products added in chunk order",
    opener=_open_direct, budget=declared_budget,
    resident=one_block_bytes, pass_seconds=_pass_seconds,
    accepts_fn=lambda spec: zarr_store.accepts_compression(spec.compression),
    refusal=zarr_store.codec_refusal(),
    questions=("compression",), location_refusal=location_refusal,
))
