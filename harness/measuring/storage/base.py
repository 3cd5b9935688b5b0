"""The interface every storage format implements, and where a stored matrix is.

A storage format is one module of this package that registers a :class:`Storage` record: how
to write a matrix from row blocks, how many bytes a pass reads from storage, the byte offset of
its values where they lie flat in the file, and how to read it back as row blocks. A format
users bring (``.npy``, raw, HDF5, ``.npz``, zarr) also opens a user's file read-only and
describes it (``harness.measuring.storage.user``). The harness's generated datasets
(``datasets``) and copies of a user's matrix (``copies``) are written through the same records
into the one sealed-file cache (``cache``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import files
from harness.units import MiB

#: Rows read at a time by ``row_blocks`` aim at this many bytes of dense values.
BLOCK_BYTES = 16 * MiB


class UserFileError(ValueError):
    """A user's file cannot be measured; the message names the problem and the fix."""


@dataclasses.dataclass(frozen=True)
class FileLocation(os.PathLike):
    """Where a matrix sits in a file that ``materialize`` did not write (a user's own file, or
    one converted from it): ``path``; ``byte_offset``, where a flat array starts (a ``.npy``
    header comes first); ``dataset``, the HDF5 dataset's or zarr array's path (None: the
    harness's own name). Openers take it wherever they take a path (it is ``os.PathLike``)."""

    path: Path
    byte_offset: int = 0
    dataset: str | None = None

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    @property
    def name(self) -> str:
        return Path(self.path).name

    def to_dict(self) -> dict:
        """JSON-safe: what :meth:`from_dict` takes back (a child process's request)."""
        return {"path": os.fspath(self.path), "byte_offset": self.byte_offset,
                "dataset": self.dataset}

    @classmethod
    def from_dict(cls, d: dict) -> FileLocation:
        return cls(Path(d["path"]), int(d["byte_offset"]), d["dataset"])


def byte_offset(location) -> int:
    """Byte offset of a flat array in ``location`` (0 unless a :class:`FileLocation` says so)."""
    return location.byte_offset if isinstance(location, FileLocation) else 0


def dataset_name(location, default: str) -> str:
    """The dataset (array) to read in ``location``: a :class:`FileLocation`'s, else
    ``default`` (the harness's own name)."""
    return location.dataset if isinstance(location, FileLocation) and location.dataset else default


def damaged(location, name: str, read, first: int, stop: int, chunks, exc: Exception
            ) -> UserFileError:
    """The one line that names a damaged part of a stored matrix: the first chunk-row among
    rows [first, stop) that ``read(a, b)`` fails on (each read again alone), the file, and what
    its reader said (``exc``, when no single chunk-row fails again)."""
    unit = chunks[0] if chunks else stop - first
    for a in range(first, stop, unit):
        b = min(a + unit, stop)
        try:
            read(a, b)
        except Exception as again:  # noqa: BLE001 - any reader's error names the damage
            first, stop, exc = a, b, again
            break
    where = f"rows {first}-{stop - 1}" + (f" (chunks of {chunks[0]}x{chunks[1]})" if chunks else "")
    said = " ".join(f"{type(exc).__name__}: {exc}".split())
    return UserFileError(f"{os.fspath(location)}:{name}: {where} cannot be read ({said}): the "
                         "file is damaged; restore or rewrite it")


