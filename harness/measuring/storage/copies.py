"""Copies of a user's matrix in other storages, written block by block into the data directory.

``convert(user, "hdf5", chunks=..., compression=...)`` reads the user's matrix
(``harness.measuring.storage.user.UserMatrix``) a block of rows at a time (never whole in RAM)
and writes it in one of ``TARGETS`` with a progress bar on stderr, as ``datasets.materialize``
writes its files: under a lock, to a temporary name that is fsynced and renamed into place, then
sealed by a manifest (the source's path, size and mtime; the copy's spec, size, mtime and
checksum). A copy without a matching manifest (a conversion killed half-way, a source changed
since) is never trusted: it is written again. The user's file is only read.

One writer per storage: ``raw`` (flat binary, C order), ``hdf5`` (dataset ``A``, with the
chunks and compression asked for), ``csr-hdf5`` (the CSR arrays as three HDF5 datasets), ``zarr``
(a format 3 store, a directory, written by ``zarr_store.write`` as a generated store is, with
the chunks and one of its codec names asked for).
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from harness.measuring.storage import datasets
from harness.measuring.storage import files as filetree
from harness.measuring.storage import zarr as zarr_store
from harness.measuring.storage.datasets import DatasetSpec, hdf5_filter_kwargs

# The cache's own lock and fsync: a copy is written exactly like a generated file.
from harness.measuring.storage.datasets import _file_lock as file_lock
from harness.measuring.storage.datasets import _fsync as fsync
from harness.measuring.strategies.base import FileLocation
from harness.measuring.storage.user import UserFileError, UserMatrix

#: Bumped whenever a writer's output changes, so older copies are written again.
CONVERTER_VERSION = 1
#: Rows a block aims at this many bytes of dense values (the memory a conversion needs).
BLOCK_BYTES = 16 * 1024 * 1024
#: Storages a copy can be written in.
TARGETS = ("hdf5", "raw", "csr-hdf5", "zarr")
#: Storages whose copy takes ``chunks`` and ``compression``.
LAYOUT_TARGETS = ("hdf5", "zarr")
_EXTENSIONS = {"raw": "raw", "hdf5": "h5", "csr-hdf5": "csr.h5", "zarr": "zarr"}
#: Elements per chunk of the growing CSR datasets (1 Mi: 4-8 MiB).
_CSR_CHUNK_ELEMENTS = 1 << 20


@dataclasses.dataclass(frozen=True)
class Converted:
    """A trusted copy: ``spec`` (its storage, layout and density) and ``location``."""

    spec: DatasetSpec
    location: FileLocation

    @property
    def label(self) -> str:
        """How tables name its storage: the storage and its layout, marked as a copy."""
        layout = ""
        if self.spec.storage in LAYOUT_TARGETS:
            chunks = self.spec.chunks
            if chunks is None and self.spec.storage == "zarr":
                chunks = zarr_store.chunk_shape(self.spec)  # its default: say what it is
            layout = " " + ("contiguous" if chunks is None else
                            "chunks=" + ("auto" if chunks == "auto" else "x".join(map(str, chunks))))
            layout += f" {self.spec.compression}" if self.spec.compression else ""
        return f"{self.spec.storage}{layout} (copy)"


def parse_targets(text: str) -> list[str]:
    """``'hdf5,raw'`` -> ['hdf5', 'raw']; a UserFileError for an unknown storage."""
    targets = [t.strip() for t in str(text).split(",") if t.strip()]
    for target in targets:
        if target not in TARGETS:
            raise UserFileError(f"--also-as {target}: unknown storage; choose among "
                                f"{', '.join(TARGETS)}")
    return list(dict.fromkeys(targets))


def check_layout(targets, compression) -> None:
    """A UserFileError when ``compression`` is not a name every layout target among
    ``targets`` takes (HDF5 filters and zarr codecs share only some names)."""
    if compression is None:
        return
    if "zarr" in targets and not zarr_store.accepts_compression(compression):
        raise UserFileError(f"--compression {compression}: {zarr_store.refusal(compression)}; "
                            "choose one of those, or copy to zarr in a separate run")
    if "hdf5" in targets and compression not in datasets.COMPRESSIONS:
        raise UserFileError(f"--compression {compression}: HDF5 copies take the filters "
                            f"{list(datasets.COMPRESSIONS[1:])}, not a zarr codec name; choose "
                            "one of those, or copy to hdf5 in a separate run")


def converted_path(user: UserMatrix, target: str, chunks=None, compression=None,
                   root: str | os.PathLike | None = None, *,
                   identity: dict | None = None) -> Path:
    """Where the copy of ``user`` in ``target`` goes: a readable name plus a hash of the source
    (path, dataset, size, mtime) and of the target (storage, chunks, compression).
    ``identity``: ``user.identity()`` if already computed (it stats every file of a store)."""
    root = Path(root) if root is not None else datasets.default_root()
    identity = user.identity() if identity is None else identity
    key = [identity, target, _chunks_text(chunks), compression, CONVERTER_VERSION]
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    stem = user.path.name.replace(".", "_")
    return root / f"copy-{stem}-{target}-{digest}.{_EXTENSIONS[target]}"


def _chunks_text(chunks) -> str | None:
    return "x".join(map(str, chunks)) if isinstance(chunks, tuple) else chunks


def trusted_copy(user: UserMatrix, target: str, chunks=None, compression=None,
                 root=None, *, identity: dict | None = None) -> Converted | None:
    """The copy of ``user`` in ``target`` if its manifest vouches for it, else None.
    ``identity``: ``user.identity()`` if already computed."""
    identity = user.identity() if identity is None else identity
    path = converted_path(user, target, chunks, compression, root, identity=identity)
    try:
        manifest = json.loads(datasets.manifest_path(path).read_text())
        size, mtime_ns = filetree.size_and_mtime(path)
    except (OSError, ValueError):
        return None
    if (manifest.get("source") != identity
            or manifest.get("converter_version") != CONVERTER_VERSION
            or manifest.get("size_bytes") != size
            or manifest.get("mtime_ns") != mtime_ns):
        return None
    return Converted(DatasetSpec.from_dict(manifest["spec"]), FileLocation(path))


def convert(user: UserMatrix, target: str, *, chunks=None, compression=None, root=None,
            progress: bool = True) -> Converted:
    """A trusted copy of ``user`` in storage ``target`` (written now unless one exists).

    ``chunks`` and ``compression`` apply to ``hdf5`` and ``zarr`` (as in ``DatasetSpec``; a zarr
    codec name for zarr). Raises ``datasets.InsufficientDiskSpaceError`` before writing when the
    data directory lacks room, and UserFileError for a target it cannot write.
    """
    parse_targets(target)
    if target not in LAYOUT_TARGETS:
        chunks = compression = None  # only HDF5 and zarr have a layout to choose
    check_layout([target], compression)
    spec = _target_spec(user, target, chunks, compression, density=None)
    identity = user.identity()  # once: it stats every file of a zarr store
    path = converted_path(user, target, chunks, compression, root, identity=identity)
    path.parent.mkdir(parents=True, exist_ok=True)
    found = trusted_copy(user, target, chunks, compression, root, identity=identity)
    if found is not None:
        return found
    with file_lock(path):
        found = trusted_copy(user, target, chunks, compression, root, identity=identity)
        if found is not None:
            return found
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            filetree.remove(stale)  # left by a conversion that was killed
        datasets.manifest_path(path).unlink(missing_ok=True)
        filetree.remove(path)
        _check_free_disk(user, target, path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with _progress_bar(user, path, progress) as bar:
                density = _WRITERS[target](user, spec, tmp, bar)
            filetree.fsync(tmp)
            os.replace(tmp, path)
        finally:
            filetree.remove(tmp)
        spec = _target_spec(user, target, chunks, compression, density)
        _seal(identity, spec, path)
    return Converted(spec, FileLocation(path))


def _target_spec(user: UserMatrix, target: str, chunks, compression, density) -> DatasetSpec:
    if target == "csr-hdf5":
        return DatasetSpec(user.spec.shape, user.spec.dtype, density=density if density is not None
                           else (user.spec.density or 0.0), storage="csr-hdf5")
    layout = target in LAYOUT_TARGETS
    return DatasetSpec(user.spec.shape, user.spec.dtype, storage=target,
                       chunks=chunks if layout else None,
                       compression=compression if layout else None)


def _seal(identity: dict, spec: DatasetSpec, path: Path) -> None:
    """Write ``path``'s manifest: ``identity`` (the source's ``UserMatrix.identity()``)."""
    size, mtime_ns = filetree.size_and_mtime(path)
    manifest = {
        "source": identity, "converter_version": CONVERTER_VERSION,
        "spec": spec.to_dict(), "size_bytes": size, "mtime_ns": mtime_ns,
        "checksum": datasets.file_checksum(path), "checksum_algorithm": "blake2b-128",
    }
    mpath = datasets.manifest_path(path)
    mtmp = mpath.with_name(f".{mpath.name}.{os.getpid()}.tmp")
    mtmp.write_text(json.dumps(manifest, indent=1))
    fsync(mtmp)
    os.replace(mtmp, mpath)
    fsync(path.parent)


def _expected_bytes(user: UserMatrix, target: str) -> int:
    """An upper bound of the copy's size (bytes): dense values, or CSR arrays (int64 indices;
    every entry stored when the source is dense)."""
    rows, cols = user.spec.shape
    if target != "csr-hdf5":
        return user.spec.dense_bytes + 64 * 1024
    entries = rows * cols if user.spec.density is None else round(user.spec.density * rows * cols)
    return entries * (user.spec.itemsize + 8) + (rows + 1) * 8 + 64 * 1024


def _check_free_disk(user: UserMatrix, target: str, directory: Path) -> None:
    datasets.require_free_disk(_expected_bytes(user, target), directory,
                               f"a {target} copy of {user.path.name}",
                               where="HARNESS_DATA_DIR (or --data-dir)")


def _progress_bar(user: UserMatrix, path: Path, enabled: bool):
    from tqdm import tqdm

    total = user.spec.dense_bytes
    return tqdm(total=total, unit="B", unit_scale=True, desc=f"converting to {path.name}",
                disable=not enabled or total <= 100_000_000, file=sys.stderr, leave=False)


# ----------------------------------------------------------------------------------- writers

def _write_raw(user: UserMatrix, spec: DatasetSpec, tmp: Path, bar) -> None:
    with open(tmp, "wb") as out:
        for _, block in user.row_blocks(BLOCK_BYTES):
            out.write(np.ascontiguousarray(block).data)  # tofile loses a full disk's errno
            bar.update(block.nbytes)


def _write_hdf5(user: UserMatrix, spec: DatasetSpec, tmp: Path, bar) -> None:
    import h5py

    chunks = True if spec.chunks == "auto" else spec.chunks
    if isinstance(chunks, tuple):
        chunks = (min(chunks[0], spec.shape[0]), min(chunks[1], spec.shape[1]))
    with h5py.File(tmp, "w", rdcc_nbytes=64 * 1024 * 1024) as f:
        dset = f.create_dataset("A", shape=spec.shape, dtype=spec.dtype, chunks=chunks,
                                **hdf5_filter_kwargs(spec.compression))
        # Whole chunk-rows per write, so no chunk is compressed half-filled and written again.
        step = user.block_rows(BLOCK_BYTES)
        if dset.chunks:
            step = max(dset.chunks[0], step // dset.chunks[0] * dset.chunks[0])
        for r0, block in user.row_blocks(step * spec.shape[1] * spec.itemsize):
            dset[r0:r0 + block.shape[0]] = block
            bar.update(block.nbytes)


def _write_csr_hdf5(user: UserMatrix, spec: DatasetSpec, tmp: Path, bar) -> float:
    """Returns the density the copy holds (its nonzeros / (rows * cols))."""
    import h5py

    rows, cols = spec.shape
    index_dtype = np.int32 if max(rows, cols) < 2**31 and rows * cols < 2**31 else np.int64
    indptr = np.zeros(rows + 1, dtype=np.int64)
    at = 0
    with h5py.File(tmp, "w") as f:
        grow = {"shape": (0,), "maxshape": (None,), "chunks": (_CSR_CHUNK_ELEMENTS,)}
        data = f.create_dataset("data", dtype=spec.dtype, **grow)
        indices = f.create_dataset("indices", dtype=index_dtype, **grow)
        for r0, block in user.csr_row_blocks(BLOCK_BYTES):
            block.sum_duplicates()
            n = block.nnz
            data.resize((at + n,))
            indices.resize((at + n,))
            if n:
                data[at:at + n] = block.data.astype(spec.dtype, copy=False)
                indices[at:at + n] = block.indices.astype(index_dtype, copy=False)
            indptr[r0 + 1:r0 + 1 + block.shape[0]] = at + block.indptr[1:]
            at += n
            bar.update(block.shape[0] * cols * spec.itemsize)
        f.create_dataset("indptr", data=indptr.astype(index_dtype))
        f.attrs["shape"] = spec.shape
    return at / (rows * cols)


def _write_zarr(user: UserMatrix, spec: DatasetSpec, tmp: Path, bar) -> None:
    # zarr_store re-blocks the rows into whole chunk- (shard-) rows: each chunk encoded once.
    zarr_store.write(spec, tmp, user.row_blocks(BLOCK_BYTES), bar.update)


_WRITERS = {"raw": _write_raw, "hdf5": _write_hdf5, "csr-hdf5": _write_csr_hdf5,
            "zarr": _write_zarr}
