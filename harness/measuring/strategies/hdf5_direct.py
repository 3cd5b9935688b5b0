"""``hdf5-direct``: an HDF5 dataset's stored chunks read and decoded by the harness itself.

h5py serialises every HDF5 call in a process, and HDF5 decodes a chunk inside the call that
reads it, so ``hdf5-blocked`` decodes on one core however many there are. ``hdf5-direct``
asks HDF5 only where each chunk is (``chunk_iter``: file offset, stored size, filter mask) when
it opens the dataset; a pass then reads each chunk's stored bytes with a positional read
(``os.preadv``, no HDF5 call, no lock), decodes them with codecs that release the GIL
(``harness.measuring.storage.codecs``), and multiplies the decoded chunk by its slice of ``x`` (or its transpose by its slice of ``y``), all in
a pool of worker threads, one chunk per worker at a time, each into its own reused buffers.
The main thread adds the partial products up in chunk order, so the result does not depend on
which worker finished first. A filter it cannot decode is refused at opening with a message
naming the filter.

Memory: each worker holds a stored-chunk buffer, a decoded-chunk buffer and, for a two-stage
pipeline (shuffle + deflate), a scratch buffer, all of the chunk's size, and the working memory
its codec allocates while it decodes (``codecs.decoder_working_bytes``); workers are as many
as the usable cores, fewer where ``memory_budget`` cannot hold their buffers (one at least).
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
from harness.measuring.storage import codecs
from harness.measuring.storage.hdf5 import dataset_of, open_file, stored_chunk_shape
from harness.measuring.strategies.base import (
    Options,
    Strategy,
    one_block_bytes,
    read_buffer,
    register,
    streaming_seconds,
)
from harness.measuring.strategies.hdf5 import blas_controller, decompress_seconds
from harness.measuring.strategies.products import BlockProducts, Product

#: A compressed chunk may be stored a little larger than it is decoded (blosc's and zstd's
#: headers on incompressible data): the stored-chunk buffer gets this share of slack.
STORED_SLACK_FRACTION = 1 / 128
STORED_SLACK_BYTES = 4096


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _chunk_bytes(spec: DatasetSpec) -> int:
    """Bytes of a decoded chunk, of the file's values."""
    chunks = stored_chunk_shape(spec)
    return chunks[0] * chunks[1] * spec.file_dtype.itemsize


def _converted_bytes(spec: DatasetSpec) -> int:
    """Bytes of a chunk converted to the product's dtype (0 when the file stores that)."""
    chunks = stored_chunk_shape(spec)
    return chunks[0] * chunks[1] * spec.itemsize if spec.converts else 0


def _chunk_count(spec: DatasetSpec) -> int:
    (rows, cols), (ch, cw) = spec.shape, stored_chunk_shape(spec)
    return math.ceil(rows / ch) * math.ceil(cols / cw)


def stored_buffer_bytes(chunk_bytes: int) -> int:
    """Capacity of a worker's stored-chunk buffer for chunks of ``chunk_bytes`` decoded."""
    return chunk_bytes + int(chunk_bytes * STORED_SLACK_FRACTION) + STORED_SLACK_BYTES


def worker_bytes(spec: DatasetSpec) -> int:
    """Memory one worker holds (bytes): stored chunk (unless chunks are stored unfiltered:
    then they are read straight into the decoded buffer), decoded chunk, scratch if two
    stages, and its codec's working memory."""
    chunk = _chunk_bytes(spec)
    stages = codecs.decode_stages(spec.compression)
    stored = stored_buffer_bytes(chunk) if stages else 0
    scratch = chunk if stages > 1 else 0
    return (stored + chunk + scratch + _converted_bytes(spec)
            + codecs.decoder_working_bytes(spec.compression, chunk))


def workers_for(per_worker_bytes: int, chunks: int, opts: Options) -> int:
    """Decoding threads of a direct reader: the usable cores, no more than the ``chunks``,
    and no more than ``memory_budget`` holds the buffers of (``per_worker_bytes`` each; one
    worker at least)."""
    fit = opts.memory_budget // per_worker_bytes
    return max(1, min(usable_cores(), chunks, fit))


def worker_count(spec: DatasetSpec, opts: Options) -> int:
    """Decoding threads (``workers_for``)."""
    return workers_for(worker_bytes(spec), _chunk_count(spec), opts)


def declared_budget(spec: DatasetSpec, opts: Options) -> int:
    """In-flight chunks x their buffers (bytes): every worker's buffers."""
    return worker_count(spec, opts) * worker_bytes(spec)


@dataclasses.dataclass(frozen=True)
class StoredChunk:
    """Where one chunk sits: its first (row, column), file offset and size (bytes), and the
    filters skipped when it was written (bit i: filter i)."""

    row: int
    col: int
    offset: int
    size: int
    filter_mask: int


