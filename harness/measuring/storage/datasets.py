"""Dataset specs, deterministic block-wise generation and the on-disk dataset cache.

A :class:`DatasetSpec` names one matrix (its values: shape, dtype, density, seed and the kind of
values, ``harness.measuring.matrix.values``) stored one way (storage, chunks, compression, with the
codecs of ``harness.measuring.storage.codecs``). The values depend only on ``(shape, dtype, density,
seed, values)``, so the same spec in any storage holds exactly the same matrix: generation runs
block of rows by block of rows, each block from its own seeded generator, and the block
boundaries depend only on the shape.

``materialize(spec)`` writes the file once, under a lock, to a temporary name that is renamed
into place and then sealed by a manifest (spec, size, mtime, checksum). A file without a matching
manifest is never trusted: it is regenerated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import glob
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness import units
from harness.measuring.storage import codecs
from harness.measuring.storage import files as filetree
from harness.measuring.matrix import values as value_kinds

#: Bumped whenever the generator's output changes, so old files are not trusted.
GENERATOR_VERSION = 1

#: Storages a spec may name.
STORAGES = ("ram", "raw", "hdf5", "npz", "csr-hdf5", "zarr")
#: Storages that hold a sparse (CSR) matrix; they need a density.
SPARSE_STORAGES = ("npz", "csr-hdf5")
#: HDF5 compressions: the built-in filters and those of hdf5plugin (``harness.measuring.storage.codecs``).
COMPRESSIONS = codecs.HDF5_NAMES
#: Codec names of zarr stores (harness.measuring.storage.zarr maps them to zarr codecs; a spec
#: may name another compression, which zarr's writer and strategies refuse with the list).
ZARR_COMPRESSIONS = (None, "zstd", "blosc-lz4", "blosc-zstd", "gzip-1", "gzip-4")
#: Storages with a chunk shape and a compression.
CHUNKED_STORAGES = ("hdf5", "zarr")
DTYPES = ("float32", "float64")

#: Elements per generation block (4 Mi elements = 16 MiB of float32): bounds generator memory.
_GENERATION_BLOCK_ELEMENTS = 4 * 1024 * 1024
#: Files larger than this get a tqdm progress bar while they are generated.
_PROGRESS_BAR_BYTES = 100_000_000
#: Required free disk beyond the file's size: the file, plus 10% for the OS and other writers.
_FREE_DISK_MARGIN = 0.10
#: Salt of the generator that draws the number of nonzeros of every block.
_NNZ_STREAM = 0x5EED_0001


class InsufficientDiskSpaceError(OSError):
    """Raised before writing when the data directory lacks size + 10% of free space."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One matrix, stored one way.

    shape: (rows, columns); dtype: "float32" or "float64"; density: None for a dense matrix,
    else the fraction of nonzeros in [0, 1]; seed: the values' seed; storage: one of
    ``STORAGES``; chunks: HDF5 chunk shape, None (contiguous) or "auto" (h5py's guess);
    compression: one of ``COMPRESSIONS`` (HDF5 only; implies chunks="auto" when chunks is None;
    "none" is None). zarr stores take chunks and compression too (``ZARR_COMPRESSIONS``; chunks
    None: full-width rows of about 4 MiB) and ``shards`` (a shard shape in rows and columns,
    whole chunks; None: no sharding). values: the kind of values, one of
    ``harness.measuring.matrix.values.KINDS`` (dense matrices only; "uniform" is part of no file name
    or hash, so those files stay valid).
    """

    shape: tuple[int, int]
    dtype: str = "float32"
    density: float | None = None
    seed: int = 0
    storage: str = "raw"
    chunks: tuple[int, int] | str | None = None
    compression: str | None = None
    shards: tuple[int, int] | None = None
    values: str = value_kinds.DEFAULT_KIND

    def __post_init__(self) -> None:
        try:
            shape = tuple(int(n) for n in self.shape)
        except (TypeError, ValueError):
            raise ValueError(f"shape must be two positive integers, got {self.shape!r}") from None
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape must be two positive integers (rows, cols), got {self.shape!r}")
        object.__setattr__(self, "shape", shape)
        dtype = np.dtype(self.dtype).name if _is_dtype_like(self.dtype) else str(self.dtype)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        object.__setattr__(self, "dtype", dtype)
        if self.density is not None:
            density = float(self.density)
            if not 0.0 <= density <= 1.0:
                raise ValueError(f"density must be in [0, 1] or None (dense), got {self.density!r}")
            object.__setattr__(self, "density", density)
        object.__setattr__(self, "seed", int(self.seed))
        if self.storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, got {self.storage!r}")
        if self.storage in SPARSE_STORAGES and self.density is None:
            raise ValueError(
                f"storage {self.storage!r} holds a sparse matrix: give a density "
                "(e.g. density=0.01), or use storage 'raw'/'hdf5' for a dense one"
            )
        if self.compression == "none":
            object.__setattr__(self, "compression", None)
        value_kinds.check_kind(self.values)
        if self.values != value_kinds.DEFAULT_KIND and self.density is not None:
            raise ValueError(f"values={self.values!r} applies to dense matrices only "
                             f"(this one has density {self.density})")
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {self.compression!r}")
        chunks = self.chunks
        if chunks is True:
            chunks = "auto"
        if chunks is not None and chunks != "auto":
            try:
                chunks = tuple(int(n) for n in chunks)
            except (TypeError, ValueError):
                raise ValueError(f"chunks must be None, 'auto' or (rows, cols), got {chunks!r}") from None
            if len(chunks) != 2 or min(chunks) < 1:
                raise ValueError(f"chunks must be two positive integers, got {self.chunks!r}")
        if (chunks is not None or self.compression is not None) and \
                self.storage not in CHUNKED_STORAGES:
            raise ValueError(f"chunks and compression apply to storage 'hdf5' only, or 'zarr' "
                             f"(storage is {self.storage!r})")
        if self.shards is not None:
            _check_shards(self, chunks)
        if self.compression is not None and chunks is None:
            chunks = "auto"  # HDF5 filters need a chunked layout; h5py picks the shape.
        object.__setattr__(self, "chunks", chunks)

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def is_sparse(self) -> bool:
        """True when the values have a density (the matrix is sparse, whatever its storage)."""
        return self.density is not None

    def values_key(self) -> dict:
        """What the values depend on: equal keys mean equal matrices."""
        key = {"shape": list(self.shape), "dtype": self.dtype, "density": self.density,
               "seed": self.seed, "generator_version": GENERATOR_VERSION}
        if self.values != value_kinds.DEFAULT_KIND:
            key["values"] = self.values
        return key

    def to_dict(self) -> dict:
        """JSON-safe description of the whole spec."""
        d = dataclasses.asdict(self)
        d["shape"] = list(self.shape)
        d["chunks"] = list(self.chunks) if isinstance(self.chunks, tuple) else self.chunks
        if self.shards is None:
            del d["shards"]  # unsharded specs keep the names (and files) they had before shards
        else:
            d["shards"] = list(self.shards)
        if self.values == value_kinds.DEFAULT_KIND:
            del d["values"]  # the key (file names, hashes, manifests) of uniform values is unchanged
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DatasetSpec:
        d = dict(d)
        if isinstance(d.get("chunks"), list):
            d["chunks"] = tuple(d["chunks"])
        if isinstance(d.get("shards"), list):
            d["shards"] = tuple(d["shards"])
        return cls(**d)

    @property
    def dense_bytes(self) -> int:
        """rows * cols * itemsize: the bytes of the matrix as a dense array."""
        return self.shape[0] * self.shape[1] * self.itemsize

    @property
    def problem(self) -> Problem:
        """The matrix of this spec with its HDF5 layout, before a storage is chosen."""
        return Problem(self.shape, self.dtype, self.density, self.seed, self.chunks,
                       self.compression, shards=self.shards, values=self.values)

    def with_storage(self, storage: str, chunks=None, compression=None) -> DatasetSpec:
        """The same values in another storage."""
        return dataclasses.replace(self, storage=storage, chunks=chunks, compression=compression,
                                   shards=None)


def _check_shards(spec: DatasetSpec, chunks) -> None:
    """Shards are zarr's, and hold whole chunks of an explicit chunk shape."""
    try:
        shards = tuple(int(n) for n in spec.shards)
    except (TypeError, ValueError):
        raise ValueError(f"shards must be None or (rows, cols), got {spec.shards!r}") from None
    if spec.storage != "zarr":
        raise ValueError(f"shards apply to storage 'zarr' only (storage is {spec.storage!r})")
    if len(shards) != 2 or min(shards) < 1 or not isinstance(chunks, tuple) \
            or shards[0] % chunks[0] or shards[1] % chunks[1]:
        raise ValueError(f"shards must be (rows, cols) multiples of explicit chunks {chunks!r}, "
                         f"got {spec.shards!r}")
    object.__setattr__(spec, "shards", shards)


@dataclasses.dataclass(frozen=True)
class Problem:
    """A matrix to multiply before its storage is chosen: its values (shape, dtype, density,
    seed, as in :class:`DatasetSpec`) and the layout it gets when it is stored in HDF5 or zarr
    (chunks, compression; shards in zarr only). Each strategy reads it from a storage of its
    own (``harness.measuring.strategies.Strategy.dataset_for``)."""

    shape: tuple[int, int]
    dtype: str = "float32"
    density: float | None = None
    seed: int = 0
    chunks: tuple[int, int] | str | None = None
    compression: str | None = None
    shards: tuple[int, int] | None = None
    values: str = value_kinds.DEFAULT_KIND

    def __post_init__(self) -> None:
        # DatasetSpec checks and normalizes every field (compression implies chunks="auto").
        spec = self.in_storage("zarr" if self.shards is not None else "hdf5")
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, getattr(spec, field.name))

    def storable_in(self, storage: str) -> bool:
        """False for a sparse storage and a matrix without a density."""
        return storage not in SPARSE_STORAGES or self.density is not None

    def in_storage(self, storage: str) -> DatasetSpec:
        """This matrix in ``storage``, with the chunked layout when ``storage`` has one."""
        hdf5 = storage in CHUNKED_STORAGES
        return DatasetSpec(self.shape, self.dtype, self.density, self.seed, storage,
                           self.chunks if hdf5 else None, self.compression if hdf5 else None,
                           shards=self.shards if storage == "zarr" else None,
                           values=self.values)


