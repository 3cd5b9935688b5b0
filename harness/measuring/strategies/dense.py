"""The reference: the whole matrix in RAM, ``A @ x`` (BLAS gemv)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import READ_ONLY_STORAGES, DatasetSpec, computed, unpacked
from harness.measuring.storage import formats, npz
from harness.measuring.storage import hdf5 as hdf5_storage
from harness.measuring.storage import zarr as zarr_store
from harness.measuring.storage.base import byte_offset
from harness.measuring.storage.csr_hdf5 import load_csr as load_csr_hdf5
from harness.measuring.strategies.base import (
    Options,
    Strategy,
    register,
    streaming_seconds,
    whole_matrix_bytes,
)
from harness.measuring.strategies.products import BlockProducts, Product


def load_dense(spec: DatasetSpec, path: Path) -> np.ndarray:
    """The matrix of ``spec`` (file ``path``, or a ``FileLocation``) read into a fresh array of
    its dtype (a file of other values converted as they are loaded, the way a user's
    ``np.load(...).astype(...)`` would)."""
    if spec.storage in ("ram", "raw"):
        count = spec.shape[0] * spec.shape[1]
        stored = np.fromfile(path, dtype=spec.file_dtype, count=count, offset=byte_offset(path))
        return computed(stored.reshape(spec.shape, order=spec.order), spec)
    if spec.storage == "hdf5":
        with hdf5_storage.open_file(path) as f:
            # A column-major dataset (MATLAB v7.3) holds the transpose: read it, view it back.
            out = np.empty(spec.shape if spec.order == "C" else spec.shape[::-1], dtype=spec.dtype)
            hdf5_storage.dataset_of(f, path).read_direct(out)  # HDF5 converts the values
            return unpacked(out, spec) if spec.order == "C" else unpacked(out, spec).T
    if spec.storage == "zarr":
        return computed(np.asarray(zarr_store.open_array(path)[...]), spec)
    if spec.storage == "npz":
        return npz.load_csr(path).toarray().astype(spec.dtype, copy=False)
    if spec.storage == "csr-hdf5":
        return load_csr_hdf5(spec, path).toarray().astype(spec.dtype, copy=False)
    out = np.empty(spec.shape, dtype=spec.dtype)  # any other format, through its blocks
    for r0, block in formats.get(spec.storage).row_blocks(spec, path, spec.shape[0]):
        out[r0:r0 + block.shape[0]] = block
    return out


class DenseOperand(BlockProducts):
    def __init__(self, spec: DatasetSpec, matrix: np.ndarray):
        self.spec = spec
        self.matrix = matrix

    def _run(self, product: Product) -> None:
        product.whole(self.matrix)


@contextlib.contextmanager
def _open_dense(spec: DatasetSpec, path: Path, opts: Options):
    yield DenseOperand(spec, load_dense(spec, path))


register(Strategy(
    name="dense", family="dense",
    storage=("ram", "raw", "hdf5", "npz", "csr-hdf5", "zarr", *READ_ONLY_STORAGES),
    description="whole matrix loaded into RAM (untimed), then A @ x",
    opener=_open_dense, budget=whole_matrix_bytes, resident=whole_matrix_bytes,
    pass_seconds=streaming_seconds, column_major=True,
    conversion=lambda spec, opts: 0,  # a file of other values is converted as it is loaded
))
