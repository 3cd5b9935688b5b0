"""The bytes a process read: Linux's per-process I/O counters (``/proc/self/io``).

``read_bytes``: bytes this process caused to be fetched from storage (page-cache misses, memory
map faults on a file included; a page already cached costs nothing). ``rchar``: bytes returned
by read-family calls (``read``, ``pread``, ``readv``...), page-cache hits included, memory maps
not. Both count every thread of the process. Figures are bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

IO_PATH = "/proc/self/io"


@dataclass(frozen=True)
class ReadCounters:
    """This process's read counters so far, in bytes: ``storage_bytes`` (the kernel's
    ``read_bytes``) and ``read_call_bytes`` (``rchar``)."""

    storage_bytes: int
    read_call_bytes: int

    def __sub__(self, earlier: ReadCounters) -> ReadCounters:
        return ReadCounters(self.storage_bytes - earlier.storage_bytes,
                            self.read_call_bytes - earlier.read_call_bytes)


def read_counters(path: str = IO_PATH) -> ReadCounters:
    """This process's counters; ``OSError`` where ``/proc/self/io`` cannot be read (not Linux,
    or a kernel without per-task I/O accounting)."""
    return read_counters_and_cost(path)[0]


def read_counters_and_cost(path: str = IO_PATH) -> tuple[ReadCounters, int]:
    """``read_counters`` and the bytes its own read returned, which ``rchar`` counts from
    the next reading on: a caller that subtracts them measures what it did in between."""
    with open(path, "rb") as io:
        text = io.read()
    fields = dict(line.split(":", 1) for line in text.decode().splitlines() if ":" in line)
    try:
        return ReadCounters(int(fields["read_bytes"]), int(fields["rchar"])), len(text)
    except (KeyError, ValueError):
        raise OSError(f"{path} holds no read_bytes and rchar counters") from None
