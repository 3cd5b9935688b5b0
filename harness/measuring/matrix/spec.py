"""What a matrix is, before and after its storage is chosen.

A :class:`Problem` is a matrix to multiply: its values (shape, dtype, density, seed and the kind
of values, ``harness.measuring.matrix.values``) and the chunked layout it gets in a storage that
has one. A :class:`DatasetSpec` is that matrix stored one way (``storage``, one of
``STORAGES``). The values depend only on ``(shape, dtype, density, seed, values)``, so the same
spec in any storage holds exactly the same matrix (``harness.measuring.matrix.generate``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from harness.measuring.matrix import values as value_kinds

#: Bumped whenever the generator's output changes, so old files are not trusted.
GENERATOR_VERSION = 1

#: Storages the harness only reads (users' files), dense or sparse as the file says.
READ_ONLY_STORAGES = ("mtx", "mat", "hb", "csc-hdf5", "netcdf3")
#: Storages a spec may name.
STORAGES = ("ram", "raw", "hdf5", "npz", "csr-hdf5", "zarr", *READ_ONLY_STORAGES)
#: Storages that hold a sparse (CSR) matrix; they need a density.
SPARSE_STORAGES = ("npz", "csr-hdf5")
#: Every name a dataset's ``compression`` may take in HDF5 (None: uncompressed); the settings
#: each stands for are ``harness.measuring.storage.codecs``'.
COMPRESSIONS = (None, "none", "gzip", "gzip-1", "gzip-4", "gzip-1-shuffle", "gzip-4-shuffle",
                "lzf", "blosc-lz4", "blosc-zstd", "zstd", "blosc", "blosc2", "lz4", "bitshuffle")
#: Codec names of zarr stores (``harness.measuring.storage.zarr`` maps them to zarr codecs; a
#: spec may name another compression, which zarr's writer and strategies refuse with the list).
ZARR_COMPRESSIONS = (None, "zstd", "blosc-lz4", "blosc-zstd", "gzip-1", "gzip-4")
#: Storages with a chunk shape and a compression.
CHUNKED_STORAGES = ("hdf5", "zarr")
DTYPES = ("float32", "float64")


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

    A user's file may store other values than it is multiplied in (``harness.measuring.storage.user``
    says so; the harness's own files never do): ``stored_dtype``, the file's numpy dtype
    (``"<i2"``, ``">f8"``, ``"<f2"``; None: ``dtype`` itself), converted block by block to
    ``dtype``; ``packing``, CF's ``(scale_factor, add_offset)`` applied after that conversion;
    ``order``, "F" for a column-major matrix (read by column blocks).
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
    stored_dtype: str | None = None
    packing: tuple[float, float] | None = None
    order: str = "C"

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
        if self.stored_dtype is not None:
            stored = np.dtype(self.stored_dtype)
            object.__setattr__(self, "stored_dtype",
                               None if stored == np.dtype(self.dtype) else stored.str)
        if self.packing is not None:
            object.__setattr__(self, "packing", tuple(float(v) for v in self.packing))
        if self.order not in ("C", "F"):
            raise ValueError(f"order must be 'C' or 'F', got {self.order!r}")

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def file_dtype(self) -> np.dtype:
        """The dtype of the values as the file holds them."""
        return np.dtype(self.stored_dtype or self.dtype)

    @property
    def converts(self) -> bool:
        """True when a strategy converts (or unpacks) each block before multiplying it."""
        return self.stored_dtype is not None or self.packing is not None

    @property
    def stored_dense_bytes(self) -> int:
        """rows * cols * the file's itemsize: the bytes of the values as stored, uncompressed."""
        return self.shape[0] * self.shape[1] * self.file_dtype.itemsize

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
        for name, default in (("stored_dtype", None), ("packing", None), ("order", "C")):
            if d[name] == default:
                del d[name]  # only users' files have them; generated specs keep their keys
        if self.packing is not None:
            d["packing"] = list(self.packing)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DatasetSpec:
        d = dict(d)
        if isinstance(d.get("chunks"), list):
            d["chunks"] = tuple(d["chunks"])
        if isinstance(d.get("shards"), list):
            d["shards"] = tuple(d["shards"])
        if isinstance(d.get("packing"), list):
            d["packing"] = tuple(d["packing"])
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
        """The same values in another storage (as ``dtype``, in row-major order)."""
        return dataclasses.replace(self, storage=storage, chunks=chunks, compression=compression,
                                   shards=None, stored_dtype=None, packing=None, order="C")


def computed(block: np.ndarray, spec: DatasetSpec, out: np.ndarray | None = None) -> np.ndarray:
    """A block of stored values as ``spec.dtype``: converted from the file's dtype and unpacked
    (CF: ``stored * scale_factor + add_offset``) where the file stores other values, into
    ``out`` when given (a reused buffer of the block's shape); else the block itself."""
    if not spec.converts:
        return block
    if out is None:
        out = np.empty(block.shape, dtype=spec.dtype)
    np.copyto(out, block, casting="unsafe")
    return unpacked(out, spec)


def unpacked(block: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    """``block`` (already of ``spec.dtype``, e.g. converted by HDF5 as it read it) unpacked in
    place where the file packs its values (CF's ``scale_factor`` and ``add_offset``)."""
    if spec.packing is not None:
        scale, offset = spec.packing
        if scale != 1.0:
            block *= np.asarray(scale, dtype=spec.dtype)
        if offset != 0.0:
            block += np.asarray(offset, dtype=spec.dtype)
    return block


def compute_dtype(stored: np.dtype, packing_dtype: np.dtype | None = None) -> str:
    """The dtype a matrix stored as ``stored`` is multiplied in: float32 for values float32
    holds exactly (float16, float32 in either byte order, integers of up to 16 bits), float64
    for the rest (float64, wider integers); a packed variable's unpacked dtype
    (``packing_dtype``, its ``scale_factor``'s) when that is float64."""
    if packing_dtype is not None and np.dtype(packing_dtype) == np.float64:
        return "float64"
    stored = np.dtype(stored)
    if stored.kind == "f" and stored.itemsize <= 4:
        return "float32"
    if stored.kind in "iu" and stored.itemsize <= 2:
        return "float32"
    return "float64"


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
        """False for a sparse storage and a matrix without a density, and for the storages the
        harness only reads."""
        if storage in READ_ONLY_STORAGES:
            return False
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
