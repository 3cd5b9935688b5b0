"""A dataset on disk is one file or one directory of files (a zarr store): the few file
operations the dataset cache needs, for either.

A directory's size is the sum of its files' sizes, its mtime the newest mtime of anything in
it (a rewritten chunk file changes it even though the directory's own mtime does not move),
and its checksum covers every file's relative name and bytes, in name order.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def files(path: Path) -> list[Path]:
    """The regular files ``path`` names: itself, or every file under a directory, by name."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def remove(path: Path) -> None:
    """Delete a file or a whole directory; nothing if it does not exist."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def size_and_mtime(path: Path) -> tuple[int, int]:
    """(bytes, mtime in ns) of a file, or of a directory's files (their sum; the newest mtime
    of the directory, its subdirectories and files). Raises OSError if ``path`` is missing."""
    path = Path(path)
    stat = path.stat()
    if not path.is_dir():
        return stat.st_size, stat.st_mtime_ns
    size, mtime = 0, stat.st_mtime_ns
    for entry in path.rglob("*"):
        entry_stat = entry.stat()
        mtime = max(mtime, entry_stat.st_mtime_ns)
        if entry.is_file():
            size += entry_stat.st_size
    return size, mtime


def checksum(path: Path) -> str:
    """blake2b (128 bits, hex) of a file's bytes, or of a directory's relative file names and
    bytes in name order."""
    path = Path(path)
    digest = hashlib.blake2b(digest_size=16)
    for file in files(path):
        if path.is_dir():
            digest.update(os.fsencode(file.relative_to(path).as_posix()) + b"\0")
        with open(file, "rb") as f:
            while chunk := f.read(8 * 1024 * 1024):
                digest.update(chunk)
    return digest.hexdigest()


def fsync(path: Path) -> None:
    """Flush a file's data, or a directory's files and entries, to disk (so that a rename of
    it survives a crash with its content)."""
    path = Path(path)
    targets = [path]
    if path.is_dir():
        targets = [*files(path), *sorted(p for p in path.rglob("*") if p.is_dir()), path]
    for target in targets:
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