def parse_shape(text: str) -> tuple[int, int]:
    """'1000x100000' (or '1000,100000') -> (1000, 100000): rows x cols, both positive."""
    try:
        rows, cols = (int(n) for n in str(text).lower().replace(",", "x").split("x"))
    except ValueError:
        rows = cols = 0
    if rows < 1 or cols < 1:
        raise ValueError(f"shape must be ROWSxCOLS with positive sizes, e.g. 1000x100000 "
                         f"(rows x cols), got {text!r}")
    return rows, cols


def parse_chunks(text: str) -> tuple[int, int] | str | None:
    """HDF5 chunks from text: 'none' or 'contiguous' -> None, 'auto' -> "auto" (h5py's
    guess), '10x100000' -> (10, 100000)."""
    if str(text).lower() in ("none", "contiguous"):
        return None
    if str(text).lower() in ("auto", "true"):
        return "auto"
    try:
        return parse_shape(text)
    except ValueError:
        raise ValueError(f"chunks must be ROWSxCOLS, 'auto' or 'none', got {text!r}") from None


def _is_dtype_like(value) -> bool:
    try:
        np.dtype(value)
    except TypeError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Deterministic generation
# --------------------------------------------------------------------------------------------

def generation_block_rows(shape: tuple[int, int]) -> int:
    """Rows per generation block; a function of the shape only (so values do not depend on storage)."""
    return max(1, _GENERATION_BLOCK_ELEMENTS // shape[1])


def _block_bounds(shape: tuple[int, int]) -> list[tuple[int, int]]:
    step = generation_block_rows(shape)
    return [(r0, min(r0 + step, shape[0])) for r0 in range(0, shape[0], step)]


def block_nnz(spec: DatasetSpec) -> np.ndarray:
    """Number of nonzeros of every generation block (int64 array), drawn without generating values."""
    sizes = np.array([(r1 - r0) * spec.shape[1] for r0, r1 in _block_bounds(spec.shape)],
                     dtype=np.int64)
    if spec.density is None:
        return sizes
    rng = np.random.default_rng([spec.seed, _NNZ_STREAM])
    return rng.binomial(sizes, spec.density).astype(np.int64)


def nnz(spec: DatasetSpec) -> int:
    """Number of stored entries: nonzeros of a sparse spec, rows * cols of a dense one."""
    return int(block_nnz(spec).sum())


def _block_rng(spec: DatasetSpec, block_index: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, block_index])