@dataclasses.dataclass
class Buffers:
    stored: np.ndarray   # uint8, the largest stored chunk
    decoded: np.ndarray  # the chunk's shape, the file's dtype
    scratch: np.ndarray | None  # uint8, a second stage's output
    converted: np.ndarray | None  # the chunk's shape, the product's dtype (a file of others)


class DirectOperand(BlockProducts):
    """Chunks read with ``preadv`` and decoded by a pool of workers; see the module docstring.

    ``profile`` (after each product): seconds summed over the workers spent reading,
    decoding and multiplying (wall time: a worker waiting for a core counts), the CPU seconds
    the workers used (``worker_cpu_seconds``; below the wall-time sum when other processes
    took the cores), the main thread's seconds waiting for a worker's result
    (``wait_seconds``) and adding partial products (``add_seconds``), and bytes read
    (``stored_bytes``) and decoded (``decoded_bytes``).
    """

    def __init__(self, spec: DatasetSpec, path: Path, chunk_shape, chunks: list[StoredChunk],
                 decoder: codecs.ChunkDecoder, workers: int):
        self.spec, self.chunk_shape, self.chunks, self.decoder = spec, chunk_shape, chunks, decoder
        self.workers = workers
        chunk_bytes = chunk_shape[0] * chunk_shape[1] * spec.file_dtype.itemsize
        largest = max([c.size for c in chunks], default=0)
        stored_bytes = max(largest, stored_buffer_bytes(chunk_bytes)) if decoder.filters else 0
        self.free: queue.SimpleQueue[Buffers] = queue.SimpleQueue()
        for _ in range(workers):
            self.free.put(Buffers(
                stored=read_buffer((stored_bytes,), np.uint8),
                decoded=read_buffer(chunk_shape, spec.file_dtype),
                scratch=read_buffer((chunk_bytes,), np.uint8) if decoder.scratch_needed else None,
                converted=read_buffer(chunk_shape, spec.dtype) if spec.converts else None))
        self.fd = os.open(path, os.O_RDONLY)
        with contextlib.suppress(AttributeError, OSError):  # a longer readahead, where offered
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hdf5-direct")
        self.profile: dict = {}

    def _chunk_product(self, chunk: StoredChunk, product: Product) -> tuple[np.ndarray, tuple]:
        """Read, decode and multiply one chunk (in a worker): its part of the product and
        timings."""
        buffers = self.free.get()
        try:
            cpu_started = time.thread_time()
            started = time.perf_counter()
            decoded = buffers.decoded.reshape(-1).view(np.uint8)
            # Unfiltered chunks are read straight into the decoded buffer.
            stored = buffers.stored[:chunk.size] if self.decoder.filters else decoded
            read = os.preadv(self.fd, [stored], chunk.offset)
            if read != chunk.size:
                raise OSError(f"hdf5-direct read {read} of {chunk.size} bytes at offset "
                              f"{chunk.offset}: the file is shorter than HDF5 says")
            decoding = time.perf_counter()
            if self.decoder.filters:
                self.decoder.decode(stored, chunk.filter_mask, decoded, buffers.scratch)
            multiplying = time.perf_counter()
            nrows, ncols = self.spec.shape
            height = min(self.chunk_shape[0], nrows - chunk.row)
            width = min(self.chunk_shape[1], ncols - chunk.col)
            # Edge chunks are stored whole (padded): their valid corner is [:height, :width].
            block = buffers.decoded[:height, :width]
            if buffers.converted is not None:
                block = computed(block, self.spec, out=buffers.converted[:height, :width])
            part = product.part(chunk.row, chunk.col, block)
            done = time.perf_counter()
            return part, (decoding - started, multiplying - decoding, done - multiplying,
                          time.thread_time() - cpu_started)
        finally:
            self.free.put(buffers)

    def _run(self, product: Product) -> None:
        # One BLAS thread per product: the workers are the parallelism.
        with blas_controller().limit(limits=1, user_api="blas"):
            self._pass(product)

    def _pass(self, product: Product) -> None:
        totals = np.zeros(4)
        wait = add = 0.0
        # A bounded window of submitted chunks: the partial products waiting to be added stay
        # few (each is one chunk's rows long).
        window = 2 * self.workers
        pending: deque = deque()
        for chunk in self.chunks:
            pending.append((chunk.row, chunk.col,
                            self.pool.submit(self._chunk_product, chunk, product)))
            if len(pending) < window:
                continue
            wait, add = add_oldest(pending, product, totals, wait, add)
        while pending:
            wait, add = add_oldest(pending, product, totals, wait, add)
        self.profile = {
            "workers": self.workers, "chunks": len(self.chunks),
            "read_seconds": totals[0], "decode_seconds": totals[1],
            "multiply_seconds": totals[2], "worker_cpu_seconds": totals[3],
            "wait_seconds": wait, "add_seconds": add,
            "stored_bytes": sum(c.size for c in self.chunks), "decoded_bytes": self.spec.stored_dense_bytes,
        }

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        os.close(self.fd)


