"""Harwell-Boeing files (``.rua``, ``.rsa``: the SuiteSparse collection's older format): read
with ``scipy.io.hb_read`` where it can (real, assembled, unsymmetric or symmetric values; a
symmetric one is expanded as its user means it); anything else is one line saying why. Parsed
whole; the header's sizes bound the RAM that takes, checked first."""

from __future__ import annotations

from pathlib import Path

from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage.base import FileLocation, UserFileError
from harness.measuring.storage.user_checks import check_matrix_shape
from harness.measuring.storage.whole_file import (
    register_read_only,
    require_ram,
)

#: Bytes a stored entry takes while it is parsed (the CSC read, and the CSR made from it).
PARSE_BYTES_PER_ENTRY = 2 * (8 + 8)


def _header(path: Path) -> tuple[str, int, int, int]:
    """(matrix type, rows, columns, stored entries) from the header's third line."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            lines = [f.readline() for _ in range(3)]
        kind = lines[2][:3].upper()
        rows, cols, entries = (int(n) for n in lines[2][3:].split()[:3])
    except (OSError, ValueError, IndexError) as exc:
        raise UserFileError(f"{path} has no readable Harwell-Boeing header ({exc}); check "
                            "its first three lines") from None
    return kind, rows, cols, entries


def _load(spec: DatasetSpec, location):
    import scipy.io
    import scipy.sparse as sp

    matrix = sp.csc_array(scipy.io.hb_read(location))
    if location_symmetric(location):
        # The file holds one triangle: the matrix its user means is that plus its mirror.
        matrix = matrix + matrix.T - sp.diags_array(matrix.diagonal())
    return matrix


def location_symmetric(location) -> bool:
    return _header(Path(location))[0][1] == "S"


def open_user(path: Path, *, dataset=None, shape=None, dtype=None) -> tuple[DatasetSpec, FileLocation]:
    kind, rows, cols, entries = _header(path)
    if kind[0] != "R" or kind[2] != "A" or kind[1] not in "US":
        raise UserFileError(f"{path} is a Harwell-Boeing matrix of type {kind}; the harness "
                            "reads real, assembled, unsymmetric or symmetric ones (RUA, RSA)")
    rows, cols = check_matrix_shape((rows, cols), path.name, "check the header's sizes")
    stored = entries * (2 if kind[1] == "S" else 1)
    require_ram(path, stored * PARSE_BYTES_PER_ENTRY, "this Harwell-Boeing file")
    try:
        import scipy.io

        scipy.io.hb_read(path)  # scipy refuses some valid files: say so now, not in a child
    except (ValueError, TypeError) as exc:
        raise UserFileError(f"{path}: scipy.io.hb_read cannot read it ({exc}); convert it "
                            "to Matrix Market or .npz with another tool") from None
    density = min(1.0, stored / (rows * cols))
    return (DatasetSpec((rows, cols), "float64", density=density, storage="hb"),
            FileLocation(path))


STORAGE = register_read_only("hb", "rua", _load)