def iter_sparse_blocks(spec: DatasetSpec) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Yield ``(row_start, row_stop, flat_positions, values)`` per block of a sparse spec.

    ``flat_positions`` (int64, sorted) index the block in C order; values are in (0, 1], so no
    stored entry is an explicit zero.
    """
    if spec.density is None:
        raise ValueError("iter_sparse_blocks needs a spec with a density")
    counts = block_nnz(spec)
    ncols = spec.shape[1]
    for index, (r0, r1) in enumerate(_block_bounds(spec.shape)):
        rng = _block_rng(spec, index)
        size = (r1 - r0) * ncols
        positions = rng.choice(size, size=int(counts[index]), replace=False, shuffle=False)
        positions = np.sort(positions.astype(np.int64))
        values = (1.0 - rng.random(positions.size, dtype=np.dtype(spec.dtype))).astype(spec.dtype)
        yield r0, r1, positions, values


def iter_dense_blocks(spec: DatasetSpec) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(row_start, block)`` with the dense values of every generation block."""
    ncols = spec.shape[1]
    if spec.density is None:
        for index, (r0, r1) in enumerate(_block_bounds(spec.shape)):
            rng = _block_rng(spec, index)
            yield r0, value_kinds.block(spec.values, rng, r0, r1, ncols, spec.dtype)
        return
    for r0, r1, positions, values in iter_sparse_blocks(spec):
        block = np.zeros((r1 - r0) * ncols, dtype=spec.dtype)
        block[positions] = values
        yield r0, block.reshape(r1 - r0, ncols)


