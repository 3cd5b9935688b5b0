"""The one sealed-file cache: every file the harness writes into its data directory.

A file (or a zarr store's directory) is written once, under a lock, to a temporary name
(``.NAME.PID.tmp``) that is fsynced and renamed into place, then sealed by a manifest
(``NAME.manifest.json``: the caller's key, the file's size, mtime and checksum). A file whose
manifest does not match its key, size and mtime is never trusted: it is written again. Before
writing, the temporaries that killed writers left are removed and the free disk is checked
(the expected size + ``fit.FREE_DISK_MARGIN``); a writer that fails on a full disk says "No space left on device"
even where its library lost the errno. Generated datasets (``datasets``) and copies of a
user's matrix (``copies``) both come through :func:`sealed`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from harness import units
from harness.measuring import fit
from harness.measuring.storage import files

#: Where a user moves the data directory (named in refusals).
DATA_DIR_SETTING = "HARNESS_DATA_DIR"


class InsufficientDiskSpaceError(OSError):
    """Raised before writing when the data directory lacks size + 10% of free space."""


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def trusted_manifest(path: Path, key: dict) -> dict | None:
    """``path``'s manifest when it holds every field of ``key`` with the same value and the
    file's current size and mtime, else None."""
    try:
        manifest = json.loads(manifest_path(path).read_text())
        size, mtime_ns = files.size_and_mtime(path)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    if any(manifest.get(name) != value for name, value in key.items()):
        return None
    if manifest.get("size_bytes") != size or manifest.get("mtime_ns") != mtime_ns:
        return None
    return manifest


def checksum_matches(path: Path) -> bool:
    """True when ``path``'s bytes still hash to its manifest's checksum."""
    try:
        return json.loads(manifest_path(path).read_text())["checksum"] == files.checksum(path)
    except (OSError, ValueError, KeyError, TypeError):
        return False


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``NAME.lock`` beside ``path`` (created if missing)."""
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a+") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


def sealed(path: Path, key: dict, write: Callable[[Path], dict], *, expected_bytes: int,
           what: str, where: str = DATA_DIR_SETTING, verify_checksum: bool = False) -> dict:
    """The manifest of a trusted ``path``, writing it first if needed.

    ``key``: manifest fields a trusted file must have (what it was made from); ``write(tmp)``
    writes the file (or directory) at ``tmp`` and returns more fields for its manifest.
    ``expected_bytes``: an upper bound of its size, checked against the free disk (with
    ``what`` and ``where``, the setting that moves the directory, named in the refusal).
    ``verify_checksum``: re-read an existing file and write it again when its bytes no longer
    match the manifest's checksum (changed in place with its size and mtime kept).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create the data directory {path.parent} ({exc.strerror}); set "
                      f"{where} or pass root= to a writable directory") from exc
    found = trusted_manifest(path, key)
    if found is not None and not verify_checksum:
        return found
    with file_lock(path):
        found = trusted_manifest(path, key)
        if found is not None and (not verify_checksum or checksum_matches(path)):
            return found  # another process may have finished it while we waited
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            files.remove(stale)
        remove_abandoned_temporaries(path.parent)
        manifest_path(path).unlink(missing_ok=True)
        files.remove(path)
        require_free_disk(expected_bytes, path.parent, what, where)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            extra = write(tmp)
            files.fsync(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise disk_full_said(exc, tmp) from exc
        finally:
            files.remove(tmp)
        size, mtime_ns = files.size_and_mtime(path)
        manifest = {**key, **(extra or {}), "size_bytes": size, "mtime_ns": mtime_ns,
                    "checksum": files.checksum(path), "checksum_algorithm": "blake2b-128"}
        mpath = manifest_path(path)
        mtmp = mpath.with_name(f".{mpath.name}.{os.getpid()}.tmp")
        mtmp.write_text(json.dumps(manifest, indent=1))
        files.fsync(mtmp)
        os.replace(mtmp, mpath)
        files.fsync(path.parent)
    return manifest


def disk_full_said(exc: OSError, path: Path) -> OSError:
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


def remove_abandoned_temporaries(directory: Path) -> list[Path]:
    """Remove the temporary files (``.NAME.PID.tmp``) of writers that are gone: a file's
    writer holds the lock of NAME while it writes, so a temporary whose lock is free belongs
    to nobody (a killed writer). Only a temporary whose lock file already exists is touched (a
    writer creates the lock before its temporary): the data directory may be one the user
    chose, and a file of theirs that merely looks like ``.NAME.123.tmp`` is theirs. No lock
    file is ever created here. Returns the paths removed."""
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
                files.remove(temporary)  # a file, or a zarr store's directory
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


def require_free_disk(file_bytes: int, directory: Path, what: str,
                      where: str = DATA_DIR_SETTING) -> None:
    """Raise :class:`InsufficientDiskSpaceError`, before anything is written, when
    ``directory``'s disk lacks ``file_bytes`` (bytes) + 10% for ``what``; ``where`` names the
    setting that moves the data directory."""
    needed = fit.with_disk_margin(file_bytes)
    free = fit.free_disk_bytes(directory)
    if free < needed:
        raise InsufficientDiskSpaceError(
            f"not enough free disk in {directory} for {what}: needs {units.human_bytes(needed)} "
            f"(its size + 10%), has {units.human_bytes(free)} free; free some space or set "
            f"{where} to a larger disk")
