"""Deterministic, block-wise generation of a spec's values, and footprints in RAM.

Generation runs block of rows by block of rows, each block from its own seeded generator, and
the block boundaries depend only on the shape: the same spec in any storage holds exactly the
same matrix, and no block needs another in memory. ``csr_index_dtype`` is the one rule for the
index dtype of every CSR array the harness writes or sizes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np

from harness.measuring.matrix import values as value_kinds
from harness.measuring.matrix.spec import SPARSE_STORAGES, DatasetSpec

#: Elements per generation block (4 Mi elements = 16 MiB of float32): bounds generator memory.
_GENERATION_BLOCK_ELEMENTS = 4 * 1024 * 1024
#: Salt of the generator that draws the number of nonzeros of every block.
_NNZ_STREAM = 0x5EED_0001


def generation_block_rows(shape: tuple[int, int]) -> int:
    """Rows per generation block; a function of the shape only (so values do not depend on storage)."""
    return max(1, _GENERATION_BLOCK_ELEMENTS // shape[1])


def _block_bounds(shape: tuple[int, int]) -> list[tuple[int, int]]:
    step = generation_block_rows(shape)
    return [(r0, min(r0 + step, shape[0])) for r0 in range(0, shape[0], step)]


def block_nnz(spec: DatasetSpec) -> np.ndarray:
    """Number of nonzeros of every generation block (int64 array), drawn without generating values."""
    sizes = np.array([(r1 - r0) * spec.shape[1] for r0, r1 in _block_bounds(spec.shape)],
                     dtype=np.int64)
    if spec.density is None:
        return sizes
    rng = np.random.default_rng([spec.seed, _NNZ_STREAM])
    return rng.binomial(sizes, spec.density).astype(np.int64)


def nnz(spec: DatasetSpec) -> int:
    """Number of stored entries: nonzeros of a sparse spec, rows * cols of a dense one."""
    return int(block_nnz(spec).sum())


def _block_rng(spec: DatasetSpec, block_index: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, block_index])


def iter_sparse_blocks(spec: DatasetSpec) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Yield ``(row_start, row_stop, flat_positions, values)`` per block of a sparse spec.

    ``flat_positions`` (int64, sorted) index the block in C order; values are in (0, 1], so no
    stored entry is an explicit zero.
    """
    if spec.density is None:
        raise ValueError("iter_sparse_blocks needs a spec with a density")
    counts = block_nnz(spec)
    ncols = spec.shape[1]
    for index, (r0, r1) in enumerate(_block_bounds(spec.shape)):
        rng = _block_rng(spec, index)
        size = (r1 - r0) * ncols
        positions = rng.choice(size, size=int(counts[index]), replace=False, shuffle=False)
        positions = np.sort(positions.astype(np.int64))
        values = (1.0 - rng.random(positions.size, dtype=np.dtype(spec.dtype))).astype(spec.dtype)
        yield r0, r1, positions, values


def iter_dense_blocks(spec: DatasetSpec) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(row_start, block)`` with the dense values of every generation block."""
    ncols = spec.shape[1]
    if spec.density is None:
        for index, (r0, r1) in enumerate(_block_bounds(spec.shape)):
            rng = _block_rng(spec, index)
            yield r0, value_kinds.block(spec.values, rng, r0, r1, ncols, spec.dtype)
        return
    for r0, r1, positions, values in iter_sparse_blocks(spec):
        block = np.zeros((r1 - r0) * ncols, dtype=spec.dtype)
        block[positions] = values
        yield r0, block.reshape(r1 - r0, ncols)


def iter_csr_blocks(spec: DatasetSpec) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(row_start, row_counts, indices, data)`` per block of a sparse spec (CSR pieces)."""
    ncols = spec.shape[1]
    index_dtype = spec_index_dtype(spec)
    for r0, r1, positions, values in iter_sparse_blocks(spec):
        rows = positions // ncols
        counts = np.bincount(rows, minlength=r1 - r0).astype(index_dtype)
        yield r0, counts, (positions % ncols).astype(index_dtype), values


def dense_array(spec: DatasetSpec) -> np.ndarray:
    """The whole matrix in RAM (for tests and small specs)."""
    out = np.empty(spec.shape, dtype=spec.dtype)
    for r0, block in iter_dense_blocks(spec):
        out[r0:r0 + block.shape[0]] = block
    return out


def vector(ncols: int, dtype: str = "float32", seed: int = 1) -> np.ndarray:
    """The deterministic right-hand side ``x`` (values in [0, 1))."""
    return np.random.default_rng(seed).random(int(ncols), dtype=np.dtype(dtype))