def iter_csr_blocks(spec: DatasetSpec) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(row_start, row_counts, indices, data)`` per block of a sparse spec (CSR pieces)."""
    ncols = spec.shape[1]
    index_dtype = csr_index_dtype(spec)
    for r0, r1, positions, values in iter_sparse_blocks(spec):
        rows = positions // ncols
        counts = np.bincount(rows, minlength=r1 - r0).astype(index_dtype)
        yield r0, counts, (positions % ncols).astype(index_dtype), values


def dense_array(spec: DatasetSpec) -> np.ndarray:
    """The whole matrix in RAM (for tests and small specs)."""
    out = np.empty(spec.shape, dtype=spec.dtype)
    for r0, block in iter_dense_blocks(spec):
        out[r0:r0 + block.shape[0]] = block
    return out


def vector(ncols: int, dtype: str = "float32", seed: int = 1) -> np.ndarray:
    """The deterministic right-hand side ``x`` (values in [0, 1))."""
    return np.random.default_rng(seed).random(int(ncols), dtype=np.dtype(dtype))


def csr_index_dtype(spec: DatasetSpec) -> np.dtype:
    """int32 when rows, columns and nnz fit (as scipy chooses), else int64."""
    limit = np.iinfo(np.int32).max
    fits = max(spec.shape) <= limit and (spec.density is None or nnz(spec) <= limit)
    return np.dtype(np.int32 if fits else np.int64)


# --------------------------------------------------------------------------------------------
# Footprints
# --------------------------------------------------------------------------------------------

def nbytes_in_memory(spec: DatasetSpec) -> int:
    """Bytes the matrix occupies in RAM in its storage's natural form.

    Dense storages (ram, raw, hdf5): rows * cols * itemsize, whatever the density. Sparse
    storages (npz, csr-hdf5): the CSR arrays, data + indices + indptr.
    """
    if spec.storage in SPARSE_STORAGES:
        index_size = csr_index_dtype(spec).itemsize
        return nnz(spec) * (spec.itemsize + index_size) + (spec.shape[0] + 1) * index_size
    return spec.shape[0] * spec.shape[1] * spec.itemsize


def footprint_bytes(matrix) -> int:
    """Bytes held by an in-memory matrix: numpy array or any scipy.sparse format.

    Never a recursive ``sys.getsizeof``: the arrays' ``nbytes`` per format. For ``lil`` and
    ``dok``, whose entries are Python objects, the size of those objects is added.
    """
    if isinstance(matrix, np.ndarray):
        return int(matrix.nbytes)
    fmt = getattr(matrix, "format", None)
    if fmt in ("csr", "csc", "bsr"):
        return int(matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes)
    if fmt == "coo":
        return int(matrix.data.nbytes + sum(c.nbytes for c in matrix.coords))
    if fmt == "dia":
        return int(matrix.data.nbytes + matrix.offsets.nbytes)
    if fmt == "lil":
        total = matrix.rows.nbytes + matrix.data.nbytes
        for row_cols, row_vals in zip(matrix.rows, matrix.data):
            total += sys.getsizeof(row_cols) + sys.getsizeof(row_vals)
            total += sum(sys.getsizeof(c) for c in row_cols)
            total += sum(sys.getsizeof(v) for v in row_vals)
        return int(total)
    if fmt == "dok":
        total = sys.getsizeof(matrix._dict) if hasattr(matrix, "_dict") else sys.getsizeof(matrix)
        for key, value in matrix.items():
            total += sys.getsizeof(key) + sum(sys.getsizeof(k) for k in key) + sys.getsizeof(value)
        return int(total)
    raise TypeError(f"footprint_bytes: unsupported matrix type {type(matrix).__name__}")


def expected_file_bytes(spec: DatasetSpec) -> int:
    """Bytes the file of ``spec`` is expected to take (uncompressed upper bound for HDF5)."""
    if spec.storage in SPARSE_STORAGES:
        return nbytes_in_memory(spec) + 64 * 1024
    overhead = 64 * 1024 if spec.storage in CHUNKED_STORAGES else 0
    return spec.shape[0] * spec.shape[1] * spec.itemsize + overhead


def nbytes_on_disk(path_or_spec) -> int:
    """Bytes on disk: of a file (its size), or of a spec (its file if materialized, else the
    expected size, an upper bound for compressed HDF5)."""
    if isinstance(path_or_spec, DatasetSpec):
        path = dataset_path(path_or_spec)
        if _manifest_matches(path_or_spec, path):
            return filetree.size_and_mtime(path)[0]
        return expected_file_bytes(path_or_spec)
    path = Path(path_or_spec)
    if not path.exists():
        raise FileNotFoundError(f"nbytes_on_disk: no such file {path}")
    return filetree.size_and_mtime(path)[0]


def stored_nbytes(spec: DatasetSpec, path: str | os.PathLike) -> int:
    """Bytes a pass over the file of ``spec`` reads from storage: the HDF5 dataset's stored
    (compressed) chunks, else the whole file; for "ram", the matrix's bytes."""
    if spec.storage == "ram":
        return nbytes_in_memory(spec)
    if spec.storage == "hdf5":
        import h5py

        # A user's file (a FileLocation) names its own dataset; the harness's files hold "A".
        with h5py.File(os.fspath(path), "r") as f:
            return int(f[getattr(path, "dataset", None) or "A"].id.get_storage_size())
    return nbytes_on_disk(path)