def block_rows(spec: DatasetSpec, max_bytes: int = BLOCK_BYTES, align: int = 1) -> int:
    """Rows per block: about ``max_bytes`` of dense rows, whole multiples of ``align`` rows
    (chunk-rows, so each chunk is decoded once), at least one multiple."""
    rows = max(1, max_bytes // (spec.shape[1] * spec.itemsize))
    rows = max(align, rows // align * align)
    return max(1, min(spec.shape[0], rows))


#: ``(row_start, block)`` pairs in row order: dense ndarrays, or ``scipy.sparse.csr_array``
#: rows for a sparse storage.
Blocks = Iterable[tuple[int, object]]


def _csr_blocks_from_dense(row_blocks):
    def csr_row_blocks(spec: DatasetSpec, location, rows: int):
        import scipy.sparse as sp

        for r0, block in row_blocks(spec, location, rows):
            yield r0, sp.csr_array(block)

    return csr_row_blocks


def _dense_blocks_from_csr(csr_row_blocks):
    def row_blocks(spec: DatasetSpec, location, rows: int):
        for r0, block in csr_row_blocks(spec, location, rows):
            yield r0, block.toarray()

    return row_blocks


@dataclasses.dataclass(frozen=True)
class Storage:
    """One storage format.

    ``name``: the spec's ``storage``; ``extension``: the suffix of the harness's files;
    ``sparse``: it holds a CSR matrix (blocks are ``csr_array`` rows, a spec needs a density).
    ``write(spec, path, blocks, advance, entries)``: write the matrix ``spec`` describes to
    ``path`` from ``blocks()`` (called again if the writer needs two passes), calling
    ``advance(nbytes)`` as it goes; ``entries``: the stored entries of a sparse matrix when
    known. ``stored_bytes(spec, location)``: what a pass reads from storage (bytes).
    ``row_blocks(spec, location, rows)``: ``(row_start, dense block)`` of ``rows`` rows (fewer
    at the end) in row order; ``csr_row_blocks`` the same as CSR rows (a format gives one of
    the two, the other is converted from it). ``flat_offset(spec,
    location)``: the byte offset of the values where they lie flat and uncompressed in the file
    (None elsewhere).
    """

    name: str
    extension: str
    #: None for a format the harness only reads (a user's Matrix Market, MATLAB, ... file).
    write: Callable[..., None] | None = dataclasses.field(repr=False)
    stored_bytes: Callable[[DatasetSpec, object], int] = dataclasses.field(repr=False)
    row_blocks: Callable[[DatasetSpec, object, int], Iterator[tuple[int, np.ndarray]]] | None \
        = dataclasses.field(default=None, repr=False)
    sparse: bool = False
    csr_row_blocks: Callable | None = dataclasses.field(default=None, repr=False)
    flat_offset: Callable[[DatasetSpec, object], int | None] = dataclasses.field(
        default=lambda spec, location: None, repr=False)

    def __post_init__(self) -> None:
        # A format reads one kind of block; the other is converted from it.
        if self.row_blocks is None:
            object.__setattr__(self, "row_blocks", _dense_blocks_from_csr(self.csr_row_blocks))
        if self.csr_row_blocks is None:
            object.__setattr__(self, "csr_row_blocks", _csr_blocks_from_dense(self.row_blocks))

    def describe(self, spec: DatasetSpec, location) -> dict:
        """JSON-safe facts of the stored matrix: shape, dtype, chunks, codec, shards, density,
        the bytes a pass reads and the byte offset of flat values (None where none)."""
        chunks = spec.chunks
        return {"storage": self.name, "shape": list(spec.shape), "dtype": spec.dtype,
                "chunks": list(chunks) if isinstance(chunks, tuple) else chunks,
                "compression": spec.compression,
                "shards": list(spec.shards) if spec.shards else None,
                "density": spec.density, "stored_bytes": int(self.stored_bytes(spec, location)),
                "byte_offset": self.flat_offset(spec, location),
                # A user's file of other values than the product's, and how it is laid out.
                "stored_dtype": spec.stored_dtype, "packing": list(spec.packing) if spec.packing
                else None, "order": spec.order}


_REGISTRY: dict[str, Storage] = {}


def register(storage: Storage) -> Storage:
    if storage.name in _REGISTRY:
        raise ValueError(f"storage {storage.name!r} registered twice")
    _REGISTRY[storage.name] = storage
    return storage


def registry() -> dict[str, Storage]:
    return _REGISTRY


def file_size(location) -> int:
    """Bytes of a file (the whole file: a pass over flat or sparse storage reads all of it)."""
    return files.size_and_mtime(Path(os.fspath(location)))[0]
