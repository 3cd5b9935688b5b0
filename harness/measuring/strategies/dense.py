"""The reference: the whole matrix in RAM, ``A @ x`` (BLAS gemv)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from harness.measuring.storage.datasets import DatasetSpec
from harness.measuring.strategies.base import (
    Options,
    Strategy,
    as_vector,
    byte_offset,
    hdf5_dataset,
    register,
    streaming_seconds,
    whole_matrix_bytes,
)


def load_dense(spec: DatasetSpec, path: Path) -> np.ndarray:
    """The matrix of ``spec`` (file ``path``, or a ``FileLocation``) read into a fresh array of
    its dtype."""
    if spec.storage in ("ram", "raw"):
        count = spec.shape[0] * spec.shape[1]
        return np.fromfile(path, dtype=spec.dtype, count=count,
                           offset=byte_offset(path)).reshape(spec.shape)
    if spec.storage == "hdf5":
        from harness.measuring.strategies.base import Options
        from harness.measuring.strategies.hdf5 import DATASET_NAME, open_file

        with open_file(path, Options()) as f:  # with the plugins' filters registered
            out = np.empty(spec.shape, dtype=spec.dtype)
            f[hdf5_dataset(path, DATASET_NAME)].read_direct(out)
            return out
    if spec.storage == "zarr":
        from harness.measuring.storage import zarr as zarr_store

        return np.asarray(zarr_store.open_array(path)[...], dtype=spec.dtype)
    from harness.measuring.strategies.sparse import load_csr

    return load_csr(spec, path).toarray()


class DenseOperand:
    def __init__(self, spec: DatasetSpec, matrix: np.ndarray):
        self.spec = spec
        self.matrix = matrix

    def matvec(self, x: np.ndarray) -> np.ndarray:
        return self.matrix @ as_vector(x, self.spec)


@contextlib.contextmanager
def _open_dense(spec: DatasetSpec, path: Path, opts: Options):
    yield DenseOperand(spec, load_dense(spec, path))


register(Strategy(
    name="dense", family="dense", storage=("ram", "raw", "hdf5", "npz", "csr-hdf5", "zarr"),
    description="whole matrix loaded into RAM (untimed), then A @ x",
    opener=_open_dense, budget=whole_matrix_bytes, resident=whole_matrix_bytes,
    pass_seconds=streaming_seconds,
))
