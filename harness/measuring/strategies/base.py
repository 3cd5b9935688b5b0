"""What every strategy shares: the ``Strategy`` record, the registry, options, row blocks, and
the memory and pass-time declarations common to several families.

A strategy is a way to compute ``y = A @ x`` (and ``Aᵀ y``, ``A @ X``, ``Aᵀ Y``: see
``products``) for a matrix stored one way. ``Strategy.open``
is a context manager that does the untimed work (find the file, open it, look the dataset up,
allocate and pre-fault buffers) and yields an operand whose ``matvec(x)`` is the timed part.
Everything else about a strategy (which storages it reads and which dataset it takes for a
problem, what it refuses, its memory, its pass-time estimate, the questions it is compared in)
is declared in its ``Strategy`` record, in its family's module.

Every ``matvec`` casts ``x`` to the matrix dtype first (``x`` has ``ncols`` elements, the
matrix ``rows * cols``): mixing dtypes in ``A @ x`` would otherwise upcast a copy of the whole
matrix. The result has the matrix dtype.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import READ_ONLY_STORAGES, DatasetSpec, Problem
from harness.measuring.options import (  # noqa: F401 - the strategies' options, declared once
    DEFAULT_MEMORY_BUDGET_BYTES,
    OPTION_NAMES,
    OPTIONS,
    Options,
    resolve_options,
)
from harness.measuring.storage.datasets import materialize
from harness.measuring.strategies.capabilities import Operand
from harness.measuring.strategies.products import PRODUCTS, operand_array

#: Sustained read rate assumed when estimating a pass's duration (bytes/s): the page cache on
#: this class of machine. Real figures are measured; estimates only decide what to skip.
ASSUMED_READ_BYTES_PER_SECOND = 1.5e9
def block_rows(spec: DatasetSpec, opts: Options, align_rows: int = 1) -> int:
    """Rows per block: ``block_rows`` if given, else as many rows as fit ``memory_budget``;
    rounded down to a multiple of ``align_rows`` (HDF5 chunk rows), at least one multiple."""
    row_bytes = spec.shape[1] * spec.itemsize
    rows = opts.block_rows if opts.block_rows is not None else opts.memory_budget // row_bytes
    rows = max(align_rows, rows // align_rows * align_rows)
    return max(1, min(rows, spec.shape[0]))


#: Alignment of read buffers (bytes): a page.
READ_BUFFER_ALIGNMENT = 4096


def read_buffer(shape: tuple[int, ...], dtype) -> np.ndarray:
    """A pre-faulted, page-aligned buffer (anonymous memory, so the meter counts it) for slabs
    read from files. Pre-faulted: the VM's first touch of fresh pages is slow, and it belongs to
    opening, not to the timed product. Page-aligned: numpy places large arrays 16 bytes past a
    page, and the kernel's copy out of the page cache into a destination 16 bytes past the
    source's offset modulo 4 KiB ran 2.6x slower on this machine's CPU
    (``tools/read_alignment.py``: 320 MiB of 16 MiB reads at file offset 0 took 138 ms into
    such a buffer, 54 ms into a page-aligned one)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + READ_BUFFER_ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % READ_BUFFER_ALIGNMENT
    array = raw[start:start + nbytes].view(dtype).reshape(shape)
    array.fill(0)
    return array