# --------------------------------------------------------------------------------------------
# The on-disk cache
# --------------------------------------------------------------------------------------------

def default_root() -> Path:
    """$HARNESS_DATA_DIR, else ``$XDG_CACHE_HOME/harness/data`` (``~/.cache/harness/data``)."""
    env = os.environ.get("HARNESS_DATA_DIR")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "harness" / "data"


_EXTENSIONS = {"ram": "raw", "raw": "raw", "hdf5": "h5", "npz": "npz", "csr-hdf5": "csr.h5",
               "zarr": "zarr"}


def _file_spec(spec: DatasetSpec) -> DatasetSpec:
    # "ram" is loaded from the same flat binary file as "raw".
    return spec.with_storage("raw") if spec.storage == "ram" else spec


def dataset_path(spec: DatasetSpec, root: str | os.PathLike | None = None) -> Path:
    """Where ``materialize`` puts the file of ``spec`` (a readable name plus a hash of the spec)."""
    spec = _file_spec(spec)
    root = Path(root) if root is not None else default_root()
    digest = hashlib.sha256(
        json.dumps([spec.to_dict(), GENERATOR_VERSION], sort_keys=True).encode()
    ).hexdigest()[:12]
    density = "dense" if spec.density is None else f"d{spec.density:g}"
    name = f"{spec.dtype}-{spec.shape[0]}x{spec.shape[1]}-{density}-s{spec.seed}-{spec.storage}"
    if spec.chunks is not None:
        name += "-c" + ("auto" if spec.chunks == "auto" else "x".join(map(str, spec.chunks)))
    if spec.compression:
        name += f"-{spec.compression}"
    if spec.shards is not None:
        name += "-s" + "x".join(map(str, spec.shards))
    if spec.values != value_kinds.DEFAULT_KIND:
        name += f"-{spec.values}"
    return root / f"{name}-{digest}.{_EXTENSIONS[spec.storage]}"


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def _manifest_matches(spec: DatasetSpec, path: Path) -> bool:
    """True when ``path`` exists and its manifest says it is a complete file of ``spec``."""
    mpath = manifest_path(path)
    try:
        manifest = json.loads(mpath.read_text())
        size, mtime_ns = filetree.size_and_mtime(path)
    except (OSError, ValueError):
        return False
    return (
        manifest.get("spec") == _file_spec(spec).to_dict()
        and manifest.get("generator_version") == GENERATOR_VERSION
        and manifest.get("size_bytes") == size
        and manifest.get("mtime_ns") == mtime_ns
    )


