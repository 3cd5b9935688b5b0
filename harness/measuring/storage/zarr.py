"""zarr stores (zarr-python 3, format 3): chunk shape, codecs and sharding of a
``DatasetSpec(storage="zarr")``, the writer, and a user's store (format 2 or 3) opened read-only.

Codec names are the ones HDF5 shares (``matrix.spec.ZARR_COMPRESSIONS``), with the same settings:
``zstd`` plain zstd level 3; ``blosc-lz4`` / ``blosc-zstd`` blosc with byte shuffle, clevel 5;
``gzip-1`` / ``gzip-4`` deflate level 1 / 4. Other names are refused with the list.

The array is stored as ``<store>/A`` (one array node, like HDF5's dataset ``A``); chunk files
use zarr's default key encoding (``A/c/<row>/<col>``). Values come from the same generation
blocks as every storage, or from any ``(row, block)`` source (a user's matrix being copied);
they are re-blocked into whole chunk-rows (whole shard-rows when sharded), so that every chunk
is encoded once, never read back and rewritten.

A store the harness did not write (a user's, format 2 or 3) is opened read-only where its array
is: a path with a ``dataset`` (a ``FileLocation``) names the array's path in the store, ``""``
for an array at the root; its codecs get the nearest of the names above (``codec_name``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import ZARR_COMPRESSIONS, DatasetSpec, computed
from harness.measuring.storage import base
from harness.measuring.storage.base import FileLocation, UserFileError, damaged
from harness.measuring.storage.user_checks import check_matrix_shape, value_dtypes

#: The array's name inside the store.
ARRAY_NAME = "A"
#: Target bytes of one default chunk (full-width rows), as HDF5's "rows" layout.
DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024
#: Bytes of rows the writer gathers before it writes them (at least one chunk- or shard-row).
WRITE_BLOCK_BYTES = 64 * 1024 * 1024


def compressors(name: str | None) -> tuple:
    """zarr 3 compressor codecs for a codec name; ValueError naming the known ones."""
    from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

    table = {
        None: (), "none": (),
        "zstd": (ZstdCodec(level=3),),
        "blosc-lz4": (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),),
        "blosc-zstd": (BloscCodec(cname="zstd", clevel=5, shuffle="shuffle"),),
        "gzip-1": (GzipCodec(level=1),),
        "gzip-4": (GzipCodec(level=4),),
    }
    try:
        return table[name]
    except KeyError:
        raise ValueError(refusal(name)) from None


def accepts_compression(name: str | None) -> bool:
    return name in ZARR_COMPRESSIONS or name == "none"


def codec_refusal() -> str:
    """Why a zarr reader refuses a spec whose compression is not a zarr codec."""
    names = ["none" if name is None else name for name in ZARR_COMPRESSIONS]
    return f"its compression is not a zarr codec; zarr stores take {', '.join(names)}"


def refusal(name: str | None) -> str:
    return (f"zarr stores take the codecs {list(ZARR_COMPRESSIONS)}, not {name!r} "
            "(an HDF5-only filter)")


def chunk_shape(spec) -> tuple[int, int]:
    """The chunk shape of the store of ``spec`` (rows, cols), clipped to the matrix.

    (rows, cols): as given; "auto": h5py's guess for the same shape and dtype, so that an HDF5
    file and a zarr store of one spec have the same chunks; None: full-width rows of about
    ``DEFAULT_CHUNK_BYTES``.
    """
    rows, cols = spec.shape
    if spec.chunks == "auto":
        from h5py._hl.filters import guess_chunk

        return tuple(int(n) for n in guess_chunk(spec.shape, None, spec.itemsize))
    if spec.chunks is None:
        return (max(1, min(rows, DEFAULT_CHUNK_BYTES // (cols * spec.itemsize))), cols)
    return (min(spec.chunks[0], rows), min(spec.chunks[1], cols))


def chunk_bytes(spec) -> int:
    rows, cols = chunk_shape(spec)
    return rows * cols * spec.itemsize


def _write_rows(spec) -> int:
    """Rows the writer gathers per write: whole chunk- (or shard-) rows, about
    ``WRITE_BLOCK_BYTES``."""
    unit = spec.shards[0] if spec.shards is not None else chunk_shape(spec)[0]
    row_bytes = spec.shape[1] * spec.itemsize
    return min(spec.shape[0], max(1, WRITE_BLOCK_BYTES // (unit * row_bytes)) * unit)


#: Threads zarr reads and writes chunk files with (its ``threading.max_workers``, unless the
#: user set it): one per core of this class of machine. Each thread keeps the chunk buffers it
#: freed in its own malloc arena, so their number bounds the memory zarr holds (measured on the
#: 1000 x 100000 float32 store: zarr-blocked's anonymous peak 109 MiB with 4 threads, 94 MiB
#: with 2, at the same speed).
ZARR_THREADS = 2


def zarr_module():
    """``zarr``, its thread pool bounded to ``ZARR_THREADS`` before its first use."""
    import zarr

    if zarr.config.get("threading.max_workers", None) is None:
        zarr.config.set({"threading.max_workers": ZARR_THREADS})
    return zarr


def write(spec, directory: Path, blocks: Callable[[], Iterable[tuple[int, np.ndarray]]],
          advance: Callable[[int], object] = lambda n: None, entries=None) -> None:
    """Write the store of ``spec`` into ``directory`` from ``blocks()``, ``(row_start,
    block)`` pairs in row order; ``advance(nbytes)`` after every write (a progress bar)."""
    zarr = zarr_module()

    codecs = compressors(spec.compression)
    group = zarr.open_group(store=str(directory), mode="w", zarr_format=3)
    group.attrs["harness_spec"] = spec.to_dict()
    array = group.create_array(
        ARRAY_NAME, shape=spec.shape, dtype=spec.dtype, chunks=chunk_shape(spec),
        shards=spec.shards, compressors=codecs, filters=(), fill_value=0)
    step = _write_rows(spec)
    pending = np.empty((step, spec.shape[1]), dtype=spec.dtype)
    filled = start = 0
    for r0, block in blocks():
        at = 0
        while at < block.shape[0]:
            n = min(step - filled, block.shape[0] - at)
            pending[filled:filled + n] = block[at:at + n]
            filled, at = filled + n, at + n
            if filled == step or start + filled == spec.shape[0]:
                array[start:start + filled] = pending[:filled]
                advance(pending[:filled].nbytes)
                start, filled = start + filled, 0


def array_path(location) -> str:
    """The array's path inside the store: a location's ``dataset`` (``""``: the root), else
    ``ARRAY_NAME``."""
    dataset = location.dataset if isinstance(location, FileLocation) else None
    return ARRAY_NAME if dataset is None else dataset.strip("/")


def array_directory(location) -> Path:
    """The directory of the array's metadata and chunk files."""
    return Path(os.fspath(location)) / array_path(location)


