"""A throwaway project: calls whose memory and reads are known to the byte."""

import mmap
import os

from tinymeter._knobs import ALLOCATION_FACTOR

#: What ``allocate`` adds at the baseline (``ALLOCATION_FACTOR`` 1), bytes.
BASE_ALLOCATION_BYTES = 64 * 1024 * 1024
PAGE_BYTES = mmap.PAGESIZE


def allocation_bytes() -> int:
    return BASE_ALLOCATION_BYTES * ALLOCATION_FACTOR


def allocate() -> int:
    """Allocate and write ``allocation_bytes()`` (bytearray zero-fills every page), free them."""
    block = bytearray(allocation_bytes())
    return len(block)


def hold(nbytes: int) -> bytearray:
    """A block of ``nbytes``, every page written, for the caller to keep."""
    return bytearray(nbytes)


def small_work() -> int:
    return sum(range(10_000))


def write_file(path: str, nbytes: int) -> str:
    """Write ``nbytes`` of random bytes to ``path``, flushed to disk; its absolute path."""
    chunk = 1 << 20
    with open(path, "wb") as out:
        out.writelines(os.urandom(min(chunk, nbytes - offset)) for offset in range(0, nbytes, chunk))
        out.flush()
        os.fsync(out.fileno())
    return os.path.abspath(path)


def map_and_read(path: str) -> int:
    """Map the file and read one byte of every page while the map is alive."""
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        return sum(mapped[offset] for offset in range(0, len(mapped), PAGE_BYTES))


def read_file(path: str) -> int:
    """Read the whole file with read calls into one reused 1 MiB buffer; the bytes read."""
    buffer = bytearray(1 << 20)
    total = 0
    with open(path, "rb", buffering=0) as file:
        while count := file.readinto(buffer):
            total += count
    return total
