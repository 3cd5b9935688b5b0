"""memmap-blocked's pass over a file larger than RAM, with its pages dropped from the page cache
behind it in batches of different sizes, and with or without readahead hints.

The pattern of ``harness.measuring.strategies.memmap.blocked_product``: a read-only map
advised sequential, a reader thread faulting the next block in (``MADV_POPULATE_READ``) while
BLAS multiplies this one, each finished block unmapped (``MADV_DONTNEED``) and then dropped
from the page cache (``POSIX_FADV_DONTNEED``) every ``drop`` MiB. Each variant runs from a cold
cache over the first ``--gigabytes`` of a raw float32 file of ``--cols`` columns, in shuffled
order, ``--rounds`` times; prints GB/s per pass and the median. The figures behind
``UNCACHE_BATCH_BYTES`` come from this script. Run from the repository root on a raw file the
harness generated (``python -m harness measure --shape 8000x1000000 ...`` writes one):

    python tools/past_ram_drop.py DATA_DIR/float32-8000x1000000-dense-s0-raw-....raw
"""

from __future__ import annotations

import argparse
import mmap
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from harness.measuring.meters.pagecache import PAGE_BYTES, evict, populate

MiB = 1 << 20
#: name -> (block MiB, readahead hint MiB ahead (0: none), drop every MiB)
VARIANTS = {"drop every 8 MiB block": (8, 0, 8), "drop every 256 MiB": (8, 0, 256),
            "drop 256 MiB + 64 MiB hints": (8, 64, 256), "32 MiB blocks, drop 256 MiB": (32, 0, 256)}


def one_pass(path: str, rows: int, cols: int, block_mib: int, ahead_mib: int,
             drop_mib: int) -> float:
    """GB/s of one cold pass over the first ``rows`` rows."""
    row_bytes = cols * 4
    fd = os.open(path, os.O_RDONLY)
    mapping = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    mapping.madvise(mmap.MADV_SEQUENTIAL)
    a = np.frombuffer(mapping, np.float32, count=rows * cols).reshape(rows, cols)
    base = a.ctypes.data
    x = np.ones(cols, np.float32)
    per_block = max(1, block_mib * MiB // row_bytes)
    blocks = [(r, min(r + per_block, rows)) for r in range(0, rows, per_block)]
    advised = 0

    def fault_in(index: int) -> None:
        nonlocal advised
        r0, r1 = blocks[index]
        if ahead_mib:
            want = min(r1 * row_bytes + ahead_mib * MiB, rows * row_bytes)
            if want > advised:
                os.posix_fadvise(fd, advised, want - advised, os.POSIX_FADV_WILLNEED)
                advised = want
        populate(base + r0 * row_bytes, (r1 - r0) * row_bytes)

    reader = ThreadPoolExecutor(1)
    started = time.perf_counter()
    pending = reader.submit(fault_in, 0)
    released = dropped = 0
    for index, (r0, r1) in enumerate(blocks):
        pending.result()
        if index + 1 < len(blocks):
            pending = reader.submit(fault_in, index + 1)
        a[r0:r1] @ x
        end = r1 * row_bytes // PAGE_BYTES * PAGE_BYTES
        mapping.madvise(mmap.MADV_DONTNEED, released, end - released)
        released = end
        if released - dropped >= drop_mib * MiB or index == len(blocks) - 1:
            os.posix_fadvise(fd, dropped, released - dropped, os.POSIX_FADV_DONTNEED)
            dropped = released
    seconds = time.perf_counter() - started
    reader.shutdown()
    del a
    mapping.close()
    os.close(fd)
    return rows * row_bytes / seconds / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--cols", type=int, default=1_000_000)
    parser.add_argument("--gigabytes", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = int(min(args.gigabytes * 1e9, os.path.getsize(args.path)) // (args.cols * 4))
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    order = list(VARIANTS)
    for _ in range(args.rounds):
        random.shuffle(order)
        for name in order:
            evict(args.path)
            rates[name].append(one_pass(args.path, rows, args.cols, *VARIANTS[name]))
    for name, values in rates.items():
        print(f"{name:30s} " + " ".join(f"{v:5.2f}" for v in values) +
              f"  median {np.median(values):.2f} GB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