def open_array(path):
    """The zarr array of a store written by :func:`write`, or of a user's store where a
    location's ``dataset`` says (any zarr format), opened read-only."""
    zarr = zarr_module()

    if not isinstance(path, FileLocation) or path.dataset is None:
        return zarr.open_array(store=os.fspath(path), path=ARRAY_NAME, mode="r", zarr_format=3)
    return zarr.open_array(store=os.fspath(path), path=array_path(path), mode="r")


def is_format_3(location) -> bool:
    """True when the array's metadata is zarr format 3 (``zarr.json``), False for format 2."""
    return (array_directory(location) / "zarr.json").exists()


def codec_name(array) -> str | None:
    """The harness's codec name for an array's compressor (None: uncompressed). A checksum
    compresses nothing; a compressor without a name here gets the slowest one's (``gzip-4``),
    so that pass-time estimates stay pessimistic."""
    names = []
    for codec in array.compressors:
        kind = type(codec).__name__.lower()
        if "crc32" in kind:
            continue
        if "blosc" in kind:
            cname = getattr(codec, "cname", "")
            cname = getattr(cname, "value", cname)  # zarr 3's enum, numcodecs' text
            names.append("blosc-zstd" if cname == "zstd" else "blosc-lz4")
        elif "zstd" in kind:
            names.append("zstd")
        elif kind in ("gzipcodec", "gzip", "zlib"):
            names.append("gzip-1" if getattr(codec, "level", 4) <= 1 else "gzip-4")
        else:
            names.append("gzip-4")
    return names[0] if names else None


def raw_chunks_refusal(array) -> str:
    """Why an array's chunk files are not its values as they are (no codec but the plain bytes
    one); "" when they are, so that they can be mapped (``chunk_layout`` says how)."""
    serializer = array.serializer
    if serializer is not None and type(serializer).__name__ != "BytesCodec":
        return f"its chunks are encoded ({type(serializer).__name__})"
    codecs = [type(c).__name__ for c in (*array.filters, *array.compressors)]
    if codecs:
        return f"its chunks are encoded ({', '.join(codecs)})"
    return ""


def chunk_layout(array) -> tuple[np.dtype, str]:
    """``(dtype, order)`` of the values in a raw chunk file: the dtype with the byte order the
    file uses, and "C" or "F" (zarr format 2's ``order``; format 3 stores C order)."""
    dtype = np.dtype(array.dtype)
    serializer = array.serializer
    if serializer is None:  # format 2: the layout lives in the metadata
        return dtype, array.metadata.order
    endian = getattr(getattr(serializer, "endian", None), "value", None)
    if endian is not None and dtype.itemsize > 1:
        dtype = dtype.newbyteorder("<" if endian == "little" else ">")
    return dtype, "C"


def chunk_file(array, location, coords: tuple[int, int]) -> Path:
    """The file of the chunk at chunk-grid ``coords`` (its key as the store encodes it)."""
    return array_directory(location) / array.metadata.encode_chunk_key(coords)



