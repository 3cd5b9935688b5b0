"""Readahead hints: tell the kernel which byte ranges of which files a pass reads next.

A reader that reads a chunk, then decodes and multiplies it, leaves the disk idle while it
computes unless someone has asked for the next chunks already. The kernel's own readahead works
within one file read sequentially; a store of many chunk files gets little of it.
:class:`Readahead` keeps ``readahead_bytes()`` of the ranges that come next requested with
``posix_fadvise(POSIX_FADV_WILLNEED)``, which starts reading them into the page cache; the
pages are then file-backed memory that the kernel may drop, never anonymous. The calls are
made by one background thread: on a cold file ``WILLNEED`` can block until the kernel has
queued the reads, and the reader must go on submitting chunks meanwhile.

Who uses it (cold passes alternated with and without hints in one process,
``tools/readahead_ab.py``, median of the paired ratios, on a 2-core VM shared with other jobs):
``zarr-direct`` (1.03-1.25x faster with them), ``tensorstore-blocked`` (1.21-1.46x) and
``zarr-mmap`` (its chunk files asked for ahead of the page faults: medians 1.32-1.45x faster,
paired ratios 0.96 and 2.02 in two calls). Not
``hdf5-direct`` (one file, read in order with ``POSIX_FADV_SEQUENTIAL``: 0.79-1.07x, and 1.52x
once with a 128 MiB window) nor ``zarr-blocked`` (0.81-0.90x).

A hint is never an error: where ``posix_fadvise`` is missing (not Linux) or fails, nothing
happens. ``HARNESS_READAHEAD_BYTES`` (bytes; 0 turns the hints off) overrides the default,
so that a pass with and without hints can be compared on the same machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from concurrent.futures import ThreadPoolExecutor

#: Bytes requested ahead of the reader by default: a few chunks of 4 MiB, a few hundred
#: milliseconds of this class of machine's disk.
DEFAULT_READAHEAD_BYTES = 32 << 20
READAHEAD_ENV_VAR = "HARNESS_READAHEAD_BYTES"


def readahead_bytes() -> int:
    """Bytes to keep requested ahead: ``$HARNESS_READAHEAD_BYTES`` when it is an integer >= 0,
    else the default."""
    text = os.environ.get(READAHEAD_ENV_VAR, "").strip()
    return int(text) if text.isdigit() else DEFAULT_READAHEAD_BYTES


@dataclasses.dataclass(frozen=True)
class Range:
    """Bytes ``offset:offset + size`` of a file, given by path or by an open descriptor."""

    file: str | os.PathLike | int
    offset: int
    size: int


def advise(ranges) -> None:
    """Ask the kernel to start reading ``ranges`` (an iterable of :class:`Range`)."""
    for piece in ranges:
        with contextlib.suppress(OSError, AttributeError):  # a hint: never an error
            if isinstance(piece.file, int):
                os.posix_fadvise(piece.file, piece.offset, piece.size, os.POSIX_FADV_WILLNEED)
                continue
            fd = os.open(piece.file, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, piece.offset, piece.size, os.POSIX_FADV_WILLNEED)
            finally:
                os.close(fd)


@functools.cache
def _adviser() -> ThreadPoolExecutor:
    """The one thread that makes the ``posix_fadvise`` calls, in the order they were asked."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="readahead")


def start() -> None:
    """Start the adviser thread now (a reader calls it when it opens): the thread's stack and
    its allocator arena are then the opening's memory, not the first metered pass's (a solve
    through zarr-mmap measured 3.4 MB of anonymous memory otherwise)."""
    if readahead_bytes() > 0:
        _adviser().submit(advise, ()).result()


class Readahead:
    """Hints for one pass over ``ranges`` in the order they will be read: call
    ``reached(i)`` when range ``i`` is about to be read; it requests the ranges after it until
    ``window_bytes`` are requested ahead. ``advised`` counts the ranges requested."""

    def __init__(self, ranges: list[Range], window_bytes: int | None = None):
        self.ranges = ranges
        self.window_bytes = readahead_bytes() if window_bytes is None else window_bytes
        self.advised = 0
        self._ahead = 0  # bytes requested past the range last reached

    def reached(self, index: int) -> None:
        if self.window_bytes <= 0:
            return
        if index < self.advised:
            self._ahead -= self.ranges[index].size  # that range is being read now
        else:
            self.advised, self._ahead = index, 0
        start = self.advised
        while self.advised < len(self.ranges) and self._ahead < self.window_bytes:
            self._ahead += self.ranges[self.advised].size
            self.advised += 1
        if self.advised > start:
            _adviser().submit(advise, self.ranges[start:self.advised])
