"""A scipy.sparse matrix in a ``.npz`` file: ``scipy.sparse.save_npz``'s layout of a
``csr_array`` (an uncompressed zip of ``.npy`` members indices, indptr, data, format, shape,
_is_array), written block by block; a user's file in any of scipy's formats, read as CSR."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness import units
from harness.measuring import fit
from harness.measuring.matrix.generate import csr_index_dtype
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import base
from harness.measuring.storage.base import FileLocation, UserFileError
from harness.measuring.storage.user_checks import (
    check_compressed_structure,
    check_matrix_shape,
    value_dtypes,
)


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
    """A scipy.sparse matrix saved with ``scipy.sparse.save_npz`` (any format; read as CSR).

    Its members' headers are read first: a member whose header does not match the bytes the
    archive says it inflates to, or that would need more RAM than the fit policy allows, is
    refused before anything is loaded; once loaded, the CSR structure is checked (indices within
    the shape, ``indptr`` from 0, non-decreasing, ending at the number of entries)."""
    members = _member_headers(path)
    keys = sorted(members)
    if "format" not in keys or "shape" not in keys:
        raise UserFileError(
            f"{path} holds arrays {keys[:6]}, not a scipy.sparse matrix; save a sparse "
            "matrix with scipy.sparse.save_npz, or a dense one with np.save")
    needed = sum(members.values())
    refusal = fit.ram_refusal(needed)
    if refusal:
        raise UserFileError(f"{path} inflates to {units.human_bytes(needed)}: loading it, {refusal}; "
                            "measure it on a machine with more RAM, or store it as csr-hdf5")
    csr = load_csr(path)
    rows, cols = check_matrix_shape(csr.shape, path.name, "save a 2-D sparse matrix")
    name, stored = value_dtypes(csr.dtype, path.name,
                                "save it with scipy.sparse.save_npz(path, m.astype('float32'))")
    _check_structure(csr, path)
    density = csr.nnz / (rows * cols)
    return (DatasetSpec((rows, cols), name, density=density, storage="npz", stored_dtype=stored),
            FileLocation(path))


def _member_headers(path: Path) -> dict[str, int]:
    """Member name (without ``.npy``) -> the bytes its array takes, from the ``.npy`` headers;
    a UserFileError for an archive that is not readable or a member whose header and inflated
    size disagree (nothing is inflated but the headers)."""
    fmt = np.lib.format
    sizes = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                with archive.open(info) as member:
                    version = fmt.read_magic(member)
                    shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0)
                                       else fmt.read_array_header_2_0)(member)
                    header = member.tell() if member.seekable() else None
                if dtype.hasobject:
                    raise UserFileError(f"{path} member {info.filename} holds Python objects; "
                                        "save the matrix with scipy.sparse.save_npz")
                nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if header is not None and info.file_size != header + nbytes:
                    raise UserFileError(
                        f"{path} member {info.filename} declares {nbytes} bytes of values but "
                        f"inflates to {info.file_size - header}: the file is damaged; save it "
                        "again with scipy.sparse.save_npz")
                sizes[name] = nbytes
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserFileError(f"{path} is not a readable .npz ({exc}); save the matrix with "
                            "scipy.sparse.save_npz") from None
    return sizes


def _check_structure(csr, path: Path) -> None:
    """A UserFileError naming the first fault of a CSR matrix's structure, if any."""
    rows, cols = csr.shape
    check_compressed_structure(str(path), csr.indptr, [csr.indices], csr.indices.size,
                               csr.data.size, rows, cols)
