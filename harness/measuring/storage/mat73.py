"""MATLAB v7.3 ``.mat`` files: HDF5 files (after a 512-byte text header) in which each variable
is a dataset, or a sparse matrix a group, with a ``MATLAB_class`` attribute.

MATLAB stores its arrays column by column, and its HDF5 writer keeps those bytes: a matrix
MATLAB shows as m x n is a dataset of shape (n, m), its transpose. The harness measures the
matrix as MATLAB shows it: a dense variable is an HDF5 spec of shape (m, n) in column-major
order (``order="F"``), which the strategies that read column-major files multiply by column
blocks (the HDF5 row readers would multiply the transpose, so they skip it, naming the row-major
copy that serves them); a sparse variable (``data``, ``ir``, ``jc``) is MATLAB's CSC of the
matrix as shown, read by the in-RAM sparse strategies (storage ``csc-hdf5``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage.base import FileLocation, UserFileError
from harness.measuring.storage.hdf5 import open_file
from harness.measuring.storage.user_checks import (
    check_compressed_structure,
    check_matrix_shape,
    value_dtypes,
)

#: MATLAB classes of numbers (``MATLAB_class``); others (char, logical, cell, struct) are not.
NUMERIC_CLASSES = ("double", "single", "int8", "int16", "int32", "int64", "uint8", "uint16",
                   "uint32", "uint64")


def _class_of(node) -> str:
    value = node.attrs.get("MATLAB_class", b"")
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _variables(f) -> dict[str, object]:
    """Name -> node of every top-level variable holding a 2-D numeric matrix."""
    import h5py

    found = {}
    for name, node in f.items():
        if _class_of(node) not in NUMERIC_CLASSES:
            continue
        sparse = isinstance(node, h5py.Group) and "MATLAB_sparse" in node.attrs
        if sparse or (isinstance(node, h5py.Dataset) and node.ndim == 2):
            found[name] = node
    return found


def open_user(path: Path, *, dataset=None, shape=None, dtype=None) -> tuple[DatasetSpec, FileLocation]:
    """One variable of a v7.3 file (``file.mat:name``; the only 2-D numeric one when the
    name is left out), as MATLAB shows it."""
    try:
        f = open_file(path)
    except OSError as exc:
        raise UserFileError(f"{path} cannot be opened as a MATLAB v7.3 (HDF5) file ({exc}); "
                            "check that the file is whole") from None
    with f:
        variables = _variables(f)
        listed = ", ".join(list(variables)[:8]) or "none"
        if dataset is None:
            if len(variables) != 1:
                raise UserFileError(f"{path} holds {len(variables)} 2-D numeric variables "
                                    f"({listed}); name one as {path.name}:name")
            name = next(iter(variables))
        else:
            name = dataset.strip("/")
            if name not in variables:
                kind = _class_of(f[name]) if name in f else ""
                what = f" (a MATLAB {kind} variable)" if kind else ""
                raise UserFileError(f"{path} has no 2-D numeric variable {name!r}{what}; its "
                                    f"2-D numeric variables: {listed}; name one as "
                                    f"{path.name}:name")
        node = variables[name]
        where = f"{path.name}:{name}"
        if "MATLAB_sparse" in node.attrs:
            return _sparse(path, node, name, where)
        stored = node.dtype
        if stored.names and set(stored.names) >= {"real", "imag"}:
            raise UserFileError(f"{where} holds complex values; the harness multiplies real "
                                "matrices: save real(A) and imag(A) apart")
        cols, rows = check_matrix_shape(node.shape, where, "name a 2-D variable")
        compute, stored_dtype = value_dtypes(stored, where, "save it as double(A) or single(A)")
        chunks = tuple(node.chunks[::-1]) if node.chunks else None
        spec = DatasetSpec((rows, cols), compute, storage="hdf5", chunks=chunks,
                           stored_dtype=stored_dtype, order="F")
        return spec, FileLocation(path, dataset=node.name)


def _sparse(path: Path, group, name: str, where: str) -> tuple[DatasetSpec, FileLocation]:
    """A MATLAB sparse variable: CSC (``data``, row indices ``ir``, column offsets ``jc``) of
    the matrix as MATLAB shows it, ``MATLAB_sparse`` rows."""
    rows = int(np.asarray(group.attrs["MATLAB_sparse"]).reshape(-1)[0])
    if "jc" not in group:
        raise UserFileError(f"{where} is a damaged MATLAB sparse variable: it has no jc; save "
                            "it again")
    jc = group["jc"][...]
    cols = jc.shape[0] - 1
    rows, cols = check_matrix_shape((rows, cols), where, "name a 2-D variable")
    if "data" not in group or "ir" not in group:  # an all-zero sparse matrix stores neither
        raise UserFileError(f"{where} is a sparse matrix without entries (all zeros); there is "
                            "nothing to multiply")
    compute, stored = value_dtypes(group["data"].dtype, where, "save it as double")
    ir = group["ir"]
    step = 1 << 22
    check_compressed_structure(where, jc, (ir[i:i + step] for i in range(0, ir.shape[0], step)),
                               ir.shape[0], group["data"].shape[0], cols, rows)
    density = ir.shape[0] / (rows * cols)
    return (DatasetSpec((rows, cols), compute, density=density, storage="csc-hdf5",
                        stored_dtype=stored), FileLocation(path, dataset=group.name))