def file_checksum(path: Path) -> str:
    """blake2b of the whole file, or of a directory's names and files (hex)."""
    return filetree.checksum(path)


def verify(spec: DatasetSpec, root: str | os.PathLike | None = None) -> bool:
    """Re-read the file of ``spec`` and compare it with its manifest's checksum."""
    path = dataset_path(spec, root)
    if not _manifest_matches(spec, path):
        return False
    return json.loads(manifest_path(path).read_text())["checksum"] == file_checksum(path)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a+") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


def materialize(spec: DatasetSpec, root: str | os.PathLike | None = None,
                verify_checksum: bool = False) -> Path:
    """Return the path of the file holding ``spec``, generating it first if needed.

    Idempotent and safe against concurrent callers (a file lock) and killed runs (data is
    written to a temporary name, fsynced, renamed into place, then sealed by a manifest; a file
    without a matching manifest is regenerated; temporary files that killed writers of any
    spec left in the directory are removed before the free space is checked). Raises
    :class:`InsufficientDiskSpaceError` before writing when free disk < expected size + 10%.
    ``verify_checksum``: re-read an existing file and regenerate it when it no longer matches
    its manifest's checksum (changed in place with its size and mtime kept).
    """
    path = dataset_path(spec, root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(
            f"cannot create the data directory {path.parent} ({exc.strerror}); "
            "set HARNESS_DATA_DIR or pass root= to a writable directory"
        ) from exc
    if _manifest_matches(spec, path) and not verify_checksum:
        return path
    with _file_lock(path):
        if _manifest_matches(spec, path) and (not verify_checksum or _checksum_matches(path)):
            return path  # another process may have finished it while we waited
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            filetree.remove(stale)
        remove_abandoned_temporaries(path.parent)
        manifest_path(path).unlink(missing_ok=True)
        filetree.remove(path)
        _check_free_disk(spec, path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            _WRITERS[_file_spec(spec).storage](spec, tmp)
            filetree.fsync(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise _disk_full_said(exc, tmp) from exc
        finally:
            filetree.remove(tmp)
        size, mtime_ns = filetree.size_and_mtime(path)
        manifest = {
            "spec": _file_spec(spec).to_dict(),
            "generator_version": GENERATOR_VERSION,
            "size_bytes": size,
            "mtime_ns": mtime_ns,
            "checksum": file_checksum(path),
            "checksum_algorithm": "blake2b-128",
        }
        mtmp = manifest_path(path).with_name(f".{manifest_path(path).name}.{os.getpid()}.tmp")
        mtmp.write_text(json.dumps(manifest, indent=1))
        _fsync(mtmp)
        os.replace(mtmp, manifest_path(path))
        _fsync(path.parent)
    return path


def _disk_full_said(exc: OSError, path: Path) -> OSError:
    """``exc``, or an ENOSPC error when a writer (h5py, numpy) failed without an errno on a
    disk with (almost) no free space left."""
    if exc.errno is not None:
        return exc
    try:
        full = shutil.disk_usage(path.parent).free < (1 << 20)
    except OSError:
        full = False
    if not full:
        return exc
    return OSError(errno.ENOSPC, f"No space left on device ({exc})", str(path))


def _checksum_matches(path: Path) -> bool:
    try:
        return json.loads(manifest_path(path).read_text())["checksum"] == file_checksum(path)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def remove_abandoned_temporaries(directory: Path) -> list[Path]:
    """Remove the temporary files (``.NAME.PID.tmp``) of writers that are gone: a file's
    writer holds the lock of NAME while it writes, so a temporary whose lock is free belongs
    to nobody (a killed ``materialize``). Only a temporary whose lock file already exists is
    touched (a writer creates the lock before its temporary): the data directory may be one
    the user chose, and a file of theirs that merely looks like ``.NAME.123.tmp`` is theirs.
    No lock file is ever created here. Returns the paths removed."""
    removed = []
    for temporary in directory.glob(".*.tmp"):
        parts = temporary.name[1:-len(".tmp")].rsplit(".", 1)
        if len(parts) != 2 or not parts[1].isdigit():
            continue
        owner = directory / parts[0]
        if owner.name.endswith(".manifest.json"):
            owner = owner.with_name(owner.name[:-len(".manifest.json")])
        lock_path = owner.with_name(owner.name + ".lock")
        try:
            lock_fd = os.open(lock_path, os.O_RDWR)  # never O_CREAT: no lock, not ours
        except OSError:  # FileNotFoundError above all: a file the harness did not write
            continue
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                filetree.remove(temporary)  # a file, or a zarr store's directory
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
        except BlockingIOError:
            continue  # being written right now
        except OSError:
            continue
        finally:
            os.close(lock_fd)
        removed.append(temporary)
    return removed


def _check_free_disk(spec: DatasetSpec, directory: Path) -> None:
    require_free_disk(expected_file_bytes(spec), directory, str(spec))


def require_free_disk(file_bytes: int, directory: Path, what: str,
                      where: str = "HARNESS_DATA_DIR") -> None:
    """Raise :class:`InsufficientDiskSpaceError`, before anything is written, when
    ``directory``'s disk lacks ``file_bytes`` (bytes) + 10% for ``what``; ``where`` names the
    setting that moves the data directory."""
    needed = int(file_bytes * (1 + _FREE_DISK_MARGIN))
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise InsufficientDiskSpaceError(
            f"not enough free disk in {directory} for {what}: needs {units.human_bytes(needed)} "
            f"(its size + 10%), has {units.human_bytes(free)} free; free some space or set "
            f"{where} to a larger disk"
        )


def _fsync(path: Path) -> None:
    """Flush a file's data, or a directory's entries (so a rename survives a crash), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _progress(spec: DatasetSpec, path: Path):
    from tqdm import tqdm

    total = expected_file_bytes(spec)
    return tqdm(total=total, unit="B", unit_scale=True, desc=f"generating {path.name}",
                disable=total <= _PROGRESS_BAR_BYTES, file=sys.stderr, leave=False)


def _write_raw(spec: DatasetSpec, tmp: Path) -> None:
    with open(tmp, "wb") as f, _progress(spec, tmp) as bar:
        for _, block in iter_dense_blocks(spec):
            f.write(np.ascontiguousarray(block).data)  # tofile loses the errno of a full disk
            bar.update(block.nbytes)


#: ``create_dataset`` keyword arguments for a compression name (hdf5plugin for blosc & co).
hdf5_filter_kwargs = codecs.hdf5_filter_kwargs


def _write_hdf5(spec: DatasetSpec, tmp: Path) -> None:
    import h5py

    chunks = True if spec.chunks == "auto" else spec.chunks
    if isinstance(chunks, tuple):  # a chunk larger than the matrix is clipped to it
        chunks = (min(chunks[0], spec.shape[0]), min(chunks[1], spec.shape[1]))
    row_bytes = spec.shape[1] * spec.itemsize
    # A cache holding two full chunk-rows, so partial chunks written by consecutive blocks
    # are not flushed (and recompressed) half-filled.
    cache_bytes = max(64 * 1024 * 1024, 2 * row_bytes * (chunks[0] if isinstance(chunks, tuple) else 64))
    with h5py.File(tmp, "w", rdcc_nbytes=cache_bytes, rdcc_nslots=1_000_003) as f, \
            _progress(spec, tmp) as bar:
        dset = f.create_dataset("A", shape=spec.shape, dtype=spec.dtype, chunks=chunks,
                                **hdf5_filter_kwargs(spec.compression))
        for r0, block in iter_dense_blocks(spec):
            dset[r0:r0 + block.shape[0]] = block
            bar.update(block.nbytes)
        f.attrs["harness_spec"] = json.dumps(spec.to_dict())


def _csr_arrays(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index_dtype = csr_index_dtype(spec)
    indptr = np.zeros(spec.shape[0] + 1, dtype=index_dtype)
    total = nnz(spec)
    indices = np.empty(total, dtype=index_dtype)
    data = np.empty(total, dtype=spec.dtype)
    at = 0
    for r0, counts, block_indices, block_data in iter_csr_blocks(spec):
        indptr[r0 + 1:r0 + 1 + counts.size] = counts
        indices[at:at + block_indices.size] = block_indices
        data[at:at + block_data.size] = block_data
        at += block_data.size
    np.cumsum(indptr, out=indptr)
    return data, indices, indptr


def csr_array(spec: DatasetSpec):
    """The sparse matrix of ``spec`` as a ``scipy.sparse.csr_array`` (in RAM)."""
    import scipy.sparse as sp

    data, indices, indptr = _csr_arrays(spec)
    return sp.csr_array((data, indices, indptr), shape=spec.shape)


def _write_npz(spec: DatasetSpec, tmp: Path) -> None:
    """``scipy.sparse.save_npz``'s layout of a csr_array (an uncompressed zip of ``.npy``
    members: indices, indptr, data, format, shape, _is_array), written block by block: only
    ``indptr`` (rows + 1 integers) and one generation block are in RAM, never the matrix. The
    blocks are generated twice (indices, then data), since a zip is written one member at a
    time."""
    import zipfile

    from numpy.lib import format as npy

    index_dtype = csr_index_dtype(spec)
    total = nnz(spec)
    indptr = np.zeros(spec.shape[0] + 1, dtype=index_dtype)

    def member(archive, name: str, dtype, shape: tuple, blocks) -> None:
        with archive.open(f"{name}.npy", "w", force_zip64=True) as out:
            npy.write_array_header_1_0(out, {"descr": npy.dtype_to_descr(np.dtype(dtype)),
                                             "fortran_order": False, "shape": shape})
            for block in blocks:
                out.write(np.ascontiguousarray(block, dtype=dtype).tobytes())

    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive, \
            _progress(spec, tmp) as bar:
        def indices():
            for r0, counts, block_indices, _ in iter_csr_blocks(spec):
                indptr[r0 + 1:r0 + 1 + counts.size] = counts
                bar.update(block_indices.nbytes)
                yield block_indices

        def data():
            for _, _, _, block_data in iter_csr_blocks(spec):
                bar.update(block_data.nbytes)
                yield block_data

        member(archive, "indices", index_dtype, (total,), indices())
        np.cumsum(indptr, out=indptr)
        member(archive, "indptr", index_dtype, (indptr.size,), [indptr])
        member(archive, "data", spec.dtype, (total,), data())
        for name, value in (("format", np.array(b"csr")), ("shape", np.array(spec.shape)),
                            ("_is_array", np.array(True))):
            with archive.open(f"{name}.npy", "w") as out:
                npy.write_array(out, value, allow_pickle=False)


def _write_csr_hdf5(spec: DatasetSpec, tmp: Path) -> None:
    import h5py

    index_dtype = csr_index_dtype(spec)
    total = nnz(spec)
    with h5py.File(tmp, "w") as f, _progress(spec, tmp) as bar:
        data = f.create_dataset("data", shape=(total,), dtype=spec.dtype)
        indices = f.create_dataset("indices", shape=(total,), dtype=index_dtype)
        indptr = np.zeros(spec.shape[0] + 1, dtype=index_dtype)
        at = 0
        for r0, counts, block_indices, block_data in iter_csr_blocks(spec):
            indptr[r0 + 1:r0 + 1 + counts.size] = counts
            if block_data.size:
                data[at:at + block_data.size] = block_data
                indices[at:at + block_data.size] = block_indices
            at += block_data.size
            bar.update(block_data.nbytes + block_indices.nbytes)
        np.cumsum(indptr, out=indptr)
        f.create_dataset("indptr", data=indptr)
        f.attrs["shape"] = spec.shape
        f.attrs["harness_spec"] = json.dumps(spec.to_dict())


def _write_zarr(spec: DatasetSpec, tmp: Path) -> None:
    from harness.measuring.storage import zarr as zarr_store

    with _progress(spec, tmp) as bar:
        zarr_store.write(spec, tmp, iter_dense_blocks(spec), bar.update)


_WRITERS = {"raw": _write_raw, "hdf5": _write_hdf5, "npz": _write_npz, "csr-hdf5": _write_csr_hdf5,
            "zarr": _write_zarr}
