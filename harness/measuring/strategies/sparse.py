"""scipy.sparse: one strategy per format (sparse-array API, ``A @ x``), loaded into RAM from
an ``npz`` or ``csr-hdf5`` file, plus ``csr-hdf5-blocked``: row blocks of a CSR matrix read
from its three HDF5 datasets (data, indices, indptr) into reused buffers."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from harness.measuring.matrix.generate import nnz, spec_index_dtype
from harness.measuring.matrix.spec import READ_ONLY_STORAGES, DatasetSpec
from harness.measuring.storage import csr_hdf5, formats, npz
from harness.measuring.storage.hdf5 import open_file
from harness.measuring.strategies.base import (
    ASSUMED_READ_BYTES_PER_SECOND,
    Options,
    Strategy,
    read_buffer,
    register,
)
from harness.measuring.strategies.hdf5 import chunk_cache_bytes as hdf5_chunk_cache_bytes
from harness.measuring.strategies.products import BlockProducts, Product

SPARSE_FORMATS = ("csr", "csc", "coo", "bsr", "dia", "lil", "dok")
#: DIA stores one dense row per diagonal: refuse it beyond this many times the dense size.
DIA_MAX_RATIO_TO_DENSE = 4
DIA_MIN_LIMIT_BYTES = 1024 * 1024
#: Rough bytes per stored entry of the Python-object formats (lists / dict, boxed floats).
LIL_BYTES_PER_ENTRY = 70
DOK_BYTES_PER_ENTRY = 200
#: lil and dok hold one Python object per nonzero: a product costs about this per nonzero
#: (seconds; only for the pass-time estimate).
ASSUMED_SECONDS_PER_PYTHON_NONZERO = 1.5e-6
#: Bytes read per stored entry besides its value, assumed by the estimate: an index, at most
#: int64.
ASSUMED_INDEX_BYTES = 8


def load_csr(spec: DatasetSpec, path: Path) -> sp.csr_array:
    """The CSR matrix of a sparse-storage spec, in RAM, its values of the spec's dtype (a
    file's integers converted as they are loaded)."""
    if spec.storage == "npz":
        csr = npz.load_csr(path)
    elif spec.storage == "csr-hdf5":
        csr = csr_hdf5.load_csr(spec, path)
    else:
        blocks = [block for _, block in  # any other format, through its blocks
                  formats.get(spec.storage).csr_row_blocks(spec, path, spec.shape[0])]
        csr = sp.csr_array(sp.vstack(blocks, format="csr"))
    if csr.dtype != np.dtype(spec.dtype):
        csr = csr.astype(spec.dtype)
    return csr


def _dia_upper_bound_bytes(spec: DatasetSpec) -> int:
    diagonals = min(spec.shape[0] + spec.shape[1] - 1, nnz(spec))
    return diagonals * spec.shape[1] * spec.itemsize


def _is_sparse(spec: DatasetSpec) -> bool:
    """A file of a read-only format may hold a dense matrix: the sparse formats skip it."""
    return spec.density is not None


def _dia_fits(spec: DatasetSpec) -> bool:
    if not _is_sparse(spec):
        return False
    limit = max(DIA_MAX_RATIO_TO_DENSE * spec.dense_bytes, DIA_MIN_LIMIT_BYTES)
    return _dia_upper_bound_bytes(spec) <= limit


def format_bytes(spec: DatasetSpec, fmt: str) -> int:
    """Estimated bytes of the matrix of ``spec`` in format ``fmt``: the one memory model of
    every format, behind both a strategy's budget and its resident memory."""
    n = nnz(spec)
    item = spec.itemsize
    index = spec_index_dtype(spec).itemsize
    nrows, ncols = spec.shape
    if fmt in ("csr", "bsr"):
        return n * (item + index) + (nrows + 1) * index
    if fmt == "csc":
        return n * (item + index) + (ncols + 1) * index
    if fmt == "coo":
        return n * (item + 2 * index)
    if fmt == "dia":
        return _dia_upper_bound_bytes(spec)
    if fmt == "lil":
        return n * LIL_BYTES_PER_ENTRY + nrows * 2 * 64
    return n * DOK_BYTES_PER_ENTRY


def _format_budget(fmt: str):
    def budget(spec: DatasetSpec, opts: Options) -> int:
        total = format_bytes(spec, "csr")  # the loaded CSR, alive during the conversion
        if fmt != "csr":
            total += format_bytes(spec, fmt)
        if fmt == "lil":  # lil @ x converts to CSR at every product
            total += format_bytes(spec, "csr")
        return total

    return budget


class SparseOperand(BlockProducts):
    def __init__(self, spec: DatasetSpec, matrix):
        self.spec, self.matrix = spec, matrix

    def _run(self, product: Product) -> None:
        # The operand is cast to the matrix dtype (Product): mixed dtypes make sparsetools
        # upcast a copy of data.
        product.whole(self.matrix)


def _format_opener(fmt: str):
    @contextlib.contextmanager
    def opener(spec: DatasetSpec, path: Path, opts: Options):
        matrix = load_csr(spec, path)
        if fmt != "csr":
            matrix = matrix.asformat(fmt)
        yield SparseOperand(spec, matrix)

    return opener


def _entries_seconds(spec: DatasetSpec, opts: Options) -> float:
    """Estimated seconds to read every stored entry (value and index) once."""
    return nnz(spec) * (spec.itemsize + ASSUMED_INDEX_BYTES) / ASSUMED_READ_BYTES_PER_SECOND


def _python_objects_seconds(spec: DatasetSpec, opts: Options) -> float:
    return nnz(spec) * ASSUMED_SECONDS_PER_PYTHON_NONZERO


