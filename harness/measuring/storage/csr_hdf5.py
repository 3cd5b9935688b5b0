"""A CSR matrix as three HDF5 datasets, ``data``, ``indices`` and ``indptr``, with its
``shape`` as an attribute: what ``csr-hdf5-blocked`` reads a block of rows at a time. The
harness's files hold them at the root; a user's file in a group (AnnData's ``X`` with
``encoding-type`` ``csr_matrix``), read where it lies (``storage.hdf5.open_user`` finds it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.measuring.matrix.generate import csr_index_dtype
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import base
from harness.measuring.storage.base import FileLocation

#: Elements per chunk of datasets that grow while a matrix of unknown nnz is written (1 Mi:
#: 4-8 MiB).
GROWING_CHUNK_ELEMENTS = 1 << 20


def write(spec: DatasetSpec, path: Path, blocks, advance=lambda n: None,
          entries: int | None = None) -> None:
    """The CSR arrays from CSR row blocks. ``entries`` (the stored entries, when known up
    front): contiguous ``data`` and ``indices`` of that size; else they grow in chunks."""
    import h5py

    rows, cols = spec.shape
    index_dtype = csr_index_dtype(spec.shape, entries if entries is not None else rows * cols)
    indptr = np.zeros(rows + 1, dtype=np.int64)
    at = 0
    with h5py.File(path, "w") as f:
        if entries is None:
            grow = {"shape": (0,), "maxshape": (None,), "chunks": (GROWING_CHUNK_ELEMENTS,)}
            data = f.create_dataset("data", dtype=spec.dtype, **grow)
            indices = f.create_dataset("indices", dtype=index_dtype, **grow)
        else:
            data = f.create_dataset("data", shape=(entries,), dtype=spec.dtype)
            indices = f.create_dataset("indices", shape=(entries,), dtype=index_dtype)
        for r0, block in blocks():
            block.sum_duplicates()
            n = block.nnz
            if entries is None:
                data.resize((at + n,))
                indices.resize((at + n,))
            if n:
                data[at:at + n] = block.data.astype(spec.dtype, copy=False)
                indices[at:at + n] = block.indices.astype(index_dtype, copy=False)
            indptr[r0 + 1:r0 + 1 + block.shape[0]] = at + block.indptr[1:]
            at += n
            advance(n * (spec.itemsize + index_dtype.itemsize))
        f.create_dataset("indptr", data=indptr.astype(index_dtype))
        f.attrs["shape"] = spec.shape
        f.attrs["harness_spec"] = json.dumps(spec.to_dict())


def group_of(f, location):
    """The group holding ``data``, ``indices`` and ``indptr``: a user's (AnnData's ``X``, say,
    named by the location's ``dataset``), else the file's root (the harness's files)."""
    return f[location.dataset] if isinstance(location, FileLocation) and location.dataset else f


def load_csr(spec: DatasetSpec, location):
    """The whole CSR matrix in RAM (``scipy.sparse.csr_array``)."""
    import h5py
    import scipy.sparse as sp

    with h5py.File(location, "r") as f:
        g = group_of(f, location)
        return sp.csr_array((g["data"][...], g["indices"][...], g["indptr"][...]), shape=spec.shape)


def csr_row_blocks(spec: DatasetSpec, location, rows: int) -> Iterator[tuple[int, object]]:
    """``(row_start, csr_array of those rows)``, read a block of rows at a time."""
    import h5py
    import scipy.sparse as sp

    with h5py.File(location, "r") as f:
        g = group_of(f, location)
        indptr = g["indptr"][...]
        for r0 in range(0, spec.shape[0], rows):
            r1 = min(r0 + rows, spec.shape[0])
            s, e = int(indptr[r0]), int(indptr[r1])
            yield r0, sp.csr_array((g["data"][s:e], g["indices"][s:e], indptr[r0:r1 + 1] - s),
                                   shape=(r1 - r0, spec.shape[1]))


def stored_bytes(spec: DatasetSpec, location) -> int:
    """What a pass reads: the harness's file whole; a user's group, its three datasets only (an
    AnnData file holds much else beside ``X``)."""
    if not (isinstance(location, FileLocation) and location.dataset):
        return base.file_size(location)
    import h5py

    with h5py.File(location, "r") as f:
        g = group_of(f, location)
        return sum(int(g[name].id.get_storage_size()) for name in ("data", "indices", "indptr"))


STORAGE = base.register(base.Storage(
    name="csr-hdf5", extension="csr.h5", sparse=True, write=write,
    stored_bytes=stored_bytes,
    csr_row_blocks=csr_row_blocks))
