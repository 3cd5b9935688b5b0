"""Matrix Market files (``.mtx``, NIST's text format; the SuiteSparse collection's): read with
``scipy.io.mmread``, coordinate (sparse) or array (dense), real, integer or pattern values as
float64, symmetric and skew-symmetric matrices expanded as their user means them. Complex and
Hermitian matrices are refused in one line. The file is parsed whole (a text format has no
blocks to seek): its header's entry count bounds the RAM that takes, checked first."""

from __future__ import annotations

from pathlib import Path

from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage.base import FileLocation, UserFileError
from harness.measuring.storage.user_checks import check_matrix_shape
from harness.measuring.storage.whole_file import (
    register_read_only,
    require_ram,
)

#: Bytes a stored entry takes while it is parsed: COO (value, row, column) and the CSR made
#: from it (value, index), both alive for a moment.
PARSE_BYTES_PER_ENTRY = 3 * 8 + 2 * 8


def _header(path):
    import scipy.io

    try:
        return scipy.io.mminfo(path)
    except (ValueError, OSError, IndexError) as exc:
        raise UserFileError(f"{path} has a damaged Matrix Market header ({exc}); check the "
                            "file's first lines (%%MatrixMarket matrix ...)") from None


def _load(spec: DatasetSpec, location):
    import scipy.io

    return scipy.io.mmread(location)


def open_user(path: Path, *, dataset=None, shape=None, dtype=None) -> tuple[DatasetSpec, FileLocation]:
    rows, cols, entries, layout, field, symmetry = _header(path)
    if field == "complex" or symmetry == "hermitian":
        raise UserFileError(f"{path} holds a complex matrix; the harness multiplies real "
                            "matrices: keep its real part (scipy.io.mmread(path).real)")
    rows, cols = check_matrix_shape((rows, cols), path.name, "check the header's sizes")
    if layout == "array":
        require_ram(path, 2 * rows * cols * 8, "this dense Matrix Market file")
        return DatasetSpec((rows, cols), "float64", storage="mtx"), FileLocation(path)
    stored = entries * (1 if symmetry == "general" else 2)  # mirrored entries are added
    require_ram(path, stored * PARSE_BYTES_PER_ENTRY, "this Matrix Market file")
    density = min(1.0, stored / (rows * cols))
    return (DatasetSpec((rows, cols), "float64", density=density, storage="mtx"),
            FileLocation(path))


STORAGE = register_read_only("mtx", "mtx", _load)
