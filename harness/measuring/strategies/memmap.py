"""Memory-mapped flat binary files: ``numpy.memmap`` as a user writes it, the notebook's row
loop, and a blocked product that keeps the mapped (resident) pages within the budget."""

from __future__ import annotations

import contextlib
import dataclasses
import mmap
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import DatasetSpec, computed
from harness.measuring.meters.pagecache import PAGE_BYTES, populate
from harness.measuring.storage.base import byte_offset
from harness.measuring.strategies import prefault
from harness.measuring.strategies.base import (
    Options,
    Strategy,
    block_rows,
    one_block_bytes,
    register,
    streaming_seconds,
)
from harness.measuring.strategies.products import BlockProducts, Product, RowRangeProducts

#: blocked_product unmaps the pages of each finished block only when the matrix is larger than
#: this fraction of the RAM available now. Mapped file pages are page cache the kernel can
#: reclaim, and unmapping them makes the next product fault them all in again (~15 ms per
#: 400 MB here), so a matrix that fits comfortably keeps its mapping.
RELEASE_ABOVE_FRACTION_OF_AVAILABLE = 0.5


def should_release_pages(matrix_bytes: int) -> bool:
    import psutil

    return matrix_bytes > RELEASE_ABOVE_FRACTION_OF_AVAILABLE * psutil.virtual_memory().available


#: Pages dropped from the page cache in batches of at least this many bytes: each
#: ``POSIX_FADV_DONTNEED`` drains every CPU's page lists first, and one call per 8 MiB block
#: halved the read rate (cold, 6 GB of the 32 GB matrix, three passes each: 1.60 GB/s
#: against 3.24 GB/s in batches of 256 MiB; ``tools/past_ram_drop.py``; a second call: 2.41 against 3.29 GB/s).
UNCACHE_BATCH_BYTES = 256 << 20
#: Each batch starts this far back (the largest page-cache folio a file gets here, 2 MiB):
#: the kernel drops only folios wholly inside the range, and the folios a batch boundary
#: split stayed behind, and with them the next passes over the same mapping read at 1.16-1.31
#: GB/s (medians) instead of 3.38-3.51 GB/s with the overlap and a last drop to the end of the
#: file (6 GB of the 32 GB matrix, ``tools/past_ram_drop.py --passes 3 --rounds 2``).
UNCACHE_OVERLAP_BYTES = 2 << 20


def cannot_be_cached(matrix_bytes: int) -> bool:
    """The matrix is larger than this machine's RAM: its pages cannot all stay in the page
    cache, so a pass that left them there would only make the kernel reclaim them during the
    next one (measured on the 32 GB matrix: the second pass 21% slower than the first)."""
    import psutil

    return matrix_bytes > psutil.virtual_memory().total


