"""MATLAB ``.mat`` files, versions 5 to 7 (``scipy.io.loadmat``): one variable, named as
``file.mat:name`` (or ``--dataset name``; the only 2-D numeric variable when left out), dense
(double, single) or sparse. The variables are listed from the file's headers
(``scipy.io.whosmat``) before anything is loaded, then the one named is loaded whole. Version
7.3 files are HDF5 files that store the transpose of what MATLAB shows: refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import DatasetSpec, compute_dtype
from harness.measuring.storage.base import FileLocation, UserFileError
from harness.measuring.storage.user_checks import check_matrix_shape
from harness.measuring.storage.whole_file import (
    register_read_only,
    require_ram,
)

#: MATLAB classes -> the dtype the harness multiplies them in (integers: as ``compute_dtype``
#: says, each converted as the variable is loaded).
_INTEGERS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_CLASSES = {"double": "float64", "single": "float32", "sparse": "float64",
            **{kind: compute_dtype(np.dtype(kind)) for kind in _INTEGERS}}
#: The text every version-7.3 file begins with (its HDF5 userblock).
V73_HEADER = b"MATLAB 7.3 MAT-file"


def _variable(location) -> str:
    return (location.dataset or "").strip("/")


def _load(spec: DatasetSpec, location):
    import scipy.io

    name = _variable(location)
    return scipy.io.loadmat(location, variable_names=[name], mat_dtype=False)[name]


def open_user(path: Path, *, dataset=None, shape=None, dtype=None) -> tuple[DatasetSpec, FileLocation]:
    import scipy.io

    try:
        variables = scipy.io.whosmat(path)
    except (ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise UserFileError(f"{path} cannot be read as a MATLAB file ({exc}); save it again "
                            "with save(..., '-v7')") from None
    matrices = [(name, shape_, kind) for name, shape_, kind in variables if len(shape_) == 2
                and kind in (*_CLASSES, "logical")]
    listed = ", ".join(name for name, _, _ in matrices[:8]) or "none"
    if dataset is None:
        if len(matrices) != 1:
            raise UserFileError(f"{path} holds {len(matrices)} 2-D numeric variables ({listed}); "
                                f"name one as {path.name}:name")
        name, file_shape, kind = matrices[0]
    else:
        name = dataset.strip("/")
        found = [v for v in variables if v[0] == name]
        if not found:
            raise UserFileError(f"{path} has no variable {name!r} (its 2-D numeric variables: "
                                f"{listed}); name an existing one as {path.name}:name")
        _, file_shape, kind = found[0]
    where = f"{path.name}:{name}"
    rows, cols = check_matrix_shape(file_shape, where, "name a 2-D variable")
    if kind not in _CLASSES:
        raise UserFileError(f"{where} is a MATLAB {kind} array; the harness multiplies numeric "
                            "matrices: save it as double(A) or single(A)")
    item = np.dtype(_CLASSES[kind]).itemsize  # loaded values (an integer's no wider) and theirs
    if kind == "sparse":
        # The header does not say how many entries: the file's size bounds them.
        entries = max(1, Path(path).stat().st_size // (item + 8))
        require_ram(path, 2 * entries * (item + 8), f"variable {name}")
        density = min(1.0, entries / (rows * cols))
        spec = DatasetSpec((rows, cols), _CLASSES[kind], density=density, storage="mat")
    else:
        require_ram(path, 2 * rows * cols * item, f"variable {name}")
        spec = DatasetSpec((rows, cols), _CLASSES[kind], storage="mat")
    return spec, FileLocation(path, dataset=name)


STORAGE = register_read_only("mat", "mat", _load)