def as_vector(x: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    """``x`` as a contiguous vector of the matrix dtype; a clear error for a wrong shape."""
    return operand_array(x, spec.shape, spec.dtype, transpose=False, columns=False)


Opener = Callable[[DatasetSpec, Path, Options], ContextManager[Operand]]
Bytes = Callable[[DatasetSpec, Options], int]
Seconds = Callable[[DatasetSpec, Options], float]


def whole_matrix_bytes(spec: DatasetSpec, opts: Options) -> int:
    """Resident memory of a strategy that holds the dense matrix in RAM (bytes)."""
    return spec.dense_bytes


def one_block_bytes(spec: DatasetSpec, opts: Options) -> int:
    """Resident memory of a strategy that reads the matrix block by block: at most its
    ``memory_budget`` (bytes), mapped file pages included."""
    return min(spec.dense_bytes, opts.memory_budget)


def streaming_seconds(spec: DatasetSpec, opts: Options) -> float:
    """Estimated seconds to read the dense matrix once at the assumed read rate."""
    return spec.dense_bytes / ASSUMED_READ_BYTES_PER_SECOND


class CannotRead(ValueError):
    """A strategy cannot multiply a problem: the message is the whole sentence, ``reason``
    the clause that follows the strategy's name (for a list of skipped strategies)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Strategy:
    """One way to compute ``A @ x``, and everything it declares about itself.

    ``storage``: the storages it accepts, the preferred one first; ``accepts_fn`` and
    ``refusal``: which specs of those storages it refuses, and why. ``budget``: its anonymous
    memory beyond the result and ``x`` (bytes; what a measurement is checked against).
    ``resident``: the RAM it keeps during a pass (bytes; the matrix in its format, or one block
    of it). ``pass_seconds``: a rough estimate of one pass (seconds; only decides skips).
    ``questions``: the questions about its family, beyond "which strategy is fastest", that
    the suite compares this strategy in, each named by the parameter the question sweeps
    (``"chunk_cache"``: how much the chunk-cache size matters; ``"compression"``: what
    decompression costs).
    """

    name: str
    family: str
    storage: tuple[str, ...]
    description: str
    opener: Opener = dataclasses.field(repr=False)
    budget: Bytes = dataclasses.field(repr=False)
    resident: Bytes = dataclasses.field(repr=False)
    pass_seconds: Seconds = dataclasses.field(repr=False)
    out_of_core: bool = False
    accepts_fn: Callable[[DatasetSpec], bool] | None = dataclasses.field(default=None, repr=False)
    refusal: str = ""
    questions: tuple[str, ...] = ()
    #: The product runs in other processes (a dask cluster): the operand meters all of them
    #: itself (``operand.measure_peak``), since this process's meter would see the client only.
    spans_processes: bool = False
    #: Modules it reads with, imported before anything is metered: an import's memory is the
    #: process's, not the product's.
    imports: tuple[str, ...] = ()
    #: Why it cannot read the matrix stored at a location ("" when it can), asked of a file's
    #: own metadata while planning (a codec it lacks, a chunk order it cannot map), so that a
    #: store it would fail on is skipped with the reason instead of failing when run.
    location_refusal: Callable[[DatasetSpec, object], str] | None = \
        dataclasses.field(default=None, repr=False)
    #: The products its operand computes in one pass over the stored bytes (``PRODUCTS``:
    #: ``matvec``, ``rmatvec`` = Aᵀy, ``matmat`` = A @ X, ``rmatmat``); one it lacks is left
    #: out here, so that a caller skips it rather than failing when run.
    products: tuple[str, ...] = PRODUCTS

    def offers(self, product: str) -> bool:
        """True when its operand computes ``product`` (one of ``PRODUCTS``)."""
        if product not in PRODUCTS:
            raise ValueError(f"unknown product {product!r}; known products: {list(PRODUCTS)}")
        return product in self.products
    #: Anonymous memory it adds for a file of other values than the product's (integers,
    #: float16, another byte order, packed; ``DatasetSpec.converts``), beyond ``budget``
    #: (bytes): by default one converted block; 0 where ``budget`` counts it already.
    conversion: Bytes = dataclasses.field(default=one_block_bytes, repr=False)
    #: It reads a column-major file (``DatasetSpec.order == "F"``: a Fortran-order ``.npy``,
    #: a MATLAB v7.3 variable) as the matrix it is, not as its transpose.
    column_major: bool = False

    def refusal_at(self, spec: DatasetSpec, location) -> str:
        """Why it cannot read ``spec`` at ``location`` ("" when it can)."""
        return self.location_refusal(spec, location) if self.location_refusal else ""

    @property
    def written_storage(self) -> tuple[str, ...]:
        """The storages it reads that the harness writes (a generated matrix, a copy)."""
        return tuple(s for s in self.storage if s not in READ_ONLY_STORAGES)

    def accepts(self, spec: DatasetSpec) -> bool:
        """True when ``spec``'s storage and density fit this strategy."""
        if spec.storage not in self.storage:
            return False
        if spec.order == "F" and not self.column_major:
            return False
        return self.accepts_fn is None or bool(self.accepts_fn(spec))

    def why_not(self, spec: DatasetSpec) -> str:
        """Why ``accepts(spec)`` is False (empty string when it is True)."""
        if spec.storage not in self.storage:
            return (f"strategy {self.name!r} reads storage {list(self.storage)}, not "
                    f"{spec.storage!r}; materialize the same matrix with storage={self.storage[0]!r}")
        if not self.accepts(spec):
            return f"strategy {self.name!r} does not accept {spec}: {self.refusal_of(spec)}"
        return ""

    def refusal_of(self, spec: DatasetSpec) -> str:
        """Why it refuses ``spec`` of a storage it reads, as a clause."""
        if spec.order == "F" and not self.column_major:
            return ("it reads row-major files, and this one is column-major (Fortran order; "
                    "MATLAB v7.3 stores the transpose of what it shows): add a row-major copy "
                    "with --also-as")
        return self.refusal

    def dataset_for(self, problem: Problem, prefer: str | None = None) -> DatasetSpec:
        """The dataset this strategy multiplies for ``problem``: in storage ``prefer`` when it
        reads that storage, else in the first of its storages that can hold the matrix (sparse
        storages need a density) and that it accepts. Raises :class:`CannotRead` otherwise."""
        storages = [prefer] if prefer in self.storage else [
            s for s in self.storage if problem.storable_in(s)]
        if not storages:
            reason = f"needs storage {list(self.written_storage)} with a density"
            raise CannotRead(f"strategy {self.name!r} {reason}", reason)
        candidates = [problem.in_storage(s) for s in storages]
        for spec in candidates:
            if self.accepts(spec):
                return spec
        message = self.why_not(candidates[0])
        raise CannotRead(message, self.refusal or message)

    @contextlib.contextmanager
    def open(self, spec: DatasetSpec, root=None, **options) -> Iterator[Operand]:
        """Materialize ``spec`` if needed, open it and yield an operand with ``matvec(x)``."""
        with self.open_at(spec, materialize(spec, root), **options) as operand:
            yield operand

    @contextlib.contextmanager
    def open_at(self, spec: DatasetSpec, path, **options) -> Iterator[Operand]:
        """Open the matrix ``spec`` describes where it already is (a path or a
        :class:`FileLocation`; nothing is written) and yield an operand with ``matvec(x)``."""
        opts = resolve_options(options)
        if not self.accepts(spec):
            raise ValueError(self.why_not(spec))
        with self.opener(spec, path, opts) as operand:
            yield operand

    def extra_memory_bytes(self, spec: DatasetSpec, **options) -> int:
        """Declared anonymous memory beyond the result and ``x``, in bytes."""
        opts = resolve_options(options)
        conversion = self.conversion(spec, opts) if spec.converts else 0
        return int(self.budget(spec, opts)) + int(conversion)

    def resident_bytes(self, spec: DatasetSpec, **options) -> int:
        """RAM this strategy keeps during a pass, in bytes (an estimate)."""
        return int(self.resident(spec, resolve_options(options)))

    def needed_ram_bytes(self, spec: DatasetSpec, **options) -> int:
        """RAM a pass may need, in bytes: the larger of what it keeps resident and its extra
        anonymous memory (which also counts what opening holds for a while, such as the loaded
        CSR matrix another sparse format is converted from)."""
        return max(self.resident_bytes(spec, **options), self.extra_memory_bytes(spec, **options))

    def estimated_pass_seconds(self, spec: DatasetSpec, **options) -> float:
        """Rough seconds of one pass on ``spec`` (only to skip what would take minutes)."""
        return float(self.pass_seconds(spec, resolve_options(options)))


_REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    if strategy.name in _REGISTRY:
        raise ValueError(f"strategy {strategy.name!r} registered twice")
    _REGISTRY[strategy.name] = strategy
    return strategy


def registry() -> dict[str, Strategy]:
    return _REGISTRY
