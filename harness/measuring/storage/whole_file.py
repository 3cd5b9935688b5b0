"""What the formats that a library reads whole have in common (Matrix Market, MATLAB v5,
Harwell-Boeing): the matrix is parsed once per reader into RAM (CSR, or a dense array), then
handed out a block of rows at a time. Opening checks, from the file's own header, that the
parsed matrix fits the fit policy's RAM before anything is parsed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from harness import units
from harness.measuring import fit
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import base
from harness.measuring.storage.base import UserFileError


def require_ram(path, needed_bytes: int, what: str) -> None:
    """A UserFileError when parsing ``path`` (``needed_bytes`` at its peak) may not fit."""
    refusal = fit.ram_refusal(needed_bytes)
    if refusal:
        raise UserFileError(f"{path}: reading {what} needs about {units.human_bytes(needed_bytes)}: "
                            f"{refusal}; convert it on a larger machine (scipy.io) to .npz or HDF5")


def csr_blocks_of(load: Callable[[DatasetSpec, object], object]):
    """``csr_row_blocks`` of a format whose ``load(spec, location)`` returns the whole matrix
    (a scipy.sparse matrix or a dense array)."""
    def csr_row_blocks(spec: DatasetSpec, location, rows: int) -> Iterator[tuple[int, object]]:
        import scipy.sparse as sp

        matrix = load(spec, location)
        csr = sp.csr_array(matrix) if not isinstance(matrix, np.ndarray) else None
        for r0 in range(0, spec.shape[0], rows):
            part = csr[r0:r0 + rows] if csr is not None else sp.csr_array(matrix[r0:r0 + rows])
            yield r0, part.astype(spec.dtype, copy=False)

    return csr_row_blocks


def dense_blocks_of(load: Callable[[DatasetSpec, object], object]):
    """``row_blocks`` of a format whose ``load(spec, location)`` returns the whole matrix."""
    def row_blocks(spec: DatasetSpec, location, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        import scipy.sparse as sp

        matrix = load(spec, location)
        if not isinstance(matrix, np.ndarray):
            matrix = sp.csr_array(matrix)  # COO and CSC have no row slices
        for r0 in range(0, spec.shape[0], rows):
            part = matrix[r0:r0 + rows]
            part = part if isinstance(part, np.ndarray) else part.toarray()
            yield r0, np.ascontiguousarray(part, dtype=spec.dtype)

    return row_blocks


def register_read_only(name: str, extension: str, load) -> base.Storage:
    """Register a format the harness only reads, parsed whole by ``load(spec, location)``: its
    blocks are handed out from the parsed matrix, a pass reads the whole file."""
    return base.register(base.Storage(
        name=name, extension=extension, write=None,
        stored_bytes=lambda spec, location: base.file_size(location),
        row_blocks=dense_blocks_of(load), csr_row_blocks=csr_blocks_of(load)))
