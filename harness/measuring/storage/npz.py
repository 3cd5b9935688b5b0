"""A scipy.sparse matrix in a ``.npz`` file: ``scipy.sparse.save_npz``'s layout of a
``csr_array`` (an uncompressed zip of ``.npy`` members indices, indptr, data, format, shape,
_is_array), written block by block; a user's file in any of scipy's formats, read as CSR."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.measuring.matrix.generate import csr_index_dtype
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import base
from harness.measuring.storage.base import FileLocation, UserFileError
from harness.measuring.storage.user_checks import check_dtype, check_matrix_shape


def write(spec: DatasetSpec, path: Path, blocks, advance=lambda n: None,
          entries: int | None = None) -> None:
    """save_npz's layout from CSR row blocks, never the whole matrix in RAM: only ``indptr``
    (rows + 1 integers) and one block. A zip is written one member at a time, so the blocks
    are read twice (indices, then data); ``entries`` (the stored entries) must be known, since
    a member's header comes before its values."""
    from numpy.lib import format as npy

    if entries is None:
        raise ValueError("an npz file is written with its number of stored entries known")
    index_dtype = csr_index_dtype(spec.shape, entries)
    indptr = np.zeros(spec.shape[0] + 1, dtype=index_dtype)

    def member(archive, name: str, dtype, shape: tuple, values) -> None:
        with archive.open(f"{name}.npy", "w", force_zip64=True) as out:
            npy.write_array_header_1_0(out, {"descr": npy.dtype_to_descr(np.dtype(dtype)),
                                             "fortran_order": False, "shape": shape})
            for value in values:
                out.write(np.ascontiguousarray(value, dtype=dtype).tobytes())

    def indices():
        for r0, block in blocks():
            indptr[r0 + 1:r0 + 1 + block.shape[0]] = np.diff(block.indptr)
            advance(block.indices.size * index_dtype.itemsize)
            yield block.indices

    def data():
        for _, block in blocks():
            advance(block.data.nbytes)
            yield block.data

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        member(archive, "indices", index_dtype, (entries,), indices())
        np.cumsum(indptr, out=indptr)
        member(archive, "indptr", index_dtype, (indptr.size,), [indptr])
        member(archive, "data", spec.dtype, (entries,), data())
        for name, value in (("format", np.array(b"csr")), ("shape", np.array(spec.shape)),
                            ("_is_array", np.array(True))):
            with archive.open(f"{name}.npy", "w") as out:
                npy.write_array(out, value, allow_pickle=False)


def load_csr(location):
    """The whole matrix as a ``scipy.sparse.csr_array`` (a user's file: any format, a
    :class:`UserFileError` when scipy cannot read it)."""
    import scipy.sparse as sp

    try:
        return sp.csr_array(sp.load_npz(location))
    except (OSError, ValueError, KeyError) as exc:
        raise UserFileError(f"{location} is not a readable scipy.sparse .npz ({exc}); save it "
                            "with scipy.sparse.save_npz") from None


def csr_row_blocks(spec: DatasetSpec, location, rows: int) -> Iterator[tuple[int, object]]:
    csr = load_csr(location)
    for r0 in range(0, spec.shape[0], rows):
        yield r0, csr[r0:r0 + rows]


STORAGE = base.register(base.Storage(
    name="npz", extension="npz", sparse=True, write=write,
    stored_bytes=lambda spec, location: base.file_size(location),
    csr_row_blocks=csr_row_blocks))


# ------------------------------------------------------------------------------ users' files

def open_user(path: Path, *, dataset=None, shape=None, dtype=None) -> tuple[DatasetSpec, FileLocation]:
    """A scipy.sparse matrix saved with ``scipy.sparse.save_npz`` (any format; read as CSR)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = sorted(archive.files)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise UserFileError(f"{path} is not a readable .npz ({exc}); save the matrix with "
                            "scipy.sparse.save_npz") from None
    if "format" not in keys or "shape" not in keys:
        raise UserFileError(
            f"{path} holds arrays {keys[:6]}, not a scipy.sparse matrix; save a sparse "
            "matrix with scipy.sparse.save_npz, or a dense one with np.save")
    csr = load_csr(path)
    rows, cols = check_matrix_shape(csr.shape, path.name, "save a 2-D sparse matrix")
    name = check_dtype(csr.dtype, path.name,
                       "save it with scipy.sparse.save_npz(path, m.astype('float32'))")
    density = csr.nnz / (rows * cols)
    return DatasetSpec((rows, cols), name, density=density, storage="npz"), FileLocation(path)
