"""A dense matrix in one HDF5 dataset (h5py): the harness's files hold it as dataset ``A``
(contiguous, or chunked with one of ``harness.measuring.storage.codecs``' filters); a user's
file holds it wherever its path says (``file.h5:/group/dataset``).

Every file is opened with the ``hdf5plugin`` filters registered, so a dataset written with a
plugin's filter is read with it, and read-only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.measuring.matrix.spec import COMPRESSIONS, DatasetSpec, unpacked
from harness.measuring.storage import base, codecs
from harness.measuring.storage.base import FileLocation, UserFileError, damaged
from harness.measuring.storage.user_checks import (
    check_compressed_structure,
    check_matrix_shape,
    value_dtypes,
)
from harness.units import MiB

#: The dataset's name in the harness's files.
DATASET_NAME = "A"
#: HDF5 filter ids -> the harness's compression names (hdf5plugin's registered ids).
_COMPRESSION_NAMES = {codecs.DEFLATE: "gzip", codecs.LZF: "lzf", codecs.BLOSC: "blosc",
                      codecs.BLOSC2: "blosc2", codecs.LZ4: "lz4", codecs.ZSTD: "zstd",
                      codecs.BITSHUFFLE: "bitshuffle"}
#: Filters that do not compress (shuffle, checksums, n-bit, scale-offset).
_NON_COMPRESSING_FILTERS = {codecs.SHUFFLE, codecs.FLETCHER32, codecs.NBIT, codecs.SCALEOFFSET}
#: The writer's chunk cache holds at least this much (bytes), and two chunk-rows.
WRITE_CACHE_BYTES = 64 * MiB


def open_file(location, chunk_cache_bytes: int | None = None):
    """``h5py.File`` opened read-only with ``rdcc_nbytes = chunk_cache_bytes`` (None: the
    library default), the plugins' filters registered."""
    import h5py

    codecs.register_hdf5_filters()
    kwargs = {} if chunk_cache_bytes is None else {"rdcc_nbytes": chunk_cache_bytes}
    return h5py.File(location, "r", **kwargs)


def dataset_of(f, location):
    """The matrix's dataset in an opened file: the location's, else ``DATASET_NAME``."""
    return f[base.dataset_name(location, DATASET_NAME)]


def stored_chunk_shape(spec: DatasetSpec) -> tuple[int, int] | None:
    """The chunk shape the file of ``spec`` has (h5py's guess for "auto"), None if contiguous."""
    if spec.chunks is None:
        return None
    if spec.chunks == "auto":
        from h5py._hl.filters import guess_chunk

        return tuple(guess_chunk(spec.shape, None, spec.itemsize))
    return (min(spec.chunks[0], spec.shape[0]), min(spec.chunks[1], spec.shape[1]))


def write(spec: DatasetSpec, path: Path, blocks, advance=lambda n: None, entries=None) -> None:
    """Dataset ``A`` with the spec's chunks and compression. The chunk cache holds two
    chunk-rows, so a chunk that two blocks share is compressed once, when it is whole, never
    flushed half-filled and written again."""
    import h5py

    chunks = True if spec.chunks == "auto" else spec.chunks
    if isinstance(chunks, tuple):  # a chunk larger than the matrix is clipped to it
        chunks = (min(chunks[0], spec.shape[0]), min(chunks[1], spec.shape[1]))
    row_bytes = spec.shape[1] * spec.itemsize
    cache_bytes = max(WRITE_CACHE_BYTES,
                      2 * row_bytes * (chunks[0] if isinstance(chunks, tuple) else 64))
    with h5py.File(path, "w", rdcc_nbytes=cache_bytes, rdcc_nslots=1_000_003) as f:
        dset = f.create_dataset(DATASET_NAME, shape=spec.shape, dtype=spec.dtype, chunks=chunks,
                                **codecs.hdf5_filter_kwargs(spec.compression))
        for r0, block in blocks():
            dset[r0:r0 + block.shape[0]] = block
            advance(block.nbytes)
        f.attrs["harness_spec"] = json.dumps(spec.to_dict())


