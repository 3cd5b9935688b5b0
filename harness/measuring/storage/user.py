"""A user's own matrix: found where it is, opened read-only, said what it is, read block by
block.

``open_user_matrix("file.h5:/group/dataset")`` detects the format from the file's first bytes
(``.npy``, HDF5, scipy ``.npz``, a zarr store, else raw binary with a given shape and dtype) and
asks that format's module (``storage.raw``, ``hdf5``, ``npz``, ``zarr``) to open it: each checks
that the file holds a float32 or float64 matrix and returns its ``DatasetSpec`` (shape, dtype,
storage, layout, density) and ``FileLocation`` (the file, the byte offset of a ``.npy``'s array,
the HDF5 dataset or the zarr array's path), which the strategies open in place.

The file is only ever opened for reading (``open(path, "rb")``, ``h5py.File(path, "r")``,
zarr's mode "r", read-only maps); a cold measurement evicts its pages from the page cache,
which changes neither its bytes nor its times. Every problem is a ``UserFileError``: one
sentence that names the problem and the fix.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import (
    files,
    formats,
    hb,
    hdf5,
    mat,
    mat73,
    mtx,
    netcdf3,
    npz,
    raw,
    zarr,
)
from harness.measuring.storage.base import BLOCK_BYTES, FileLocation, UserFileError, block_rows

#: Format (as detected) -> its module's opener: ``(path, dataset=, shape=, dtype=)`` ->
#: ``(DatasetSpec, FileLocation)``.
READERS = {"npy": raw.open_npy, "raw": raw.open_raw, "hdf5": hdf5.open_user,
           "npz": npz.open_user, "zarr": zarr.open_user, "mtx": mtx.open_user,
           "mat": mat.open_user, "hb": hb.open_user, "netcdf3": netcdf3.open_user,
           "mat-7.3": mat73.open_user}
#: Formats whose file holds several matrices, one named as ``file:name`` (or ``dataset=``).
NAMED_FORMATS = ("hdf5", "zarr", "mat", "netcdf3", "mat-7.3")
#: Harwell-Boeing files have no magic bytes: they are known by their names' suffix.
HB_SUFFIXES = (".rua", ".rsa", ".hb", ".rb")


@dataclasses.dataclass(frozen=True)
class UserMatrix:
    """A user's matrix, as found: ``format`` (npy, raw, hdf5, npz, zarr), ``spec`` (its shape,
    dtype, storage and layout; a density for a sparse one), ``location`` (where the strategies
    read it)."""

    format: str
    spec: DatasetSpec
    location: FileLocation

    @property
    def path(self) -> Path:
        return Path(self.location.path)

    @property
    def label(self) -> str:
        """How tables name its storage: the format, marked as the user's own file."""
        return f"{self.format} (yours)"

    def describe(self) -> dict:
        """JSON-safe arguments of :func:`open_user_matrix` that find this matrix again."""
        dataset = self.location.dataset if self.format in NAMED_FORMATS else None
        # dtype: the file's own (a raw file of uint8 is opened again as uint8).
        return {"file": os.fspath(self.path), "dataset": dataset, "shape": list(self.spec.shape),
                "dtype": self.spec.stored_dtype or self.spec.dtype}

    def facts(self) -> dict:
        """What the file holds and how it is stored (``Storage.describe``), with its format."""
        return {"format": self.format,
                **formats.get(self.spec.storage).describe(self.spec, self.location)}

    def identity(self) -> dict:
        """What a copy of it depends on: the file (a store: all its files), its size and
        mtime, the dataset."""
        size, mtime_ns = files.size_and_mtime(self.path)
        return {"path": os.fspath(self.path), "dataset": self.location.dataset,
                "format": self.format, "size_bytes": size, "mtime_ns": mtime_ns,
                "shape": list(self.spec.shape), "dtype": self.spec.dtype}

    def block_rows(self, max_bytes: int = BLOCK_BYTES) -> int:
        """Rows per block of ``row_blocks``: about ``max_bytes`` of dense rows, at least one."""
        return block_rows(self.spec, max_bytes)

    def row_blocks(self, max_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first row, dense block)`` in row order, about ``max_bytes`` a block."""
        storage = formats.get(self.spec.storage)
        yield from storage.row_blocks(self.spec, self.location, self.block_rows(max_bytes))

    def column_blocks(self, max_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first column, dense block of whole columns)`` of a column-major file
        (``spec.order == "F"``) in file order, about ``max_bytes`` a block."""
        cols = max(1, max_bytes // (self.spec.shape[0] * self.spec.itemsize))
        reader = hdf5.column_blocks if self.spec.storage == "hdf5" else raw.column_blocks
        yield from reader(self.spec, self.location, cols)

    def csr_row_blocks(self, max_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, object]]:
        """Yield ``(first row, scipy.sparse.csr_array of those rows)`` in row order."""
        storage = formats.get(self.spec.storage)
        yield from storage.csr_row_blocks(self.spec, self.location, self.block_rows(max_bytes))


