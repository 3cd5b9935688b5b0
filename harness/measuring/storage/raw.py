"""Flat binary storage: rows x cols values in C order, from byte 0 (the harness's ``.raw``
files, a user's raw file) or after a ``.npy`` header (a user's ``.npy``, read in place at the
byte offset of its array). Storage ``ram`` is the same file, loaded into RAM by ``dense``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import base
from harness.measuring.storage.base import FileLocation, UserFileError
from harness.measuring.storage.user_checks import check_dtype, check_matrix_shape


def write(spec: DatasetSpec, path: Path, blocks, advance=lambda n: None, entries=None) -> None:
    """The dense blocks, one after the other (``f.write``: ``tofile`` loses a full disk's
    errno)."""
    with open(path, "wb") as out:
        for _, block in blocks():
            out.write(np.ascontiguousarray(block, dtype=spec.dtype).data)
            advance(block.nbytes)


def row_blocks(spec: DatasetSpec, location, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    nrows, ncols = spec.shape
    offset = base.byte_offset(location)
    with open(location, "rb") as f:
        for r0 in range(0, nrows, rows):
            n = min(rows, nrows - r0)
            f.seek(offset + r0 * ncols * spec.itemsize)
            block = np.fromfile(f, dtype=spec.dtype, count=n * ncols)
            yield r0, block.reshape(n, ncols)


STORAGE = base.register(base.Storage(
    name="raw", extension="raw", write=write, stored_bytes=lambda spec, location: base.file_size(location),
    row_blocks=row_blocks, flat_offset=lambda spec, location: base.byte_offset(location)))


# ------------------------------------------------------------------------------ users' files

def open_npy(path: Path, *, dataset=None, shape=None, dtype=None) -> tuple[DatasetSpec, FileLocation]:
    """A ``.npy`` file: C order, native float32/float64, two dimensions; read in place at the
    byte offset of its array (after the header)."""
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
    save_again = "save it with np.save(path, a.astype('float32')) or 'float64'"
    if file_dtype.hasobject:
        raise UserFileError(f"{path} holds Python objects, not numbers; {save_again}")
    rows, cols = check_matrix_shape(file_shape, path.name,
                                    "save a 2-D array (a.reshape(rows, cols))")
    name = check_dtype(file_dtype, path.name, save_again)
    if fortran and rows > 1 and cols > 1:
        raise UserFileError(f"{path} is stored in Fortran (column) order, and the strategies "
                            "read rows; save it with np.save(path, np.ascontiguousarray(a))")
    expected = offset + rows * cols * file_dtype.itemsize
    if path.stat().st_size != expected:
        raise UserFileError(f"{path} holds {path.stat().st_size} bytes, but its header "
                            f"announces {expected} ({rows}x{cols} {name}): the file is "
                            "truncated or damaged; save it again")
    if shape is not None and tuple(shape) != (rows, cols):
        raise UserFileError(f"{path} holds a {rows}x{cols} matrix, not {shape[0]}x{shape[1]}; "
                            "drop --shape (a .npy says its own)")
    return DatasetSpec((rows, cols), name, storage="raw"), FileLocation(path, byte_offset=offset)


def open_raw(path: Path, *, dataset=None, shape=None, dtype=None) -> tuple[DatasetSpec, FileLocation]:
    """A raw binary file of rows x cols values in C order; its shape and dtype are given."""
    if shape is None:
        raise UserFileError(
            f"{path} is not a .npy, HDF5, scipy .npz or zarr file, so it is read as a raw "
            "binary matrix: give its --shape ROWSxCOLS (and --dtype, default float32)")
    name = check_dtype(_dtype_or_error(dtype or "float32"), f"--dtype {dtype}",
                       "pass --dtype float32 or float64, converting the file first if it "
                       "holds another type")
    rows, cols = shape
    expected = rows * cols * np.dtype(name).itemsize
    size = path.stat().st_size
    if size != expected:
        hint = (f" (it holds {size // np.dtype(name).itemsize} {name} values)"
                if size % np.dtype(name).itemsize == 0 else "")
        raise UserFileError(
            f"{path} holds {size} bytes{hint}, but --shape {rows}x{cols} --dtype {name} "
            f"needs {expected}; give the shape and dtype the file was written with")
    return DatasetSpec((rows, cols), name, storage="raw"), FileLocation(path)


def _dtype_or_error(text: str) -> np.dtype:
    try:
        return np.dtype(text)
    except TypeError:
        raise UserFileError(f"--dtype {text!r} is not a numpy dtype; pass --dtype float32 or "
                            "float64") from None
