"""memmap-blocked's passes over a file larger than RAM, with its pages dropped from the page cache
behind it in batches of different sizes, and with or without readahead hints.

The pattern of ``harness.measuring.strategies.memmap.blocked_product``: a read-only map
advised sequential, a reader thread faulting the next block in (``MADV_POPULATE_READ``) while
BLAS multiplies this one, each finished block unmapped (``MADV_DONTNEED``) and then dropped
from the page cache (``POSIX_FADV_DONTNEED``) every ``drop`` MiB; "harness" is
``blocked_product`` itself. Each variant opens one mapping and makes ``--passes`` passes over
the first ``--gigabytes`` of a raw float32 file of ``--cols`` columns, the first from a cold
cache, the next ones right after (as an iterative solver would); variants in shuffled order,
``--rounds`` times; prints GB/s of each pass and the median per pass. The figures behind
``UNCACHE_BATCH_BYTES`` and ``UNCACHE_OVERLAP_BYTES`` come from this script. Run from the repository root on a raw file the
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
from harness.measuring.strategies.memmap import blocked_product, mapped
from harness.measuring.strategies.products import Product

MiB = 1 << 20
#: name -> (block MiB, readahead hint MiB ahead (0: none), drop every MiB); None: the harness
VARIANTS = {"drop every 8 MiB block": (8, 0, 8), "drop every 256 MiB": (8, 0, 256),
            "drop 256 MiB + 64 MiB hints": (8, 64, 256), "32 MiB blocks, drop 256 MiB": (32, 0, 256),
            "harness (blocked_product)": None}


def harness_passes(path: str, rows: int, cols: int, passes: int) -> list[float]:
    """GB/s of ``passes`` passes of ``blocked_product`` (pages released and dropped) over one
    mapping of the first ``rows`` rows."""
    x = np.ones(cols, np.float32)
    rates = []
    with mapped(path, 0, (rows, cols), "float32") as mapping:
        mapping.advise_sequential()
        for _ in range(passes):
            product = Product((rows, cols), x, transpose=False)
            started = time.perf_counter()
            blocked_product(mapping, product, max(1, 8 * MiB // (cols * 4)), release=True,
                            uncache=True)
            rates.append(rows * cols * 4 / (time.perf_counter() - started) / 1e9)
    return rates


def passes_of(path: str, rows: int, cols: int, passes: int, block_mib: int, ahead_mib: int,
              drop_mib: int) -> list[float]:
    """GB/s of ``passes`` passes over one mapping of the first ``rows`` rows, each block's
    pages dropped every ``drop_mib`` MiB exactly behind it."""
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
    rates = []
    for _ in range(passes):
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
        rates.append(rows * row_bytes / (time.perf_counter() - started) / 1e9)
        advised = 0
    reader.shutdown()
    del a
    mapping.close()
    os.close(fd)
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--cols", type=int, default=1_000_000)
    parser.add_argument("--gigabytes", type=float, default=6.0)
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = int(min(args.gigabytes * 1e9, os.path.getsize(args.path)) // (args.cols * 4))
    rates: dict[str, list[list[float]]] = {name: [] for name in VARIANTS}
    order = list(VARIANTS)
    for _ in range(args.rounds):
        random.shuffle(order)
        for name in order:
            evict(args.path)
            variant = VARIANTS[name]
            rates[name].append(
                harness_passes(args.path, rows, args.cols, args.passes) if variant is None
                else passes_of(args.path, rows, args.cols, args.passes, *variant))
    for name, rounds in rates.items():
        per_pass = np.array(rounds)  # rounds x passes
        print(f"{name:30s} " + "; ".join(
            f"pass {p + 1}: " + " ".join(f"{v:.2f}" for v in per_pass[:, p]) +
            f" (median {np.median(per_pass[:, p]):.2f})" for p in range(args.passes)) + " GB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
