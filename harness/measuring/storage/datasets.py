"""The harness's generated matrices on disk: one sealed file per spec in the data directory.

``materialize(spec)`` returns the path of the file holding ``spec`` (``matrix.spec``), writing
it first through its storage format's writer (``storage.<format>``) from the deterministic
generation blocks (``matrix.generate``), into the sealed-file cache (``storage.cache``): under a
lock, to a temporary name that is renamed into place, then sealed by a manifest (spec,
generator version, size, mtime, checksum). A file without a matching manifest is never
trusted: it is written again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from harness.measuring.matrix import values as value_kinds
from harness.measuring.matrix.generate import (
    csr_blocks,
    iter_dense_blocks,
    nbytes_in_memory,
    nnz,
    vector,  # noqa: F401 - the asv suite's setup calls datasets.vector (asv hashes that source)
)
from harness.measuring.matrix.spec import CHUNKED_STORAGES, GENERATOR_VERSION, DatasetSpec
from harness.measuring.storage import cache, files, formats

#: Files larger than this get a tqdm progress bar while they are generated.
PROGRESS_BAR_BYTES = 100_000_000


def default_root() -> Path:
    """$HARNESS_DATA_DIR, else ``$XDG_CACHE_HOME/harness/data`` (``~/.cache/harness/data``)."""
    env = os.environ.get(cache.DATA_DIR_SETTING)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "harness" / "data"


def file_spec(spec: DatasetSpec) -> DatasetSpec:
    """The spec of the file that holds ``spec``: "ram" is loaded from the same flat binary
    file as "raw"."""
    return spec.with_storage("raw") if spec.storage == "ram" else spec


def dataset_path(spec: DatasetSpec, root: str | os.PathLike | None = None) -> Path:
    """Where ``materialize`` puts the file of ``spec`` (a readable name plus a hash of the spec)."""
    spec = file_spec(spec)
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
    return root / f"{name}-{digest}.{formats.get(spec.storage).extension}"


def _key(spec: DatasetSpec) -> dict:
    """What a file of ``spec`` is made from: its manifest must say the same."""
    return {"spec": file_spec(spec).to_dict(), "generator_version": GENERATOR_VERSION}


def is_materialized(spec: DatasetSpec, root=None) -> bool:
    """True when the file of ``spec`` exists and its manifest vouches for it."""
    return cache.trusted_manifest(dataset_path(spec, root), _key(spec)) is not None


def verify(spec: DatasetSpec, root: str | os.PathLike | None = None) -> bool:
    """Re-read the file of ``spec`` and compare it with its manifest's checksum."""
    path = dataset_path(spec, root)
    return is_materialized(spec, root) and cache.checksum_matches(path)


def materialize(spec: DatasetSpec, root: str | os.PathLike | None = None,
                verify_checksum: bool = False) -> Path:
    """Return the path of the file holding ``spec``, generating it first if needed.

    Idempotent and safe against concurrent callers and killed runs (``storage.cache``).
    Raises ``cache.InsufficientDiskSpaceError`` before writing when free disk < expected size
    + 10%. ``verify_checksum``: re-read an existing file and regenerate it when it no longer
    matches its manifest's checksum.
    """
    path = dataset_path(spec, root)
    target = file_spec(spec)
    storage = formats.get(target.storage)

    def write(tmp: Path) -> dict:
        blocks = (lambda: csr_blocks(target)) if storage.sparse else \
            (lambda: iter_dense_blocks(target))
        with _progress(spec, tmp) as bar:
            storage.write(target, tmp, blocks, bar.update,
                          entries=nnz(target) if storage.sparse else None)
        return {}

    cache.sealed(path, _key(spec), write, expected_bytes=expected_file_bytes(spec),
                 what=str(spec), verify_checksum=verify_checksum)
    return path


def _progress(spec: DatasetSpec, path: Path):
    from tqdm import tqdm

    total = expected_file_bytes(spec)
    return tqdm(total=total, unit="B", unit_scale=True, desc=f"generating {path.name}",
                disable=total <= PROGRESS_BAR_BYTES, file=sys.stderr, leave=False)


def expected_file_bytes(spec: DatasetSpec) -> int:
    """Bytes the file of ``spec`` is expected to take (uncompressed upper bound for HDF5)."""
    if formats.get(file_spec(spec).storage).sparse:
        return nbytes_in_memory(spec) + 64 * 1024
    overhead = 64 * 1024 if spec.storage in CHUNKED_STORAGES else 0
    return spec.dense_bytes + overhead


def nbytes_on_disk(path_or_spec) -> int:
    """Bytes on disk: of a file (its size), or of a spec (its file if materialized, else the
    expected size, an upper bound for compressed HDF5)."""
    if isinstance(path_or_spec, DatasetSpec):
        if is_materialized(path_or_spec):
            return files.size_and_mtime(dataset_path(path_or_spec))[0]
        return expected_file_bytes(path_or_spec)
    path = Path(path_or_spec)
    if not path.exists():
        raise FileNotFoundError(f"nbytes_on_disk: no such file {path}")
    return files.size_and_mtime(path)[0]


def stored_nbytes(spec: DatasetSpec, location) -> int:
    """Bytes a pass over the matrix of ``spec`` at ``location`` reads from storage: the HDF5
    dataset's stored (compressed) chunks, else the whole file; for "ram", the matrix's bytes."""
    if spec.storage == "ram":
        return nbytes_in_memory(spec)
    return formats.get(spec.storage).stored_bytes(spec, location)