def csr_index_dtype(shape: tuple[int, int], entries: int) -> np.dtype:
    """The one index-dtype rule of every CSR array the harness writes or sizes: int32 when
    the rows, the columns and the stored ``entries`` fit (as scipy chooses), else int64. A
    writer that does not know its entries up front passes an upper bound (rows * cols)."""
    limit = np.iinfo(np.int32).max
    return np.dtype(np.int32 if max(shape) <= limit and entries <= limit else np.int64)


def spec_index_dtype(spec: DatasetSpec) -> np.dtype:
    """The CSR index dtype of the matrix of ``spec`` (its nonzeros; 0 for a dense spec)."""
    return csr_index_dtype(spec.shape, nnz(spec) if spec.density is not None else 0)


def csr_blocks(spec: DatasetSpec):
    """``(row_start, csr_array of those rows)`` of every generation block of a sparse spec."""
    import scipy.sparse as sp

    ncols = spec.shape[1]
    for r0, counts, indices, data in iter_csr_blocks(spec):
        indptr = np.zeros(counts.size + 1, dtype=indices.dtype)
        np.cumsum(counts, out=indptr[1:])
        yield r0, sp.csr_array((data, indices, indptr), shape=(counts.size, ncols))


def nbytes_in_memory(spec: DatasetSpec) -> int:
    """Bytes the matrix occupies in RAM in its storage's natural form.

    Dense storages (ram, raw, hdf5): rows * cols * itemsize, whatever the density. Sparse
    storages (npz, csr-hdf5): the CSR arrays, data + indices + indptr.
    """
    if spec.storage in SPARSE_STORAGES:
        index_size = spec_index_dtype(spec).itemsize
        return nnz(spec) * (spec.itemsize + index_size) + (spec.shape[0] + 1) * index_size
    return spec.shape[0] * spec.shape[1] * spec.itemsize


def footprint_bytes(matrix) -> int:
    """Bytes held by an in-memory matrix: numpy array or any scipy.sparse format.

    Never a recursive ``sys.getsizeof``: the arrays' ``nbytes`` per format. For ``lil`` and
    ``dok``, whose entries are Python objects, the size of those objects is added.
    """
    if isinstance(matrix, np.ndarray):
        return int(matrix.nbytes)
    fmt = getattr(matrix, "format", None)
    if fmt in ("csr", "csc", "bsr"):
        return int(matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes)
    if fmt == "coo":
        return int(matrix.data.nbytes + sum(c.nbytes for c in matrix.coords))
    if fmt == "dia":
        return int(matrix.data.nbytes + matrix.offsets.nbytes)
    if fmt == "lil":
        total = matrix.rows.nbytes + matrix.data.nbytes
        for row_cols, row_vals in zip(matrix.rows, matrix.data):
            total += sys.getsizeof(row_cols) + sys.getsizeof(row_vals)
            total += sum(sys.getsizeof(c) for c in row_cols)
            total += sum(sys.getsizeof(v) for v in row_vals)
        return int(total)
    if fmt == "dok":
        total = sys.getsizeof(matrix._dict) if hasattr(matrix, "_dict") else sys.getsizeof(matrix)
        for key, value in matrix.items():
            total += sys.getsizeof(key) + sum(sys.getsizeof(k) for k in key) + sys.getsizeof(value)
        return int(total)
    raise TypeError(f"footprint_bytes: unsupported matrix type {type(matrix).__name__}")




def _csr_arrays(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index_dtype = spec_index_dtype(spec)
    indptr = np.zeros(spec.shape[0] + 1, dtype=index_dtype)
    total = nnz(spec)
    indices = np.empty(total, dtype=index_dtype)
    data = np.empty(total, dtype=spec.dtype)
    at = 0
    for r0, counts, block_indices, block_data in iter_csr_blocks(spec):
        indptr[r0 + 1:r0 + 1 + counts.size] = counts
        indices[at:at + block_indices.size] = block_indices
        data[at:at + block_data.size] = block_data
        at += block_data.size
    np.cumsum(indptr, out=indptr)
    return data, indices, indptr


def csr_array(spec: DatasetSpec):
    """The sparse matrix of ``spec`` as a ``scipy.sparse.csr_array`` (in RAM)."""
    import scipy.sparse as sp

    data, indices, indptr = _csr_arrays(spec)
    return sp.csr_array((data, indices, indptr), shape=spec.shape)
