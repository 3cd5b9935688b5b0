"""Checks every reader of a user's file makes: a matrix of numbers the harness multiplies."""

from __future__ import annotations

import numpy as np

from harness.measuring.matrix.spec import compute_dtype
from harness.measuring.storage.base import UserFileError


def value_dtypes(dtype, where: str, fix: str, packing_dtype=None) -> tuple[str, str | None]:
    """``(compute dtype, stored dtype)`` of a matrix the file stores as ``dtype``: the float
    dtype it is multiplied in (``matrix.spec.compute_dtype``) and the file's dtype when that is
    another (integers, float16, another byte order; None when it is the same); a packed
    variable is unpacked in its ``scale_factor``'s dtype (``packing_dtype``). Complex,
    128-bit floats and non-numbers are a :class:`UserFileError` naming ``where`` and ``fix``."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise UserFileError(f"{where} holds complex values ({dtype}); the harness multiplies real "
                            f"matrices (a complex product is four real ones): {fix}")
    if dtype.kind not in "iuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise UserFileError(f"{where} holds {dtype} values, not numbers; the harness multiplies "
                            f"integer or float matrices: {fix}")
    if dtype.kind == "f" and dtype.itemsize > 8:
        raise UserFileError(f"{where} holds {dtype.itemsize * 8}-bit floats, which BLAS does not "
                            f"multiply; {fix}")
    compute = compute_dtype(dtype, packing_dtype)
    return compute, (None if dtype == np.dtype(compute) else dtype.str)


def check_matrix_shape(shape, where: str, fix: str) -> tuple[int, int]:
    """``(rows, cols)`` of a 2-D shape with positive sizes, else a :class:`UserFileError`."""
    if len(shape) != 2 or min(shape, default=0) < 1:
        raise UserFileError(f"{where} is not a matrix: it holds an array of shape {tuple(shape)}, "
                            f"and a matrix has two positive dimensions; {fix}")
    return int(shape[0]), int(shape[1])


def check_compressed_structure(where: str, indptr: np.ndarray, index_chunks, entries: int,
                               values: int, major: int, minor: int) -> None:
    """A UserFileError naming the first fault of a CSR (CSC) structure: ``indptr`` of
    ``major`` + 1 offsets from 0, non-decreasing, ending at the ``entries`` indices (and
    ``values`` values); every index (``index_chunks``: arrays of them, read a part at a time)
    in ``[0, minor)``."""
    fault = ""
    if indptr.size != major + 1 or (indptr.size and indptr[0] != 0) \
            or (indptr.size and indptr[-1] != entries) or entries != values:
        fault = "its indptr does not match its rows and entries"
    elif indptr.size > 1 and np.any(np.diff(indptr) < 0):
        fault = "its indptr decreases"
    else:
        for chunk in index_chunks:
            if chunk.size and (int(chunk.min()) < 0 or int(chunk.max()) >= minor):
                bad = int(chunk.max()) if int(chunk.max()) >= minor else int(chunk.min())
                fault = f"an index ({bad}) lies outside its {minor} columns (or rows)"
                break
    if fault:
        raise UserFileError(f"{where} is a damaged sparse matrix: {fault}; write it again")
