"""zarr stores (zarr-python 3, format 3): two readers of the same bytes into one reused
buffer, and a zero-copy map of uncompressed chunk files.

- ``zarr-blocked``: row slabs of whole chunk-rows, read with zarr's own API
  (``get_basic_selection(out=...)``) into one buffer made at opening, multiplied in place.
- ``tensorstore-blocked``: the same slabs read by tensorstore (its chunk cache off) into the
  same kind of buffer, so that the suite compares two readers of one store; the next slab's
  chunk files are requested from the kernel before each read (``strategies.readahead``:
  cold passes alternated with and without, 1.21-1.46x faster with them).
- ``zarr-mmap``: every chunk file of an uncompressed, unsharded store mapped read-only, each
  chunk multiplied where it lies (the way ``hdf5-mmap`` maps HDF5 chunks); the files ahead of
  the product are requested from the kernel (``strategies.readahead``).
"""

from __future__ import annotations

import contextlib
import math
import mmap
from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import DatasetSpec, computed
from harness.measuring.meters.pagecache import populate, resident_fraction
from harness.measuring.storage import zarr as zarr_store
from harness.measuring.strategies import prefault, readahead
from harness.measuring.strategies.base import (
    Options,
    Strategy,
    block_rows,
    one_block_bytes,
    read_buffer,
    register,
    streaming_seconds,
)
from harness.measuring.strategies.products import Product, RowRangeProducts

#: Chunks zarr reads at once while it fills one slab (zarr's ``async.concurrency`` is 10 by
#: default): each holds a chunk's encoded bytes until it is decoded into the slab.
ZARR_READS_IN_FLIGHT = 4
#: Decompression rate assumed for the pass-time estimate (bytes of output per second).
ASSUMED_DECOMPRESS_BYTES_PER_SECOND = 500e6


def slab_rows(spec: DatasetSpec, opts: Options) -> int:
    return block_rows(spec, opts, align_rows=zarr_store.chunk_shape(spec)[0])


def _slab_bytes(spec: DatasetSpec, opts: Options) -> int:
    """The slab read (the file's values) and, for a file of other values, its conversion."""
    slab = slab_rows(spec, opts) * spec.shape[1]
    return slab * (spec.file_dtype.itemsize + (spec.itemsize if spec.converts else 0))


def reader_bytes(spec: DatasetSpec) -> int:
    """Transient bytes a reader holds besides the slab: encoded chunks in flight (a shard is
    read whole when the store is sharded)."""
    unit = zarr_store.chunk_bytes(spec)
    if spec.shards is not None:
        unit = spec.shards[0] * spec.shards[1] * spec.itemsize
    return ZARR_READS_IN_FLIGHT * 2 * unit


def _pass_seconds(spec: DatasetSpec, opts: Options) -> float:
    decode = 0.0 if spec.compression in (None, "none") else (
        spec.dense_bytes / ASSUMED_DECOMPRESS_BYTES_PER_SECOND)
    return streaming_seconds(spec, opts) + decode


class SlabOperand(RowRangeProducts):
    """Row slabs read by ``read(r0, r1, out)`` into one reused buffer, multiplied in place (a
    store of other values than the product's: converted into a second reused buffer)."""

    def __init__(self, spec: DatasetSpec, rows_per_slab: int, read, ahead=None):
        self.spec, self.read = spec, read
        self.rows_per_slab = rows_per_slab
        # The readers decode into this machine's byte order (tensorstore writes native
        # values whatever the target's dtype says); a conversion remains for other values.
        native = spec.file_dtype.newbyteorder("=")
        self.buffer = read_buffer((rows_per_slab, spec.shape[1]), native)
        self.converted = (read_buffer((rows_per_slab, spec.shape[1]), spec.dtype)
                          if native != np.dtype(spec.dtype) or spec.packing else None)
        #: ``ahead(r0, r1)``: tell the kernel that rows ``r0:r1`` are read next (or None).
        self.ahead = ahead

    def _run(self, product: Product) -> None:
        for r0 in range(product.first, product.stop, self.rows_per_slab):
            r1 = min(r0 + self.rows_per_slab, product.stop)
            slab = self.buffer[:r1 - r0]
            if self.ahead is not None and r1 < product.stop:  # the next slab's, while this reads
                self.ahead(r1, min(r1 + self.rows_per_slab, product.stop))
            self.read(r0, r1, slab)
            if self.converted is not None:
                slab = computed(slab, self.spec, out=self.converted[:r1 - r0])
            product.put(r0, slab)


@contextlib.contextmanager
def _open_zarr_blocked(spec: DatasetSpec, path: Path, opts: Options):
    from zarr.core.buffer import cpu

    zarr = zarr_store.zarr_module()
    array = zarr_store.open_array(path)
    ncols = spec.shape[1]

    def read(r0, r1, out):
        array.get_basic_selection((slice(r0, r1), slice(0, ncols)),
                                  out=cpu.NDBuffer.from_numpy_array(out))

    with zarr.config.set({"async.concurrency": ZARR_READS_IN_FLIGHT}):
        # No readahead hints: cold passes with and without them, alternated, ran 0.81-0.90x
        # (tools/readahead_ab.py); zarr's own reads already keep several chunk files in flight.
        yield SlabOperand(spec, slab_rows(spec, opts), read)


