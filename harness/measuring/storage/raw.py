"""Flat binary storage: rows x cols values in C order, from byte 0 (the harness's ``.raw``
files, a user's raw file) or after a ``.npy`` header (a user's ``.npy``, read in place at the
byte offset of its array). Storage ``ram`` is the same file, loaded into RAM by ``dense``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import DatasetSpec, computed
from harness.measuring.storage import base
from harness.measuring.storage.base import FileLocation, UserFileError
from harness.measuring.storage.user_checks import check_matrix_shape, value_dtypes


def write(spec: DatasetSpec, path: Path, blocks, advance=lambda n: None, entries=None) -> None:
    """The dense blocks, one after the other (``f.write``: ``tofile`` loses a full disk's
    errno)."""
    with open(path, "wb") as out:
        for _, block in blocks():
            out.write(np.ascontiguousarray(block, dtype=spec.dtype).data)
            advance(block.nbytes)


def row_blocks(spec: DatasetSpec, location, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """Blocks of ``rows`` rows as ``spec.dtype`` (a file of other values converted). A
    column-major file is gathered through a map (each block touches every column:
    ``column_blocks`` reads it in order)."""
    nrows, ncols = spec.shape
    offset = base.byte_offset(location)
    if spec.order == "F":
        matrix = np.memmap(location, dtype=spec.file_dtype, mode="r", shape=spec.shape,
                           offset=offset, order="F")
        for r0 in range(0, nrows, rows):
            yield r0, computed(np.ascontiguousarray(matrix[r0:r0 + rows]), spec)
        del matrix
        return
    with open(location, "rb") as f:
        for r0 in range(0, nrows, rows):
            n = min(rows, nrows - r0)
            f.seek(offset + r0 * ncols * spec.file_dtype.itemsize)
            block = np.fromfile(f, dtype=spec.file_dtype, count=n * ncols)
            yield r0, computed(block.reshape(n, ncols), spec)


def column_blocks(spec: DatasetSpec, location, cols: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(first column, A[:, c0:c0 + cols])`` of a column-major file, in file order."""
    nrows, ncols = spec.shape
    offset = base.byte_offset(location)
    with open(location, "rb") as f:
        for c0 in range(0, ncols, cols):
            n = min(cols, ncols - c0)
            f.seek(offset + c0 * nrows * spec.file_dtype.itemsize)
            block = np.fromfile(f, dtype=spec.file_dtype, count=n * nrows)
            yield c0, computed(block.reshape(n, nrows), spec).T


STORAGE = base.register(base.Storage(
    name="raw", extension="raw", write=write, stored_bytes=lambda spec, location: base.file_size(location),
    row_blocks=row_blocks, flat_offset=lambda spec, location: base.byte_offset(location)))


# ------------------------------------------------------------------------------ users' files

def open_npy(path: Path, *, dataset=None, shape=None, dtype=None) -> tuple[DatasetSpec, FileLocation]:
    """A ``.npy`` file of two dimensions, any real numbers, either order; read in place at
    the byte offset of its array (after the header)."""
    fmt = np.lib.format
    with open(path, "rb") as f:
        try:
            version = fmt.read_magic(f)
            header = (fmt.read_array_header_1_0 if version == (1, 0)
                      else fmt.read_array_header_2_0)(f)
        except ValueError as exc:
            raise UserFileError(f"{path} has a damaged .npy header ({exc}); save it again "
                                "with np.save") from None
        offset = f.tell()
    file_shape, fortran, file_dtype = header
    save_again = "save it with np.save(path, a.astype('float32'))"
    if file_dtype.hasobject:
        raise UserFileError(f"{path} holds Python objects, not numbers; {save_again}")
    rows, cols = check_matrix_shape(file_shape, path.name,
                                    "save a 2-D array (a.reshape(rows, cols))")
    name, stored = value_dtypes(file_dtype, path.name, save_again)
    expected = offset + rows * cols * file_dtype.itemsize
    if path.stat().st_size != expected:
        raise UserFileError(f"{path} holds {path.stat().st_size} bytes, but its header "
                            f"announces {expected} ({rows}x{cols} {file_dtype}): the file is "
                            "truncated or damaged; save it again")
    if shape is not None and tuple(shape) != (rows, cols):
        raise UserFileError(f"{path} holds a {rows}x{cols} matrix, not {shape[0]}x{shape[1]}; "
                            "drop --shape (a .npy says its own)")
    order = "F" if fortran and rows > 1 and cols > 1 else "C"
    return (DatasetSpec((rows, cols), name, storage="raw", stored_dtype=stored, order=order),
            FileLocation(path, byte_offset=offset))


def open_raw(path: Path, *, dataset=None, shape=None, dtype=None) -> tuple[DatasetSpec, FileLocation]:
    """A raw binary file of rows x cols values in C order; its shape and dtype are given."""
    if shape is None:
        raise UserFileError(
            f"{path} is not a .npy, HDF5, scipy .npz or zarr file, so it is read as a raw "
            "binary matrix: give its --shape ROWSxCOLS (and --dtype, default float32)")
    file_dtype = _dtype_or_error(dtype or "float32")
    name, stored = value_dtypes(file_dtype, f"--dtype {dtype}",
                                "pass the dtype of the file's values (float32, int16, >f8, ...)")
    rows, cols = shape
    itemsize = file_dtype.itemsize
    expected = rows * cols * itemsize
    size = path.stat().st_size
    if size != expected:
        hint = f" (it holds {size // itemsize} {file_dtype} values)" if size % itemsize == 0 else ""
        raise UserFileError(
            f"{path} holds {size} bytes{hint}, but --shape {rows}x{cols} --dtype {file_dtype} "
            f"needs {expected}; give the shape and dtype the file was written with")
    return DatasetSpec((rows, cols), name, storage="raw", stored_dtype=stored), FileLocation(path)


def _dtype_or_error(text: str) -> np.dtype:
    try:
        return np.dtype(text)
    except TypeError:
        raise UserFileError(f"--dtype {text!r} is not a numpy dtype; pass the dtype of the "
                            "file's values, e.g. --dtype float32, int16 or >f8") from None
