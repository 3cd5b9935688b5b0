"""Copies of a user's matrix in other storages, written block by block into the data directory.

``convert(user, "hdf5", chunks=..., compression=...)`` reads the user's matrix
(``storage.user.UserMatrix``) a block of rows at a time (never whole in RAM) and writes it in
one of ``TARGETS`` through that format's writer (``storage.<format>``), with a progress bar on
stderr, into the sealed-file cache (``storage.cache``) as generated files are: under a lock, to
a temporary name that is fsynced and renamed into place, then sealed by a manifest (the
source's path, size and mtime; the copy's spec, size, mtime and checksum). A copy without a
matching manifest (a conversion killed half-way, a source changed since) is never trusted: it
is written again. The user's file is only read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from harness.measuring.matrix.generate import csr_index_dtype
from harness.measuring.matrix.spec import COMPRESSIONS, DatasetSpec
from harness.measuring.storage import cache, formats
from harness.measuring.storage import zarr as zarr_store
from harness.measuring.storage.base import BLOCK_BYTES, FileLocation, UserFileError
from harness.measuring.storage.datasets import PROGRESS_BAR_BYTES, default_root
from harness.measuring.storage.user import UserMatrix

#: Bumped whenever a writer's output changes, so older copies are written again.
CONVERTER_VERSION = 1
#: Storages a copy can be written in.
TARGETS = ("hdf5", "raw", "csr-hdf5", "zarr")
#: Storages whose copy takes ``chunks`` and ``compression``.
LAYOUT_TARGETS = ("hdf5", "zarr")


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
    if "hdf5" in targets and compression not in COMPRESSIONS:
        raise UserFileError(f"--compression {compression}: HDF5 copies take the filters "
                            f"{list(COMPRESSIONS[2:])}, not a zarr codec name; choose "
                            "one of those, or copy to hdf5 in a separate run")


def converted_path(user: UserMatrix, target: str, chunks=None, compression=None,
                   root: str | os.PathLike | None = None, *,
                   identity: dict | None = None) -> Path:
    """Where the copy of ``user`` in ``target`` goes: a readable name plus a hash of the source
    (path, dataset, size, mtime) and of the target (storage, chunks, compression).
    ``identity``: ``user.identity()`` if already computed (it stats every file of a store)."""
    root = Path(root) if root is not None else default_root()
    identity = user.identity() if identity is None else identity
    key = [identity, target, _chunks_text(chunks), compression, CONVERTER_VERSION]
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    stem = user.path.name.replace(".", "_")
    return root / f"copy-{stem}-{target}-{digest}.{formats.get(target).extension}"


def _chunks_text(chunks) -> str | None:
    return "x".join(map(str, chunks)) if isinstance(chunks, tuple) else chunks


def _key(identity: dict) -> dict:
    """What a copy is made from: its manifest must say the same."""
    return {"source": identity, "converter_version": CONVERTER_VERSION}


def trusted_copy(user: UserMatrix, target: str, chunks=None, compression=None,
                 root=None, *, identity: dict | None = None) -> Converted | None:
    """The copy of ``user`` in ``target`` if its manifest vouches for it, else None.
    ``identity``: ``user.identity()`` if already computed."""
    identity = user.identity() if identity is None else identity
    path = converted_path(user, target, chunks, compression, root, identity=identity)
    manifest = cache.trusted_manifest(path, _key(identity))
    if manifest is None:
        return None
    return Converted(DatasetSpec.from_dict(manifest["spec"]), FileLocation(path))


def convert(user: UserMatrix, target: str, *, chunks=None, compression=None, root=None,
            progress: bool = True, dtype: str | None = None) -> Converted:
    """A trusted copy of ``user`` in storage ``target`` (written now unless one exists).

    ``chunks`` and ``compression`` apply to ``hdf5`` and ``zarr`` (as in ``DatasetSpec``; a zarr
    codec name for zarr); ``dtype``: the copy's (float32 or float64; default the dtype the
    file is multiplied in). Raises ``cache.InsufficientDiskSpaceError`` before writing when the
    data directory lacks room, and UserFileError for a target it cannot write.
    """
    parse_targets(target)
    if target not in LAYOUT_TARGETS:
        chunks = compression = None  # only HDF5 and zarr have a layout to choose
    check_layout([target], compression)
    identity = user.identity()  # once: it stats every file of a zarr store
    if dtype is not None and dtype != user.spec.dtype:
        identity = {**identity, "copy_dtype": dtype}  # another dtype: another copy
    path = converted_path(user, target, chunks, compression, root, identity=identity)
    storage = formats.get(target)

    def write(tmp: Path) -> dict:
        spec = _target_spec(user, target, chunks, compression, dtype or user.spec.dtype)
        blocks = (lambda: user.csr_row_blocks(BLOCK_BYTES)) if storage.sparse else \
            (lambda: user.row_blocks(BLOCK_BYTES))
        entries = 0

        def counted():  # a sparse copy's density is what it holds
            nonlocal entries
            for r0, block in blocks():
                block.sum_duplicates()
                entries += block.nnz
                yield r0, block

        with _progress_bar(user, target, path, progress) as bar:
            storage.write(spec, tmp, counted if storage.sparse else blocks, bar.update)
        if storage.sparse:
            rows, cols = spec.shape
            spec = dataclasses.replace(spec, density=entries / (rows * cols))
        return {"spec": spec.to_dict()}

    manifest = cache.sealed(path, _key(identity), write,
                            expected_bytes=_expected_bytes(user, target, dtype),
                            what=f"a {target} copy of {user.path.name}",
                            where="HARNESS_DATA_DIR (or --data-dir)")
    return Converted(DatasetSpec.from_dict(manifest["spec"]), FileLocation(path))


def _target_spec(user: UserMatrix, target: str, chunks, compression, dtype: str) -> DatasetSpec:
    if target == "csr-hdf5":  # the density is the copy's, known once it is written
        return DatasetSpec(user.spec.shape, dtype, density=user.spec.density or 0.0,
                           storage="csr-hdf5")
    layout = target in LAYOUT_TARGETS
    return DatasetSpec(user.spec.shape, dtype, storage=target,
                       chunks=chunks if layout else None,
                       compression=compression if layout else None)


def _expected_bytes(user: UserMatrix, target: str, dtype: str | None = None) -> int:
    """An upper bound of the copy's size (bytes) in ``dtype`` (default the file's product
    dtype): dense values, or CSR arrays (every entry stored when the source is dense)."""
    rows, cols = user.spec.shape
    item = np.dtype(dtype or user.spec.dtype).itemsize
    if not formats.get(target).sparse:
        return rows * cols * item + 64 * 1024
    entries = rows * cols if user.spec.density is None else round(user.spec.density * rows * cols)
    index = csr_index_dtype(user.spec.shape, entries).itemsize
    return entries * (item + index) + (rows + 1) * index + 64 * 1024


def _progress_bar(user: UserMatrix, target: str, path: Path, enabled: bool):
    from tqdm import tqdm

    total = _expected_bytes(user, target)
    return tqdm(total=total, unit="B", unit_scale=True, desc=f"converting to {path.name}",
                disable=not enabled or total <= PROGRESS_BAR_BYTES, file=sys.stderr, leave=False)
