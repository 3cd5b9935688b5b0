"""HDF5 datasets through h5py: the notebook's row loop, read-all, row slabs into one reused
buffer, chunk by chunk in storage order, and a zero-copy memory map of the dataset's bytes.

Files are opened with ``rdcc_nbytes = chunk_cache_bytes`` when that option is given (HDF5 1.x
defaulted to 1 MiB, which reproduces the notebook's pathology; HDF5 2.0 defaults to 8 MiB).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import DatasetSpec, computed, unpacked
from harness.measuring.storage import codecs
from harness.measuring.storage.hdf5 import dataset_of, open_file, stored_chunk_shape
from harness.measuring.strategies.base import (
    Options,
    Strategy,
    block_rows,
    one_block_bytes,
    read_buffer,
    register,
    streaming_seconds,
    whole_matrix_bytes,
)
from harness.measuring.strategies.capabilities import Closable
from harness.measuring.strategies.memmap import open_blocked_map
from harness.measuring.strategies.products import BlockProducts, Product, RowRangeProducts

# Assumptions of the pass-time estimates (they only decide what to skip; figures are measured).
#: Rate of reading the same bytes again, from the page cache through HDF5 (bytes/s).
ASSUMED_REREAD_BYTES_PER_SECOND = 8e9
#: Decompression rates (bytes of output per second); other filters get the fallback.
ASSUMED_DECOMPRESS_BYTES_PER_SECOND = {"gzip": 150e6, "lzf": 400e6, "gzip-4": 150e6,
                                      "gzip-4-shuffle": 180e6, "gzip-1": 200e6,
                                      "gzip-1-shuffle": 220e6, "blosc-lz4": 1.5e9,
                                      "blosc": 1.5e9, "blosc-zstd": 500e6, "zstd": 400e6}
ASSUMED_OTHER_DECOMPRESS_BYTES_PER_SECOND = 300e6
#: Fixed cost of one h5py read call (seconds): the notebook's row loop is made of these.
ASSUMED_SECONDS_PER_READ_CALL = 60e-6


def default_chunk_cache_bytes() -> int:
    """The HDF5 library's default raw-data chunk cache (``rdcc_nbytes``), in bytes."""
    import h5py

    return int(h5py.h5p.create(h5py.h5p.FILE_ACCESS).get_cache()[2])


def chunk_cache_bytes(opts: Options) -> int:
    return opts.chunk_cache_bytes if opts.chunk_cache_bytes is not None else default_chunk_cache_bytes()


#: hdf5-blocked reads whole chunk-rows once each, so a chunk cache only adds a copy (measured:
#: 107 -> 46 ms for the 1000x100000 float32 matrix in (10, 100000) chunks): none by default.
BLOCKED_DEFAULT_CACHE_BYTES = 0


def _row_bytes(spec: DatasetSpec) -> int:
    return spec.shape[1] * spec.itemsize


#: Slab size hdf5-blocked aims for when block_rows is not given: small enough that a slab just
#: read is still in the CPU cache when BLAS multiplies it, large enough to amortise a read call.
PIPELINE_SLAB_BYTES = 4 * 1024 * 1024