for _fmt in SPARSE_FORMATS:
    register(Strategy(
        name=_fmt, family="sparse", storage=("npz", "csr-hdf5", *READ_ONLY_STORAGES),
        description=f"scipy.sparse {_fmt}_array in RAM, A @ x",
        opener=_format_opener(_fmt), budget=_format_budget(_fmt),
        resident=lambda spec, opts, fmt=_fmt: format_bytes(spec, fmt),
        pass_seconds=_python_objects_seconds if _fmt in ("lil", "dok") else _entries_seconds,
        accepts_fn=_dia_fits if _fmt == "dia" else _is_sparse,
        refusal=(f"DIA would need more than {DIA_MAX_RATIO_TO_DENSE}x the dense size "
                 "(one dense row per occupied diagonal)") if _fmt == "dia" else
        "the file holds a dense matrix",
    ))


# ---------------------------------------------------------------------- csr-hdf5-blocked

def _csr_matvec_into(indptr, indices, data, x, y) -> None:
    """y = CSR(indptr, indices, data) @ x, written into ``y`` (no copy of data or indices)."""
    y.fill(0)
    try:
        from scipy.sparse._sparsetools import csr_matvec
    except ImportError:  # private API: fall back to the public one (may validate, not copy)
        y[:] = sp.csr_array((data, indices, indptr), shape=(y.size, x.size), copy=False) @ x
        return
    csr_matvec(y.size, x.size, indptr, indices, data, x, y)


def _row_blocks(indptr: np.ndarray, entry_bytes: int, budget_bytes: int, fixed_rows: int | None):
    """Row ranges [(r0, r1)] whose entries fit the budget (at least one row per block)."""
    nrows = indptr.size - 1
    if fixed_rows is not None:
        return [(r0, min(r0 + fixed_rows, nrows)) for r0 in range(0, nrows, fixed_rows)]
    max_entries = max(1, budget_bytes // entry_bytes)
    blocks, r0 = [], 0
    while r0 < nrows:
        # Furthest row end whose entries fit: a binary search on the cumulative counts.
        r1 = int(np.searchsorted(indptr, indptr[r0] + max_entries, side="right")) - 1
        r1 = min(max(r1, r0 + 1), nrows)
        blocks.append((r0, r1))
        r0 = r1
    return blocks


class CsrHdf5BlockedOperand(BlockProducts):
    def __init__(self, spec: DatasetSpec, f, opts: Options):
        self.spec = spec
        self.data, self.indices = f["data"], f["indices"]
        self.indptr = f["indptr"][...]
        entry_bytes = spec.itemsize + self.indices.dtype.itemsize
        self.blocks = _row_blocks(self.indptr, entry_bytes, opts.memory_budget, opts.block_rows)
        most = max((int(self.indptr[r1] - self.indptr[r0]) for r0, r1 in self.blocks), default=0)
        self.data_buffer = read_buffer((most,), spec.dtype)
        self.index_buffer = read_buffer((most,), self.indices.dtype)

    def _run(self, product: Product) -> None:
        # A @ x through sparsetools into the result (no copy); the other products through a
        # CSR array made on the block's buffers (copy=False).
        vector = not product.transpose and product.v.ndim == 1
        for r0, r1 in self.blocks:
            s, e = int(self.indptr[r0]), int(self.indptr[r1])
            if e == s:
                continue
            k = e - s
            self.data.read_direct(self.data_buffer, np.s_[s:e], np.s_[0:k])  # HDF5 converts
            self.indices.read_direct(self.index_buffer, np.s_[s:e], np.s_[0:k])
            local_indptr = self.indptr[r0:r1 + 1] - self.indptr[r0]
            if vector:
                _csr_matvec_into(local_indptr, self.index_buffer[:k], self.data_buffer[:k],
                                 product.v, product.out[r0:r1])
                continue
            block = sp.csr_array((self.data_buffer[:k], self.index_buffer[:k], local_indptr),
                                 shape=(r1 - r0, self.spec.shape[1]), copy=False)
            product.add_part(r0, 0, product.part(r0, 0, block))


@contextlib.contextmanager
def _open_csr_hdf5_blocked(spec: DatasetSpec, path: Path, opts: Options):
    with open_file(path, opts.chunk_cache_bytes) as f:
        yield CsrHdf5BlockedOperand(spec, csr_hdf5.group_of(f, path), opts)


def _csr_hdf5_budget(spec: DatasetSpec, opts: Options) -> int:
    index = spec_index_dtype(spec).itemsize
    indptr = (spec.shape[0] + 1) * index
    entry = spec.itemsize + index
    if opts.block_rows is not None:
        buffers = min(nnz(spec), opts.block_rows * spec.shape[1]) * entry
    else:
        # A single row may exceed the budget: then the buffer holds the densest row.
        buffers = min(nnz(spec) * entry, max(opts.memory_budget, spec.shape[1] * entry))
    # indptr stays in RAM (1x), each block shifts a copy of its slice (<= 1x), and 1x more is
    # left for the temporaries of reading it.
    return 3 * indptr + buffers + hdf5_chunk_cache_bytes(opts)


def _csr_hdf5_resident(spec: DatasetSpec, opts: Options) -> int:
    """The entries (values and indices), at most a block budget of them at a time."""
    entry = spec.itemsize + spec_index_dtype(spec).itemsize
    return min(nnz(spec) * entry, opts.memory_budget)


register(Strategy(
    name="csr-hdf5-blocked", family="sparse", storage=("csr-hdf5",), out_of_core=True,
    description="CSR on disk (HDF5 data/indices/indptr), row blocks into reused buffers",
    opener=_open_csr_hdf5_blocked, budget=_csr_hdf5_budget, resident=_csr_hdf5_resident,
    pass_seconds=_entries_seconds,
))
