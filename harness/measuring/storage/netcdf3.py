"""netCDF-3 classic and 64-bit-offset files (``scipy.io.netcdf_file``): one 2-D variable,
named as ``file.nc:name`` (or ``--dataset name``; the only 2-D numeric variable when left
out). The header is read through a read-only map; the variable is loaded whole, from
netCDF's big-endian values into this machine's floats, with CF packing (``scale_factor``,
``add_offset``) unpacked as its user's tools would. Unpacked integers wait for the harness's
integer support: one line says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import DatasetSpec, compute_dtype
from harness.measuring.storage.base import FileLocation, UserFileError
from harness.measuring.storage.user_checks import check_matrix_shape
from harness.measuring.storage.whole_file import register_read_only, require_ram

#: The first bytes of the versions scipy reads (classic, 64-bit offset), and of CDF-5.
MAGICS = (b"CDF\x01", b"CDF\x02")
CDF5_MAGIC = b"CDF\x05"


def _open(path):
    import scipy.io

    try:
        return scipy.io.netcdf_file(path, "r", mmap=True)
    except (ValueError, TypeError, OSError) as exc:
        raise UserFileError(f"{path} cannot be read as netCDF-3 ({exc}); check that the file "
                            "is whole") from None


def _unpacked_dtype(variable) -> str | None:
    """The float dtype the variable's values are multiplied in, or None (unpacked integers)."""
    kind = variable.data.dtype.kind
    scale = getattr(variable, "scale_factor", None)
    offset = getattr(variable, "add_offset", None)
    if scale is not None or offset is not None:
        packed = np.result_type(*(np.asarray(v) for v in (scale, offset) if v is not None))
        return "float32" if packed == np.float32 else "float64"
    if kind in "fiu":  # integers without packing are multiplied as the numbers they are
        return compute_dtype(variable.data.dtype)
    return None


def _load(spec: DatasetSpec, location):
    with _open(location) as nc:
        variable = nc.variables[location.dataset]
        values = np.array(variable.data, dtype=spec.dtype)  # big-endian -> native, a copy
        scale = getattr(variable, "scale_factor", None)
        offset = getattr(variable, "add_offset", None)
        del variable  # scipy warns when a map is closed under a live view
    if scale is not None:
        values *= np.asarray(scale, dtype=spec.dtype)
    if offset is not None:
        values += np.asarray(offset, dtype=spec.dtype)
    return values


def open_user(path: Path, *, dataset=None, shape=None, dtype=None) -> tuple[DatasetSpec, FileLocation]:
    with _open(path) as nc:
        found = {name: (tuple(v.shape), _unpacked_dtype(v), v.data.dtype)
                 for name, v in nc.variables.items() if len(v.shape) == 2}
    listed = ", ".join(list(found)[:8]) or "none"
    if dataset is None:
        if len(found) != 1:
            raise UserFileError(f"{path} holds {len(found)} 2-D variables ({listed}); name one "
                                f"as {path.name}:name")
        name = next(iter(found))
    else:
        name = dataset.strip("/")
        if name not in found:
            raise UserFileError(f"{path} has no 2-D variable {name!r} (its 2-D variables: "
                                f"{listed}); name an existing one as {path.name}:name")
    file_shape, unpacked, stored = found[name]
    where = f"{path.name}:{name}"
    rows, cols = check_matrix_shape(file_shape, where, "name a 2-D variable")
    if unpacked is None:
        raise UserFileError(f"{where} holds {stored.name} values, not numbers; the harness "
                            "multiplies numeric matrices: store it as float or double")
    require_ram(path, 2 * rows * cols * np.dtype(unpacked).itemsize, f"variable {name}")
    return DatasetSpec((rows, cols), unpacked, storage="netcdf3"), FileLocation(path, dataset=name)


STORAGE = register_read_only("netcdf3", "nc", _load)