def column_blocks(spec: DatasetSpec, location, cols: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(first column, A[:, c0:c0 + cols])`` of a column-major dataset (MATLAB v7.3: the
    dataset holds ``Aᵀ``, so columns of A are its rows), as ``spec.dtype``."""
    nrows, ncols = spec.shape
    with open_file(location) as f:
        dset = dataset_of(f, location)
        for c0 in range(0, ncols, cols):
            block = np.empty((min(cols, ncols - c0), nrows), dtype=spec.dtype)
            dset.read_direct(block, np.s_[c0:c0 + block.shape[0]])
            yield c0, unpacked(block, spec).T


def row_blocks(spec: DatasetSpec, location, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """Blocks of whole chunk-rows (each chunk read and decoded once), ``read_direct``, as
    ``spec.dtype`` (a dataset of other values converted by HDF5, then unpacked)."""
    nrows, ncols = spec.shape
    if spec.order == "F":  # rows of A are columns of the dataset: gathered, then transposed
        with open_file(location) as f:
            dset = dataset_of(f, location)
            for r0 in range(0, nrows, rows):
                block = np.empty((ncols, min(rows, nrows - r0)), dtype=spec.dtype)
                dset.read_direct(block, np.s_[:, r0:r0 + block.shape[1]])
                yield r0, np.ascontiguousarray(unpacked(block, spec).T)
        return
    chunks = stored_chunk_shape(spec)
    if chunks:
        rows = max(chunks[0], rows // chunks[0] * chunks[0])
    with open_file(location) as f:
        dset = dataset_of(f, location)
        for r0 in range(0, nrows, rows):
            block = np.empty((min(rows, nrows - r0), ncols), dtype=spec.dtype)
            try:
                dset.read_direct(block, np.s_[r0:r0 + block.shape[0]])
            except OSError as exc:  # a chunk HDF5 cannot read or decode
                raise damaged(location, dset.name, lambda a, b: dset[a:b], r0,
                              r0 + block.shape[0], chunks, exc) from None
            yield r0, unpacked(block, spec)  # HDF5 converted the values as it read them


def stored_bytes(spec: DatasetSpec, location) -> int:
    """The dataset's stored (compressed) bytes."""
    with open_file(location) as f:
        return int(dataset_of(f, location).id.get_storage_size())


def flat_offset(spec: DatasetSpec, location) -> int | None:
    """The file offset of a contiguous, unfiltered dataset's values (None otherwise)."""
    with open_file(location) as f:
        offset = dataset_of(f, location).id.get_offset()
    return None if offset is None else int(offset)


STORAGE = base.register(base.Storage(
    name="hdf5", extension="h5", write=write, stored_bytes=stored_bytes, row_blocks=row_blocks,
    flat_offset=flat_offset))


# ------------------------------------------------------------------------------ users' files

def open_user(path: Path, *, dataset=None, shape=None, dtype=None) -> tuple[DatasetSpec, FileLocation]:
    """One dataset of an HDF5 file (``file.h5:/group/dataset``; the only 2-D dataset when the
    path is left out), opened read-only."""
    import h5py

    try:
        f = open_file(path)
    except OSError as exc:
        raise UserFileError(f"{path} cannot be opened as HDF5 ({exc}); check that the file "
                            "is whole and readable") from None
    with f:
        candidates = matrix_datasets(f)
        if dataset is None:
            if len(candidates) != 1:
                listed = ", ".join(candidates[:8]) or "none"
                raise UserFileError(
                    f"{path} holds {len(candidates)} 2-D datasets ({listed}); name one as "
                    f"{path.name}:/path/to/dataset")
            dataset = candidates[0]
        node = f.get(dataset)
        if node is None:
            listed = ", ".join(candidates[:8]) or "none"
            raise UserFileError(f"{path} has no dataset {dataset} (its 2-D datasets: "
                                f"{listed}); name an existing one as {path.name}:/path")
        if not isinstance(node, h5py.Dataset):
            layout = sparse_group_layout(node)
            if layout is None:
                raise UserFileError(f"{path}:{dataset} is a group, not a dataset nor a sparse "
                                    "matrix (data, indices, indptr); name a dataset in it as "
                                    f"{path.name}:{dataset.rstrip('/')}/name")
            return open_sparse_group(path, node, *layout)
        where = f"{path.name}:{dataset}"
        rows, cols = check_matrix_shape(node.shape, where, "name a 2-D dataset")
        fix = "store it as float32 or float64 (dset.astype('float32') into a new dataset)"
        try:
            stored = node.dtype
        except (TypeError, ValueError) as exc:  # a 128-bit or custom float numpy cannot hold
            raise UserFileError(f"{where} holds values numpy cannot represent ({exc}); {fix}") \
                from None
        packing, packing_dtype = cf_packing(node)
        name, stored = value_dtypes(stored, where, fix, packing_dtype)
        chunks = tuple(node.chunks) if node.chunks else None
        spec = DatasetSpec((rows, cols), name, storage="hdf5", chunks=chunks,
                           compression=compression_of(node), stored_dtype=stored,
                           packing=packing)
        return spec, FileLocation(path, dataset=node.name)


def cf_packing(node) -> tuple[tuple[float, float] | None, np.dtype | None]:
    """``((scale_factor, add_offset), their dtype)`` of a CF-packed variable (a netCDF-4
    file's integers that stand for ``stored * scale_factor + add_offset``), else
    ``(None, None)``. ``_FillValue`` entries are multiplied as the numbers they are."""
    attrs = node.attrs
    if "scale_factor" not in attrs and "add_offset" not in attrs:
        return None, None
    scale = np.asarray(attrs.get("scale_factor", 1.0)).reshape(-1)[:1]
    offset = np.asarray(attrs.get("add_offset", 0.0)).reshape(-1)[:1]
    if scale.size != 1 or offset.size != 1 or scale.dtype.kind not in "iuf" \
            or offset.dtype.kind not in "iuf":
        return None, None
    kind = np.result_type(scale.dtype, offset.dtype)
    return (float(scale[0]), float(offset[0])), (kind if kind.kind == "f" else None)


def matrix_datasets(f) -> list[str]:
    """Paths of every 2-D dataset and every sparse-matrix group in an opened file."""
    import h5py

    found = ["/"] if sparse_group_layout(f) else []

    def visit(name, node):
        if isinstance(node, h5py.Dataset):
            if node.ndim == 2 and not _in_sparse_group(node):
                found.append("/" + name)
        elif sparse_group_layout(node):
            found.append("/" + name)

    f.visititems(visit)
    return found


def _in_sparse_group(node) -> bool:
    return sparse_group_layout(node.parent) is not None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def sparse_group_layout(node) -> tuple[str, tuple[int, int]] | None:
    """``("csr" | "csc", shape)`` of a group that holds a compressed sparse matrix as others
    write it, else None: AnnData (``encoding-type`` ``csr_matrix`` / ``csc_matrix``, a ``shape``
    attribute), 10x Genomics (a ``shape`` dataset; features x barcodes, CSC), the harness's own
    csr-hdf5 files (a ``shape`` attribute, CSR)."""
    import h5py

    if not isinstance(node, h5py.Group) or not all(
            isinstance(node.get(k), h5py.Dataset) for k in ("data", "indices", "indptr")):
        return None
    encoding = _text(node.attrs.get("encoding-type", ""))
    if "shape" in node.attrs:
        shape = tuple(int(n) for n in node.attrs["shape"])
    elif isinstance(node.get("shape"), h5py.Dataset):
        shape = tuple(int(n) for n in node["shape"][...])
    else:
        return None
    if len(shape) != 2:
        return None
    majors = node["indptr"].shape[0] - 1
    if encoding == "csc_matrix" or (not encoding and majors == shape[1] != shape[0]):
        return "csc", shape
    if encoding in ("csr_matrix", "") and majors == shape[0]:
        return "csr", shape
    return None


def open_sparse_group(path: Path, group, kind: str, shape) -> tuple[DatasetSpec, FileLocation]:
    """A sparse group, read where it lies: CSR by the harness's csr-hdf5 readers, CSC loaded
    whole by the in-RAM ones (its rows are spread over every column). Its structure is checked
    first (indptr from 0, non-decreasing, indices within the shape), the indices a part at a
    time."""
    where = f"{path.name}:{group.name}"
    rows, cols = check_matrix_shape(shape, where, "name a 2-D sparse matrix")
    name, stored = value_dtypes(group["data"].dtype, where, "store its data as float32 or float64")
    indptr = group["indptr"][...]
    indices = group["indices"]
    step = 1 << 22
    check_compressed_structure(
        where, indptr, (indices[i:i + step] for i in range(0, indices.shape[0], step)),
        indices.shape[0], group["data"].shape[0], rows if kind == "csr" else cols,
        cols if kind == "csr" else rows)
    density = indices.shape[0] / (rows * cols)
    storage = "csr-hdf5" if kind == "csr" else "csc-hdf5"
    return (DatasetSpec((rows, cols), name, density=density, storage=storage,
                        stored_dtype=stored), FileLocation(path, dataset=group.name))


def compression_of(dset) -> str | None:
    """The harness's name for the dataset's compression filter (None: uncompressed)."""
    dcpl = dset.id.get_create_plist()
    names = []
    for index in range(dcpl.get_nfilters()):
        filter_id = dcpl.get_filter(index)[0]
        if filter_id in _NON_COMPRESSING_FILTERS:
            continue
        # An unknown codec: the slowest known one keeps the pass-time estimates pessimistic.
        names.append(_COMPRESSION_NAMES.get(filter_id, "gzip"))
    compression = names[0] if names else None
    return compression if compression in COMPRESSIONS else "gzip"