@contextlib.contextmanager
def _open_tensorstore_blocked(spec: DatasetSpec, path: Path, opts: Options):
    import tensorstore as ts

    # One I/O thread (each holds the chunks it read until they are copied out): measured on
    # the 1000 x 100000 float32 store, tensorstore's default I/O concurrency held 34-49 MiB of
    # chunks in flight and two threads 27-45 MiB, one 0-8 MiB, at the same speed.
    context = ts.Context({"cache_pool": {"total_bytes_limit": 0},
                          "file_io_concurrency": {"limit": 1},
                          "data_copy_concurrency": {"limit": zarr_store.ZARR_THREADS}})
    driver = "zarr3" if zarr_store.is_format_3(path) else "zarr"
    store = ts.open({"driver": driver,
                     "kvstore": {"driver": "file", "path": str(zarr_store.array_directory(path))}},
                    open=True, read=True, context=context).result()
    operand = SlabOperand(spec, slab_rows(spec, opts), None,
                          rows_ahead(spec, zarr_store.open_array(path), path))
    target = ts.array(operand.buffer, copy=False, write=True)

    def read(r0, r1, out):
        target[:r1 - r0].write(store[r0:r1]).result()  # copies the slab into the buffer

    operand.read = read
    yield operand


def rows_ahead(spec: DatasetSpec, array, path):
    """``ahead(r0, r1)``: asks the kernel to read the chunk (shard) files that hold rows
    ``r0:r1`` (``strategies.readahead``), so that a cold pass finds them on their way."""
    unit_rows, unit_cols = spec.shards or zarr_store.chunk_shape(spec)
    columns = range(math.ceil(spec.shape[1] / unit_cols))

    def ahead(r0: int, r1: int) -> None:
        if readahead.readahead_bytes() <= 0:
            return
        readahead.advise(readahead.Range(zarr_store.chunk_file(array, path, (i, j)), 0, 0)
                         for i in range(r0 // unit_rows, math.ceil(r1 / unit_rows))
                         for j in columns)

    return ahead


def _chunk_files(spec: DatasetSpec, array, path) -> list[tuple[int, int, Path]]:
    """``(row, col, file)`` of every chunk of the store, in row-major chunk order."""
    ch, cw = zarr_store.chunk_shape(spec)
    return [(i * ch, j * cw, zarr_store.chunk_file(array, path, (i, j)))
            for i in range(math.ceil(spec.shape[0] / ch))
            for j in range(math.ceil(spec.shape[1] / cw))]


class MappedChunkFilesOperand(RowRangeProducts):
    """Every chunk file mapped read-only; each chunk multiplied where it lies. A chunk file
    that is missing holds only the fill value (0) and adds nothing."""

    def __init__(self, spec: DatasetSpec, chunks: list[tuple[int, int, np.ndarray]],
                 files: list[Path] | None = None):
        self.spec, self.chunks = spec, chunks
        self.reader = prefault.reader()
        #: Each chunk file's range, for readahead hints (``strategies.readahead``), or None;
        #: made once here: a pass that made them (one per chunk) held 3.7 MB of anonymous
        #: memory on a store of 14,000 chunks.
        self.ranges = [readahead.Range(file, 0, block.nbytes)
                       for file, (_, _, block) in zip(files, chunks)] if files else None

    def _from_disk(self, wanted: list[int]) -> bool:
        """Whether a pass over chunks ``wanted`` reads from disk: any of the first, middle and
        last chunk files less than half in the page cache (``mincore``, tens of microseconds)."""
        if not self.ranges or not wanted:
            return False
        sample = {wanted[0], wanted[len(wanted) // 2], wanted[-1]}
        return any(resident_fraction(self.ranges[k].file) < 0.5 for k in sample)

    def _run(self, product: Product) -> None:
        """Touches only the chunks that hold the product's rows. From disk, a reader thread
        faults the next chunk in while BLAS multiplies this one (``strategies.prefault``),
        and the chunk files further ahead are asked for (``strategies.readahead``); from the
        page cache neither is done: on the 10000 x 100000 float32 store, warm, they made a
        pass over half the rows 3x slower (260-285 ms against 86 ms on one BLAS thread: a
        hand-off to the reader per 4 MB chunk)."""
        first, stop = product.first, product.stop
        ncols = self.spec.shape[1]
        wanted = [k for k, (r0, _, block) in enumerate(self.chunks)
                  if max(r0, first) < min(r0 + block.shape[0], stop)]
        from_disk = self._from_disk(wanted)
        hints = readahead.Readahead([self.ranges[k] for k in wanted]) if from_disk else None

        def fault_in(index: int) -> None:
            r0, _, block = self.chunks[wanted[index]]
            rows = block[max(r0, first) - r0:min(r0 + block.shape[0], stop) - r0]
            whole = rows if rows.flags.c_contiguous else block
            populate(whole.ctypes.data, whole.nbytes)

        for index in prefault.faulted_ahead(self.reader if from_disk else None, len(wanted),
                                            fault_in, hints.reached if hints else None):
            r0, c0, block = self.chunks[wanted[index]]
            # Edge chunks are stored whole (padded); use their valid part only.
            top, bottom = max(r0, first), min(r0 + block.shape[0], stop)
            w = min(block.shape[1], ncols - c0)
            product.add(top, c0, computed(block[top - r0:bottom - r0, :w], self.spec))

    def close(self) -> None:
        self.reader.shutdown(wait=True)


@contextlib.contextmanager
def _open_mmap(spec: DatasetSpec, path: Path, opts: Options):
    array = zarr_store.open_array(path)
    refusal = zarr_store.raw_chunks_refusal(array)
    if refusal:
        raise ValueError(f"zarr-mmap cannot map {Path(path).name}: {refusal}, not raw "
                         "bytes; use zarr-blocked or tensorstore-blocked")
    shape = zarr_store.chunk_shape(spec)
    dtype, order = zarr_store.chunk_layout(array)
    maps, chunks, files = [], [], []
    readahead.start()
    try:
        for r0, c0, file in _chunk_files(spec, array, path):
            if not file.exists():
                continue
            with open(file, "rb") as fh:
                maps.append(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))
            chunks.append((r0, c0, np.frombuffer(maps[-1], dtype=dtype).reshape(shape, order=order)))
            files.append(file)
        operand = MappedChunkFilesOperand(spec, chunks, files)
        try:
            yield operand
        finally:
            operand.close()
    finally:
        chunks.clear()
        for m in maps:
            with contextlib.suppress(BufferError):
                m.close()


#: The codecs tensorstore decodes (zarr-python's class names; format 2: numcodecs ids).
TENSORSTORE_CODECS = {"BytesCodec", "ShardingCodec", "TransposeCodec", "BloscCodec", "GzipCodec",
                      "ZstdCodec", "Crc32cCodec"}
TENSORSTORE_V2_COMPRESSORS = {"blosc", "zlib", "gzip", "bz2", "zstd"}


def _tensorstore_refusal(spec: DatasetSpec, location) -> str:
    """The codecs of the store tensorstore cannot decode, named ("" when it can)."""
    array = zarr_store.open_array(location)
    if zarr_store.is_format_3(location):
        names = [type(c).__name__ for c in (*array.filters, array.serializer, *array.compressors)]
        unknown = [name for name in names if name not in TENSORSTORE_CODECS]
    else:
        ids = [getattr(c, "codec_id", type(c).__name__) for c in (*array.filters, *array.compressors)]
        unknown = [i for i in ids if i not in TENSORSTORE_V2_COMPRESSORS] + \
            (["filters"] if array.filters else [])
    if not unknown:
        return ""
    return (f"tensorstore does not decode {', '.join(dict.fromkeys(unknown))}; "
            "use zarr-blocked")


def _mmap_refusal(spec: DatasetSpec, location) -> str:
    refusal = zarr_store.raw_chunks_refusal(zarr_store.open_array(location))
    return f"{refusal}, not raw bytes; use zarr-blocked" if refusal else ""


def _accepts_codec(spec: DatasetSpec) -> bool:
    return zarr_store.accepts_compression(spec.compression)


_CODEC_REFUSAL = zarr_store.codec_refusal()

# Two readers of the same bytes into the same reused slab: the same facts, another library.
for _name, _description, _opener, _imports, _location_refusal in (
        ("zarr-blocked", "row slabs (whole chunk-rows) read by zarr into one reused buffer (out=)",
         _open_zarr_blocked, (), None),
        ("tensorstore-blocked",
         "the same row slabs read by tensorstore (no chunk cache) into one reused buffer",
         _open_tensorstore_blocked, ("tensorstore",), _tensorstore_refusal)):
    register(Strategy(
        name=_name, family="zarr", storage=("zarr",), out_of_core=True,
        description=_description, opener=_opener,
        budget=lambda spec, opts: _slab_bytes(spec, opts) + reader_bytes(spec),
        resident=one_block_bytes, pass_seconds=_pass_seconds,
        accepts_fn=_accepts_codec, refusal=_CODEC_REFUSAL,
        questions=("compression",), imports=_imports, location_refusal=_location_refusal,
        conversion=lambda spec, opts: 0,  # _slab_bytes counts the converted slab
    ))
register(Strategy(
    name="zarr-mmap", family="zarr", storage=("zarr",), out_of_core=True,
    description="zero-copy: every uncompressed chunk file mapped, multiplied in place",
    opener=_open_mmap, budget=lambda spec, opts: 0,
    resident=one_block_bytes, pass_seconds=_pass_seconds,
    accepts_fn=lambda spec: spec.compression in (None, "none") and spec.shards is None,
    refusal="only uncompressed, unsharded chunk files are the array's bytes; "
            "use zarr-blocked or tensorstore-blocked",
    location_refusal=_mmap_refusal,
))