def add_oldest(pending: deque, product: Product, totals: np.ndarray, wait: float, add: float
               ) -> tuple[float, float]:
    """Add the oldest submitted chunk's part (``pending``: ``(row, col, future)`` in chunk
    order, so the sum does not depend on which worker finished first) to ``product``; its
    timings into ``totals``. Returns ``wait`` and ``add`` grown by the seconds spent waiting
    for it and adding it."""
    row, col, future = pending.popleft()
    started = time.perf_counter()
    part, seconds = future.result()
    adding = time.perf_counter()
    product.add_part(row, col, part)
    totals += seconds
    return wait + adding - started, add + time.perf_counter() - adding


def _stored_chunks(dset) -> list[StoredChunk]:
    """Every allocated chunk of ``dset`` in row-major order of their positions."""
    chunks: list[StoredChunk] = []

    def visit(info):
        chunks.append(StoredChunk(int(info.chunk_offset[0]), int(info.chunk_offset[1]),
                                  int(info.byte_offset), int(info.size), int(info.filter_mask)))

    dset.id.chunk_iter(visit)
    return sorted(chunks, key=lambda c: (c.row, c.col))


def _refusal(dset) -> str:
    """Why the dataset's chunks cannot be read directly ("" when they can)."""
    if dset.chunks is None:
        return "the dataset is contiguous (not chunked); use hdf5-blocked or hdf5-mmap"
    dcpl = dset.id.get_create_plist()
    if dcpl.get_external_count() > 0:
        return "the dataset is stored in external files"
    return ""


@contextlib.contextmanager
def _open_direct(spec: DatasetSpec, path: Path, opts: Options):
    # HDF5 is asked once, at opening, where every chunk is; the file is closed before a pass.
    with open_file(path, opts.chunk_cache_bytes) as f:
        dset = dataset_of(f, path)
        refusal = _refusal(dset)
        if refusal:
            raise ValueError(f"hdf5-direct cannot read {path.name}: {refusal}")
        try:
            decoder = codecs.pipeline_decoder(dset.id.get_create_plist(),
                                              spec.file_dtype.itemsize)
        except codecs.UnsupportedFilter as exc:
            raise codecs.UnsupportedFilter(f"hdf5-direct cannot read {path.name}: {exc}") from None
        chunk_shape = tuple(dset.chunks)
        chunks = _stored_chunks(dset)
        fill = dset.fillvalue
    expected = math.prod(math.ceil(n / c) for n, c in zip(spec.shape, chunk_shape))
    if len(chunks) != expected and fill != 0:
        raise ValueError(f"hdf5-direct cannot read {path.name}: {expected - len(chunks)} chunks "
                         f"were never written and the fill value is {fill}, not 0")
    operand = DirectOperand(spec, path, chunk_shape, chunks, decoder, worker_count(spec, opts))
    try:
        yield operand
    finally:
        operand.close()


def _location_refusal(spec: DatasetSpec, location) -> str:
    """Why the dataset at ``location`` cannot be read directly ("" when it can), from its own
    metadata while planning: a layout or a filter it cannot decode in threads."""
    with open_file(location) as f:
        dset = dataset_of(f, location)
        refusal = _refusal(dset)
        if refusal:
            return refusal
        try:
            codecs.pipeline_decoder(dset.id.get_create_plist(), spec.file_dtype.itemsize)
        except codecs.UnsupportedFilter as exc:
            return str(exc)
    return ""


def _pass_seconds(spec: DatasetSpec, opts: Options) -> float:
    """Reading the stored bytes, and decoding them on ``worker_count`` cores."""
    return streaming_seconds(spec, opts) + decompress_seconds(spec) / worker_count(spec, opts)


def _accepts(spec: DatasetSpec) -> bool:
    return spec.chunks is not None and codecs.decodable(spec.compression)


register(Strategy(
    name="hdf5-direct", family="hdf5", storage=("hdf5",), out_of_core=True,
    description="stored chunks read with preadv, decoded and multiplied in a thread pool "
                "(codecs that release the GIL), partial products added in chunk order",
    opener=_open_direct, budget=declared_budget, conversion=lambda spec, opts: 0,
    resident=one_block_bytes, pass_seconds=_pass_seconds,
    accepts_fn=_accepts, location_refusal=_location_refusal,
    refusal=("it reads chunked datasets whose filters it decodes in threads (deflate/gzip, "
             "shuffle, blosc, zstd), not contiguous ones nor lzf, lz4, bitshuffle or blosc2; "
             "use hdf5-blocked"),
    questions=("compression",),
))