def _aligned_block_rows(spec: DatasetSpec, opts: Options) -> int:
    """Rows per slab of hdf5-blocked: two slabs fit ``memory_budget``, each about
    ``PIPELINE_SLAB_BYTES``; whole chunk-rows where two of them fit the budget, so every chunk
    is read once.

    Compressed chunks are always read as whole chunk-rows (a chunk cut across slabs would be
    decoded once per slab), so for tall compressed chunks the declared budget grows past
    ``memory_budget``. Uncompressed chunks are read in part straight from the file, so tall
    ones (column-shaped, square) are cut into budget-sized slabs instead.
    """
    chunks = stored_chunk_shape(spec)
    align = chunks[0] if chunks else 1
    if opts.block_rows is None:
        slab = min(opts.memory_budget // 2, PIPELINE_SLAB_BYTES)
        if spec.compression is None and 2 * align * _row_bytes(spec) > opts.memory_budget:
            align = 1
        opts = dataclasses.replace(opts, memory_budget=max(1, slab))
    return block_rows(spec, opts, align_rows=align)


def _blocked_cache_bytes(spec: DatasetSpec, opts: Options) -> int:
    """hdf5-blocked's chunk cache (bytes): the one asked for (none by default), except none
    for a contiguous dataset, and none where slabs cut uncompressed chunks and the cache cannot
    hold a whole chunk-row of them. HDF5 then reads each part straight from the file, where a
    smaller cache would load every chunk whole once per slab (measured: 2.76 s a pass against
    0.15 s for the 1000x100000 float32 matrix in (1000, 1048) chunks with an 8 MiB cache)."""
    chunks = stored_chunk_shape(spec)
    if chunks is None:
        return 0  # a contiguous dataset has no chunk cache to fill
    cache = opts.chunk_cache_bytes if opts.chunk_cache_bytes is not None else BLOCKED_DEFAULT_CACHE_BYTES
    if spec.compression is None and _aligned_block_rows(spec, opts) % chunks[0]:
        chunk_row_bytes = chunks[0] * _row_bytes(spec)
        if cache < chunk_row_bytes:
            return 0
    return cache


# ---------------------------------------------------------------------------------- operands

class RowsOperand(BlockProducts):
    """The notebook's loop: ``y[i] = dset[i, :] @ x``, one HDF5 read per row."""

    def __init__(self, spec, dset):
        self.spec, self.dset = spec, dset

    def _run(self, product: Product) -> None:
        for i in range(self.spec.shape[0]):
            product.put(i, computed(self.dset[i:i + 1, :], self.spec))


class ReadAllOperand(BlockProducts):
    """Read the whole dataset into RAM, then multiply (needs the matrix's size in RAM)."""

    def __init__(self, spec, dset):
        self.spec, self.dset = spec, dset

    def _run(self, product: Product) -> None:
        matrix = np.empty(self.spec.shape, dtype=self.spec.dtype)
        self.dset.read_direct(matrix)  # HDF5 converts a file of other values as it reads
        product.whole(unpacked(matrix, self.spec))


@functools.lru_cache(maxsize=1)
def blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class BlockedOperand(RowRangeProducts):
    """Row slabs read with ``read_direct`` into two reused buffers: a reader thread fills one
    slab while BLAS multiplies the other (h5py holds the GIL during a read, but ``np.dot``
    releases it, so the copy out of the page cache and the product overlap on two cores)."""

    def __init__(self, spec, dset, rows_per_block):
        self.spec, self.dset, self.rows_per_block = spec, dset, rows_per_block
        self.buffers = [read_buffer((rows_per_block, spec.shape[1]), spec.dtype) for _ in range(2)]
        self.blocks = [(r0, min(r0 + rows_per_block, spec.shape[0]))
                       for r0 in range(0, spec.shape[0], rows_per_block)]
        self.reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hdf5-blocked-reader")
        # H5Dread with dataspaces made once: measured 25-28 ms for the 400 MB matrix against
        # 31-53 ms through read_direct, which builds the selections at every call.
        import h5py

        self.file_space = dset.id.get_space()
        self.memory_spaces = {n: h5py.h5s.create_simple((n, spec.shape[1]))
                              for n in {r1 - r0 for r0, r1 in self.blocks}}

    def _read(self, block: tuple[int, int], buffer: np.ndarray) -> None:
        r0, r1 = block
        if r1 - r0 not in self.memory_spaces:
            import h5py

            self.memory_spaces[r1 - r0] = h5py.h5s.create_simple((r1 - r0, self.spec.shape[1]))
        self.file_space.select_hyperslab((r0, 0), (r1 - r0, self.spec.shape[1]))
        # The buffer's dtype is the memory type: HDF5 converts a file of other values.
        self.dset.id.read(self.memory_spaces[r1 - r0], self.file_space, buffer[:r1 - r0])
        unpacked(buffer[:r1 - r0], self.spec)

    def _run(self, product: Product) -> None:
        first, stop = product.first, product.stop
        blocks = self.blocks if (first, stop) == (0, self.spec.shape[0]) else [
            (r0, min(r0 + self.rows_per_block, stop))
            for r0 in range(first, stop, self.rows_per_block)]
        # One BLAS thread: the reader needs the other core, and OpenBLAS's idle threads spin.
        with blas_controller().limit(limits=1, user_api="blas"):
            pending = self.reader.submit(self._read, blocks[0], self.buffers[0]) if blocks else None
            for index, (r0, r1) in enumerate(blocks):
                pending.result()
                if index + 1 < len(blocks):
                    pending = self.reader.submit(self._read, blocks[index + 1],
                                                 self.buffers[(index + 1) % 2])
                product.put(r0, self.buffers[index % 2][:r1 - r0])

    def close(self) -> None:
        self.reader.shutdown(wait=True)


class ChunkedOperand(BlockProducts):
    """Visit the chunks in the order they sit in the file; one chunk-sized buffer.

    Unfiltered chunks are read with ``read_direct_chunk`` (H5Dread_chunk: the chunk's bytes
    straight into the buffer, no selection, no chunk cache); filtered chunks go through
    ``read_direct`` so that HDF5 decodes them.
    """

    def __init__(self, spec, dset):
        self.spec, self.dset = spec, dset
        self.chunk = dset.chunks
        # Chunks of other values than the product's go through HDF5, which converts them.
        self.filtered = dset.id.get_create_plist().get_nfilters() > 0 or spec.converts
        self.offsets = [offset for offset, _ in sorted(_chunk_locations(dset), key=lambda c: c[1])]
        self.buffer = read_buffer(self.chunk, spec.dtype)
        self.raw = self.buffer.reshape(-1).view(np.uint8)  # the same memory, as bytes

    def _run(self, product: Product) -> None:
        nrows, ncols = self.spec.shape
        ch, cw = self.chunk
        for r0, c0 in self.offsets:
            h, w = min(ch, nrows - r0), min(cw, ncols - c0)
            if self.filtered:
                self.dset.read_direct(self.buffer, np.s_[r0:r0 + h, c0:c0 + w], np.s_[0:h, 0:w])
                unpacked(self.buffer[:h, :w], self.spec)
            else:
                # Edge chunks are stored whole (padded): the valid corner is [:h, :w].
                self.dset.id.read_direct_chunk((r0, c0), out=self.raw)
            product.add(r0, c0, self.buffer[:h, :w])


class MappedChunksOperand(RowRangeProducts):
    """Uncompressed chunks multiplied in place through one read-only map of the file."""

    def __init__(self, spec, buffer, chunk, locations):
        self.spec, self.buffer, self.chunk = spec, buffer, chunk
        self.locations = sorted(locations, key=lambda c: c[1])

    def _run(self, product: Product) -> None:
        """Touches only the chunks that hold the product's rows."""
        first, stop = product.first, product.stop
        ncols = self.spec.shape[1]
        ch, cw = self.chunk
        count = ch * cw
        for (r0, c0), byte_offset in self.locations:
            # Edge chunks are stored whole (padded); use their valid part only.
            top, bottom = max(r0, first), min(r0 + ch, stop)
            if top >= bottom:
                continue
            block = np.frombuffer(self.buffer, dtype=self.spec.file_dtype, count=count,
                                  offset=byte_offset)
            w = min(cw, ncols - c0)
            product.add(top, c0, computed(block.reshape(ch, cw)[top - r0:bottom - r0, :w],
                                          self.spec))


def _chunk_locations(dset) -> list[tuple[tuple[int, int], int]]:
    """``[((row, col) of the chunk, byte offset in the file), ...]`` of the allocated chunks."""
    locations = []

    def visit(info):
        locations.append((tuple(info.chunk_offset), int(info.byte_offset)))

    dset.id.chunk_iter(visit)
    return locations


# ----------------------------------------------------------------------------------- openers

def _opener(make_operand):
    @contextlib.contextmanager
    def opener(spec: DatasetSpec, path: Path, opts: Options):
        with open_file(path, opts.chunk_cache_bytes) as f:
            operand = make_operand(spec, dataset_of(f, path), opts)
            try:
                yield operand
            finally:
                if isinstance(operand, Closable):
                    operand.close()

    return opener


def _mmap_refusal(dset) -> str:
    """Why the dataset's bytes cannot be mapped as they are ("" when they can)."""
    import h5py

    dcpl = dset.id.get_create_plist()
    if dcpl.get_nfilters() > 0:
        names = [dcpl.get_filter(i)[3].decode(errors="replace") for i in range(dcpl.get_nfilters())]
        return (f"the dataset is filtered ({', '.join(names)}): its bytes are not the array; "
                "use hdf5-blocked or hdf5-chunked, or store it uncompressed")
    if dcpl.get_external_count() > 0:
        return "the dataset is stored in external files"
    layout = dcpl.get_layout()
    if layout == h5py.h5d.CONTIGUOUS and dset.id.get_offset() is None:
        return "the dataset's storage is not allocated (never written)"
    if layout not in (h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED):
        return "the dataset's layout is neither contiguous nor chunked (compact?)"
    return ""


def _mmap_location_refusal(spec: DatasetSpec, location) -> str:
    """``_mmap_refusal`` of the dataset at ``location``, asked while planning."""
    with open_file(location) as f:
        return _mmap_refusal(dataset_of(f, location))


@contextlib.contextmanager
def _open_mmap(spec: DatasetSpec, path: Path, opts: Options):
    import h5py

    with open_file(path, opts.chunk_cache_bytes) as f:
        dset = dataset_of(f, path)
        refusal = _mmap_refusal(dset)
        if refusal:
            raise ValueError(f"hdf5-mmap cannot map {path.name}: {refusal}")
        contiguous = dset.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS
        offset = dset.id.get_offset() if contiguous else 0
        chunk = dset.chunks
        locations = [] if contiguous else _chunk_locations(dset)
    if contiguous:
        with open_blocked_map(spec, path, offset, opts) as operand:
            yield operand
    else:
        import mmap

        with open(path, "rb") as fh:
            whole = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield MappedChunksOperand(spec, whole, chunk, locations)
        finally:
            with contextlib.suppress(BufferError):
                whole.close()


_open_blocked = _opener(
    lambda spec, dset, opts: BlockedOperand(spec, dset, _aligned_block_rows(spec, opts)))


def _chunk_bytes(spec: DatasetSpec) -> int:
    chunks = stored_chunk_shape(spec)
    return chunks[0] * chunks[1] * spec.itemsize if chunks else 0


def filter_pipeline_bytes(spec: DatasetSpec) -> int:
    """What HDF5 allocates to decode a compressed chunk (bytes): the stored chunk read, the
    filter's output, and the codec's own working memory (0 when not compressed)."""
    if spec.compression is None:
        return 0
    return 2 * _chunk_bytes(spec) + codecs.decoder_working_bytes(spec.compression)


# --------------------------------------------------------------------------- pass estimates

def decompress_seconds(spec: DatasetSpec) -> float:
    """Estimated seconds to decompress the whole matrix once (0 when it is not compressed)."""
    if spec.compression is None:
        return 0.0
    rate = ASSUMED_DECOMPRESS_BYTES_PER_SECOND.get(spec.compression,
                                                   ASSUMED_OTHER_DECOMPRESS_BYTES_PER_SECOND)
    return spec.dense_bytes / rate


def _whole_chunks_seconds(spec: DatasetSpec, opts: Options) -> float:
    """A reader that asks for whole chunk-rows (or chunks) at a time: every chunk is read and
    decompressed once."""
    return streaming_seconds(spec, opts) + decompress_seconds(spec)


def _row_loop_seconds(spec: DatasetSpec, opts: Options) -> float:
    """The row loop: one read call per row, and read amplification through a chunk cache
    smaller than a row of chunks (every chunk is read and decompressed once per row it holds;
    the notebook's pathology on HDF5 1.x)."""
    rows, cols = spec.shape
    seconds = streaming_seconds(spec, opts) + rows * ASSUMED_SECONDS_PER_READ_CALL
    chunks = stored_chunk_shape(spec)
    if chunks is None:
        return seconds + decompress_seconds(spec)
    chunk_rows, chunk_cols = chunks
    chunk_row_bytes = math.ceil(cols / chunk_cols) * _chunk_bytes(spec)
    amplification = chunk_rows if chunk_row_bytes > chunk_cache_bytes(opts) else 1
    # Re-reads come from the page cache (measured here: the 1000 x 100000 float32 row loop on
    # h5py's auto chunks, 16x amplified through a 1 MiB cache, takes 0.5 s a pass).
    rereads = (amplification - 1) * spec.dense_bytes / ASSUMED_REREAD_BYTES_PER_SECOND
    return seconds + rereads + amplification * decompress_seconds(spec)


# -------------------------------------------------------------------------------- strategies

register(Strategy(
    name="hdf5-rows", family="hdf5", storage=("hdf5",), out_of_core=True,
    description="the notebook's loop: y[i] = dset[i, :] @ x",
    opener=_opener(lambda spec, dset, opts: RowsOperand(spec, dset)),
    budget=lambda spec, opts: chunk_cache_bytes(opts) + _row_bytes(spec),
    resident=one_block_bytes, pass_seconds=_row_loop_seconds,
    questions=("chunk_cache",),  # the notebook's pathology: rows through a too-small cache
))
register(Strategy(
    name="hdf5-read", family="hdf5", storage=("hdf5",),
    description="read the whole dataset into RAM, then A @ x",
    opener=_opener(lambda spec, dset, opts: ReadAllOperand(spec, dset)),
    budget=lambda spec, opts: chunk_cache_bytes(opts) + spec.dense_bytes,
    resident=whole_matrix_bytes, pass_seconds=_whole_chunks_seconds,
))
register(Strategy(
    name="hdf5-blocked", family="hdf5", storage=("hdf5",), out_of_core=True,
    description="row slabs (whole chunk-rows) read_direct into two reused buffers, read ahead",
    opener=lambda spec, path, opts: _open_blocked(
        spec, path, dataclasses.replace(opts, chunk_cache_bytes=_blocked_cache_bytes(spec, opts))),
    budget=lambda spec, opts: (_blocked_cache_bytes(spec, opts)
                               + 2 * _aligned_block_rows(spec, opts) * _row_bytes(spec)
                               + filter_pipeline_bytes(spec)),
    resident=one_block_bytes, pass_seconds=_whole_chunks_seconds,
    # Reads in row order, which suits chunked data: compared for the cache and for decompression.
    questions=("chunk_cache", "compression"),
))
register(Strategy(
    name="hdf5-chunked", family="hdf5", storage=("hdf5",), out_of_core=True,
    description="chunk by chunk in file order, one chunk-sized buffer",
    opener=_opener(lambda spec, dset, opts: ChunkedOperand(spec, dset)),
    budget=lambda spec, opts: (chunk_cache_bytes(opts) + _chunk_bytes(spec)
                               + filter_pipeline_bytes(spec)),
    resident=one_block_bytes, pass_seconds=_whole_chunks_seconds,
    accepts_fn=lambda spec: spec.chunks is not None,
    refusal="the dataset is contiguous (chunks=None); use hdf5-blocked",
    questions=("compression",),  # reads in storage order, which suits chunked data
))
register(Strategy(
    name="hdf5-mmap", family="hdf5", storage=("hdf5",), out_of_core=True,
    description="zero-copy: the file mapped at the dataset's (or each chunk's) byte offset",
    opener=_open_mmap, budget=lambda spec, opts: 0,
    resident=one_block_bytes, pass_seconds=_whole_chunks_seconds,
    accepts_fn=lambda spec: spec.compression is None,
    refusal="compressed chunks are not the array's bytes; use hdf5-blocked or hdf5-chunked",
    location_refusal=_mmap_location_refusal,
))