class MappedMatrix:
    """A read-only mapping of a whole file with a 2-D view of ``shape`` at byte ``offset``.

    ``release(start, stop)`` drops the mapping's pages in a byte range (``MADV_DONTNEED``):
    they stay in the page cache, but leave this process's resident set; ``uncache(start,
    stop)`` then drops them from the page cache too (``POSIX_FADV_DONTNEED``).
    """

    def __init__(self, path: Path, offset: int, shape: tuple[int, int], dtype: str):
        self._fd = os.open(path, os.O_RDONLY)
        try:
            self._map = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
        except BaseException:
            os.close(self._fd)
            raise
        count = shape[0] * shape[1]
        self.offset = offset
        self.array = np.frombuffer(self._map, dtype=dtype, count=count, offset=offset).reshape(shape)

    def advise_sequential(self) -> None:
        self._map.madvise(mmap.MADV_SEQUENTIAL)

    def prefetch(self, start: int, stop: int) -> None:
        """Ask the kernel to start reading the pages of [start, stop) (``MADV_WILLNEED``)."""
        first = start // PAGE_BYTES * PAGE_BYTES
        if stop > first:
            self._map.madvise(mmap.MADV_WILLNEED, first, min(stop, len(self._map)) - first)

    def release(self, start: int, stop: int) -> None:
        """Drop the whole pages inside [start, stop) (bytes from the start of the file)."""
        first = -(-start // PAGE_BYTES) * PAGE_BYTES
        last = stop // PAGE_BYTES * PAGE_BYTES
        if last > first:
            self._map.madvise(mmap.MADV_DONTNEED, first, last - first)

    def uncache(self, start: int, stop: int | None = None) -> None:
        """Drop the file's clean pages in [start, stop) (``stop`` None: to the end of the
        file) from the page cache, once released from the mapping (a hint: nothing happens
        where it is not offered). The kernel drops only whole folios inside the range."""
        with contextlib.suppress(OSError, AttributeError):
            os.posix_fadvise(self._fd, start, 0 if stop is None else stop - start,
                             os.POSIX_FADV_DONTNEED)

    def close(self) -> None:
        self.array = None
        try:
            self._map.close()
        except BufferError:
            pass  # a caller still holds a view; the mapping goes when that view does
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@contextlib.contextmanager
def mapped(path: Path, offset: int, shape: tuple[int, int], dtype: str) -> Iterator[MappedMatrix]:
    m = MappedMatrix(path, offset, shape, dtype)
    try:
        yield m
    finally:
        m.close()


#: Rows per block aim at this many bytes (within the budget): small enough that the next
#: block is being read while this one is multiplied, large enough to amortise a call.
PIPELINE_BLOCK_BYTES = 8 * 1024 * 1024
#: Fixed cost of one row of the row loop (a numpy row view and a short dot), in seconds: only
#: for the pass-time estimate.
ASSUMED_SECONDS_PER_ROW = 5e-6


def pipelined_block_rows(spec_rows: int, row_bytes: int, rows_per_block: int) -> int:
    """Rows per block for ``blocked_product``: at most ``rows_per_block`` (the budget), about
    ``PIPELINE_BLOCK_BYTES``."""
    return max(1, min(rows_per_block, PIPELINE_BLOCK_BYTES // row_bytes, spec_rows))


def blocked_product(mapping: MappedMatrix, product: Product, rows_per_block: int,
                    release: bool | None = None, reader: ThreadPoolExecutor | None = None,
                    convert=None, uncache: bool | None = None) -> None:
    """One pass of ``product`` over the row blocks of a mapping (its rows ``[first, stop)``),
    each block through ``convert`` first where the file stores other values.

    While BLAS multiplies a block, ``reader`` (a one-thread pool) faults the next one in
    (``populate``). With ``release`` (default: ``should_release_pages``), each block's pages
    are unmapped once used, so at most about two blocks are mapped-resident at a time. With
    ``uncache`` (default: ``cannot_be_cached``; only with ``release``), they are dropped from
    the page cache as well, so that a matrix larger than RAM never fills it: every pass then
    reads as the first did, with no reclaim of the previous pass's pages in its way.
    ``convert(block)``: the block as ``x``'s dtype, where the file stores other values.
    """
    a = mapping.array
    if release is None:
        release = should_release_pages(a.nbytes)
    if uncache is None:
        uncache = cannot_be_cached(a.nbytes)
    ncols = a.shape[1]
    row_bytes = ncols * a.itemsize
    base = a.ctypes.data
    blocks = [(r0, min(r0 + rows_per_block, product.stop))
              for r0 in range(product.first, product.stop, rows_per_block)]
    if not blocks:
        return

    def fault_in(index: int) -> None:
        r0, r1 = blocks[index]
        populate(base + r0 * row_bytes, (r1 - r0) * row_bytes)

    own_reader = reader is None
    reader = reader or prefault.reader()
    try:
        released = uncached = mapping.offset + product.first * row_bytes
        for index in prefault.faulted_ahead(reader, len(blocks), fault_in):
            r0, r1 = blocks[index]
            product.put(r0, a[r0:r1] if convert is None else convert(a[r0:r1]))
            if release:
                end = mapping.offset + r1 * row_bytes
                mapping.release(released, end)
                released = end // PAGE_BYTES * PAGE_BYTES
                if uncache and index == len(blocks) - 1:  # and the readahead past the end
                    mapping.uncache((mapping.offset + product.first * row_bytes)
                                    // PAGE_BYTES * PAGE_BYTES)
                elif uncache and released - uncached >= UNCACHE_BATCH_BYTES:
                    mapping.uncache(max(0, uncached - UNCACHE_OVERLAP_BYTES), released)
                    uncached = released
    finally:
        if own_reader:
            reader.shutdown(wait=True)


class NumpyMemmapOperand(BlockProducts):
    """``numpy.memmap`` as a user writes it; ``rows=True`` is the notebook's row loop."""

    def __init__(self, spec: DatasetSpec, path: Path, rows: bool):
        self.spec = spec
        # The file's own dtype and order, as a user maps it: ``mm @ x`` then converts the
        # whole matrix (numpy's type promotion) where the file stores other values.
        self.matrix = np.memmap(os.fspath(path), dtype=spec.file_dtype, mode="r",
                                shape=spec.shape, offset=byte_offset(path), order=spec.order)
        self.rows = rows

    def _run(self, product: Product) -> None:
        if not self.rows:
            product.whole(self.matrix)
            return
        for i in range(self.spec.shape[0]):
            product.put(i, self.matrix[i:i + 1])

    def close(self) -> None:
        mm = getattr(self.matrix, "_mmap", None)
        self.matrix = None
        if mm is not None:
            with contextlib.suppress(BufferError):
                mm.close()


class BlockedMapOperand(RowRangeProducts):
    """Row blocks of a mapping, the next block faulted in by a reader thread (see
    ``blocked_product``). Once a product has run through the whole mapping without releasing
    pages, they are all mapped: later products multiply the mapping in one BLAS call, with no
    per-block hand-offs (pages the kernel reclaimed meanwhile are simply faulted in again)."""

    def __init__(self, spec: DatasetSpec, mapping: MappedMatrix, rows_per_block: int):
        self.spec = spec
        self.mapping = mapping
        self.rows_per_block = pipelined_block_rows(spec.shape[0], spec.shape[1] * spec.itemsize,
                                                   rows_per_block)
        self.release = should_release_pages(mapping.array.nbytes)
        self.whole_mapping_populated = False
        self.reader = prefault.reader()
        # A file of other values: each block converted into one reused buffer.
        self.converted = (np.empty((self.rows_per_block, spec.shape[1]), dtype=spec.dtype)
                          if spec.converts else None)

    def _convert(self, block: np.ndarray) -> np.ndarray:
        return computed(block, self.spec, out=self.converted[:block.shape[0]])

    def _run(self, product: Product) -> None:
        whole = (product.first, product.stop) == (0, self.spec.shape[0])
        if not whole and not self.spec.converts:  # a worker's rows: one BLAS call on them
            product.put(product.first, self.mapping.array[product.first:product.stop])
            return
        if not whole:  # converted a block at a time, where the file stores other values
            for r0 in range(product.first, product.stop, self.rows_per_block):
                r1 = min(r0 + self.rows_per_block, product.stop)
                product.put(r0, self._convert(self.mapping.array[r0:r1]))
            return
        if self.whole_mapping_populated:
            product.whole(self.mapping.array)
            return
        blocked_product(self.mapping, product, self.rows_per_block, release=self.release,
                        reader=self.reader,
                        convert=self._convert if self.spec.converts else None)
        self.whole_mapping_populated = not self.release and not self.spec.converts

    def close(self) -> None:
        self.reader.shutdown(wait=True)


class ColumnBlocksOperand(BlockProducts):
    """A column-major matrix (a ``.npy`` saved in Fortran order): its file holds ``Aᵀ`` row by
    row, so ``A @ x`` is the sum over column blocks ``A[:, c0:c1] @ x[c0:c1]``, each block a
    contiguous run of the file (converted into one reused buffer where the file stores other
    values)."""

    def __init__(self, spec: DatasetSpec, mapping: MappedMatrix, cols_per_block: int):
        self.spec, self.mapping = spec, mapping
        self.cols_per_block = cols_per_block
        self.converted = (np.empty((cols_per_block, spec.shape[0]), dtype=spec.dtype)
                          if spec.converts else None)

    def _run(self, product: Product) -> None:
        transposed = self.mapping.array  # (cols, rows): row c of the file is column c of A
        for c0 in range(0, self.spec.shape[1], self.cols_per_block):
            c1 = min(c0 + self.cols_per_block, self.spec.shape[1])
            block = transposed[c0:c1]
            if self.converted is not None:
                block = computed(block, self.spec, out=self.converted[:c1 - c0])
            product.add(0, c0, block.T)  # A[:, c0:c1]


def _numpy_memmap_opener(rows: bool):
    @contextlib.contextmanager
    def opener(spec: DatasetSpec, path: Path, opts: Options):
        operand = NumpyMemmapOperand(spec, path, rows)
        try:
            yield operand
        finally:
            operand.close()

    return opener


@contextlib.contextmanager
def open_blocked_map(spec: DatasetSpec, path: Path, offset: int, opts: Options
                     ) -> Iterator[BlockedMapOperand]:
    """A ``BlockedMapOperand`` over the matrix stored at byte ``offset`` of ``path`` (a
    ``ColumnBlocksOperand`` for a column-major one)."""
    if spec.order == "F":
        with mapped(path, offset, spec.shape[::-1], spec.file_dtype) as mapping:
            mapping.advise_sequential()
            # Column blocks of about a row block's bytes (``block_rows`` of the transpose).
            yield ColumnBlocksOperand(spec, mapping, pipelined_block_rows(
                spec.shape[1], spec.shape[0] * spec.itemsize,
                block_rows(dataclasses.replace(spec, shape=spec.shape[::-1]), opts)))
        return
    with mapped(path, offset, spec.shape, spec.file_dtype) as mapping:
        mapping.advise_sequential()
        operand = BlockedMapOperand(spec, mapping, block_rows(spec, opts))
        try:
            yield operand
        finally:
            operand.close()


@contextlib.contextmanager
def _open_blocked(spec: DatasetSpec, path: Path, opts: Options):
    offset = byte_offset(path)
    expected = offset + spec.stored_dense_bytes
    if os.path.getsize(path) != expected:
        raise ValueError(f"{os.fspath(path)} holds {os.path.getsize(path)} bytes, expected "
                         f"{expected} for {spec}")
    with open_blocked_map(spec, path, offset, opts) as operand:
        yield operand


def _row_loop_seconds(spec: DatasetSpec, opts: Options) -> float:
    return streaming_seconds(spec, opts) + spec.shape[0] * ASSUMED_SECONDS_PER_ROW


# A map holds no anonymous memory; its pages are page cache, of which a pass keeps about one
# block in use.
register(Strategy(
    name="memmap", family="memmap", storage=("raw",), out_of_core=True,
    description="numpy.memmap, mm @ x (x cast to the matrix dtype)",
    opener=_numpy_memmap_opener(rows=False), budget=lambda spec, opts: 0,
    resident=one_block_bytes, pass_seconds=streaming_seconds, column_major=True,
    conversion=lambda spec, opts: spec.dense_bytes,  # numpy converts the whole map for mm @ x
))
register(Strategy(
    name="memmap-rows", family="memmap", storage=("raw",), out_of_core=True,
    description="numpy.memmap, one row at a time (the notebook's loop)",
    opener=_numpy_memmap_opener(rows=True), budget=lambda spec, opts: 0,
    resident=one_block_bytes, pass_seconds=_row_loop_seconds, column_major=True,
))
register(Strategy(
    name="memmap-blocked", family="memmap", storage=("raw",), out_of_core=True,
    description="mmap, row blocks of memory_budget bytes; pages unmapped after each block "
                "when the matrix exceeds half the available RAM",
    opener=_open_blocked, budget=lambda spec, opts: 0,
    resident=one_block_bytes, pass_seconds=streaming_seconds, column_major=True,
))