# ------------------------------------------------------------------------------- entry point

def split_dataset(text: str) -> tuple[Path, str | None]:
    """``'file.h5:/group/A'`` -> (file.h5, '/group/A'); a path that exists as it is -> (path,
    None). The file is the longest part before a colon that exists, so a dataset name may hold
    colons itself (Keras' ``file.h5:/dense/kernel:0``) and so may the file's name; where that
    is ambiguous, ``open_user_matrix(path, dataset=...)`` (``--dataset``) names both apart."""
    text = os.fspath(text)
    if os.path.exists(text) or ":" not in text:
        return Path(text), None
    heads = [i for i, char in enumerate(text) if char == ":" and i > 0 and os.path.exists(text[:i])]
    if not heads:
        return Path(text), None
    cut = heads[-1]
    return Path(text[:cut]), "/" + text[cut + 1:].lstrip("/")


def open_user_matrix(file: str | os.PathLike, *, shape: tuple[int, int] | None = None,
                     dtype: str | None = None, dataset: str | None = None) -> UserMatrix:
    """The user's matrix in ``file`` (``file.h5:/dataset`` for HDF5, or ``dataset=`` given
    apart, which takes any name as it is); ``shape`` and ``dtype`` describe a raw binary file
    (dtype default float32). Raises :class:`UserFileError`."""
    if dataset is None:
        path, dataset = split_dataset(file)
    else:
        path, dataset = Path(os.fspath(file)), "/" + dataset.lstrip("/")
    if not path.exists():
        raise UserFileError(f"{path}: no such file or directory; check the path")
    kind = detect_format(path)  # refuses a FIFO or a device before reading it
    if kind == "cdf5":
        raise UserFileError(f"{path} is a CDF-5 (64-bit data) netCDF file, which scipy does not "
                            "read; convert it with nccopy -k nc4 (netCDF-4 is HDF5, read here)")
    if dataset is not None and kind not in NAMED_FORMATS:
        raise UserFileError(f"{path} is not an HDF5, MATLAB, netCDF or zarr file, so ':{dataset}' names "
                            "nothing in it; drop the ':/dataset' part")
    if kind == "directory":
        raise UserFileError(f"{path} is a directory, not a matrix file or a zarr store; give a "
                            ".npy, raw, HDF5 (file.h5:/dataset), scipy .npz file or zarr store")
    spec, location = READERS[kind](path.resolve(), dataset=dataset, shape=shape, dtype=dtype)
    return UserMatrix(kind, spec, location)


def detect_format(path: Path) -> str:
    """npy, hdf5, npz, zarr, mtx, mat (mat-7.3), hb (by its suffix) or raw, from the file's
    first bytes (a directory: zarr or not).
    A FIFO, device or socket is refused (UserFileError): reading it may block forever."""
    _refuse_special_file(path)
    if path.is_dir():
        markers = ("zarr.json", ".zarray", ".zgroup")
        return "zarr" if path.suffix == ".zarr" or any((path / m).exists() for m in markers) \
            else "directory"
    with open(path, "rb") as f:
        head = f.read(128)
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(mat.V73_HEADER):
        return "mat-7.3"
    if head.startswith(b"MATLAB 5.0 MAT-file"):
        return "mat"
    if head.lstrip().startswith(b"%%MatrixMarket"):
        return "mtx"
    if head.startswith(netcdf3.MAGICS):
        return "netcdf3"
    if head.startswith(netcdf3.CDF5_MAGIC):
        return "cdf5"
    if head[:8] == b"\x89HDF\r\n\x1a\n" or _is_hdf5(path):
        return "hdf5"
    if head.startswith(b"PK\x03\x04") and zipfile.is_zipfile(path):
        return "npz"
    if path.suffix.lower() in HB_SUFFIXES:
        return "hb"
    return "raw"


def _refuse_special_file(path: Path) -> None:
    """A UserFileError unless ``path`` is a regular file or a directory (after symlinks): a
    named pipe would block the first read forever, a device (/dev/zero) has no size."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # gone or unreadable: the open that follows says so
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UserFileError(f"{path} is not a regular file (a FIFO, device or socket); give a "
                            ".npy, raw, HDF5 or .npz file or a zarr store")


def _is_hdf5(path: Path) -> bool:
    import h5py

    try:
        return bool(h5py.is_hdf5(path))  # also finds a superblock after a user block
    except OSError:
        return False
