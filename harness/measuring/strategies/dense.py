"""The reference: the whole matrix in RAM, ``A @ x`` (BLAS gemv)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import READ_ONLY_STORAGES, DatasetSpec
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
    its dtype."""
    if spec.storage in ("ram", "raw"):
        count = spec.shape[0] * spec.shape[1]
        return np.fromfile(path, dtype=spec.dtype, count=count,
                           offset=byte_offset(path)).reshape(spec.shape)
    if spec.storage == "hdf5":
        with hdf5_storage.open_file(path) as f:
            out = np.empty(spec.shape, dtype=spec.dtype)
            hdf5_storage.dataset_of(f, path).read_direct(out)
            return out
    if spec.storage == "zarr":
        return np.asarray(zarr_store.open_array(path)[...], dtype=spec.dtype)
    if spec.storage == "npz":
        return npz.load_csr(path).toarray()
    if spec.storage == "csr-hdf5":
        return load_csr_hdf5(spec, path).toarray()
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
    pass_seconds=streaming_seconds,
))