def row_blocks(spec: DatasetSpec, location, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """Blocks of whole chunk- (shard-) rows: each chunk is decoded once."""
    unit_shape = spec.shards or chunk_shape(spec)
    unit = unit_shape[0]
    rows = max(unit, rows // unit * unit)
    array = open_array(location)
    for r0 in range(0, spec.shape[0], rows):
        try:
            block = computed(np.asarray(array[r0:r0 + rows]), spec)
        except Exception as exc:  # noqa: BLE001 - any codec's or store's error is a damaged chunk
            raise damaged(location, array_path(location) or "/", lambda a, b: array[a:b], r0,
                          min(r0 + rows, spec.shape[0]), unit_shape, exc) from None
        yield r0, block


STORAGE = base.register(base.Storage(
    name="zarr", extension="zarr", write=write,
    stored_bytes=lambda spec, location: base.file_size(location), row_blocks=row_blocks))


# ------------------------------------------------------------------------------ users' stores

def open_user(path: Path, *, dataset=None, shape=None, dtype=None) -> tuple[DatasetSpec, FileLocation]:
    """A zarr store (format 3, or 2): its array at the root, the only 2-D array in its groups,
    or the one named as ``store.zarr:/group/array``; opened read-only (zarr's mode "r")."""
    zarr = zarr_module()
    try:
        node = zarr.open(store=os.fspath(path), mode="r")
    except (OSError, ValueError, KeyError, TypeError) as exc:  # damaged or foreign metadata
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
        raise UserFileError(f"{path} cannot be opened as a zarr store ({reason}); check "
                            "that it is a whole zarr store (format 2 or 3)") from None
    arrays = [] if isinstance(node, zarr.Array) else \
        ["/" + name for name, member in node.members(max_depth=None)
         if isinstance(member, zarr.Array) and member.ndim == 2]
    listed = ", ".join(arrays[:8]) or "none"
    if dataset is None and isinstance(node, zarr.Array):
        dataset, array = "", node
    elif dataset is None:
        if not arrays:
            raise UserFileError(f"{path} is a zarr store without a 2-D array; give the store "
                                "(or store.zarr:/path/to/array) that holds the matrix")
        if len(arrays) != 1:
            raise UserFileError(f"{path} holds {len(arrays)} 2-D arrays ({listed}); name one "
                                f"as {path.name}:/path/to/array")
        dataset, array = arrays[0], node[arrays[0].lstrip("/")]
    else:
        array = _member(zarr, node, dataset)
        if array is None:
            raise UserFileError(f"{path} has no array {dataset} (its 2-D arrays: {listed}); "
                                f"name an existing one as {path.name}:/path")
    where = f"{path.name}:{dataset}" if dataset else path.name
    rows, cols = check_matrix_shape(array.shape, where, "name a 2-D array")
    name, stored = value_dtypes(array.dtype, where, "store it as float32 or float64 "
                                "(zarr.create_array(..., dtype='float32') filled block by block)")
    shards = tuple(array.shards) if array.shards is not None else None
    spec = DatasetSpec((rows, cols), name, storage="zarr", chunks=tuple(array.chunks),
                       compression=codec_name(array), shards=shards, stored_dtype=stored)
    location = FileLocation(path, dataset=dataset.strip("/"))
    misplaced = misplaced_chunks_refusal(array, location)
    if misplaced:
        raise UserFileError(f"{where}: {misplaced}")
    return spec, location


#: Files of a zarr array's directory that are metadata, not chunks.
_METADATA_FILES = {".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"}
#: Chunk keys checked against the files present (a bound on the work for huge grids).
_KEYS_CHECKED = 100_000


def misplaced_chunks_refusal(array, location) -> str:
    """Why the array's chunk files are not where its metadata says ("" when some are, or when
    there are none: an array of fill values is what it says). zarr before 2.8 wrote nested
    keys (``0/0``) without a ``dimension_separator``: a reader then finds none of them and
    would multiply fill values."""
    directory = array_directory(location)
    present = {p.relative_to(directory).as_posix() for p in directory.rglob("*")
               if p.is_file() and p.name not in _METADATA_FILES}
    if not present:
        return ""
    unit = array.shards or array.chunks
    grid = [range(-(-size // step)) for size, step in zip(array.shape, unit)]
    for coords in itertools.islice(itertools.product(*grid), _KEYS_CHECKED):
        if array.metadata.encode_chunk_key(coords) in present:
            return ""
    expected = array.metadata.encode_chunk_key(tuple(0 for _ in array.shape))
    found = min(present)
    fix = ("its metadata has no dimension_separator, so readers look for '.'-separated keys: "
           'add "dimension_separator": "/" to its .zarray (zarr before 2.8 wrote such stores)'
           if "/" in found and "." in expected else "check that the store is whole")
    return (f"none of its {len(present)} chunk files is where its metadata puts them (chunk 0 "
            f"is expected at {expected!r}, files such as {found!r} are there); {fix}")


def _member(zarr, node, dataset: str):
    """The array at ``dataset`` in an opened store (a group or an array), None if there is
    none."""
    key = dataset.strip("/")
    if not key:
        return node if isinstance(node, zarr.Array) else None
    if isinstance(node, zarr.Array):
        return None
    try:
        member = node[key]
    except KeyError:
        return None
    return member if isinstance(member, zarr.Array) else None
