"""Cold passes with and without readahead hints, interleaved in one process.

For each strategy, alternately: evict the store's pages, open it, time one cold pass with the
hints off (``HARNESS_READAHEAD_BYTES=0``); evict, open, time one with the default window;
``--pairs`` times.
Prints the median seconds of each, the median of the pairwise ratios (off / on), and GB/s.
Interleaving keeps the comparison fair on a machine whose load comes and goes. Run from the
repository root on a generated matrix:

    python tools/readahead_ab.py --shape 1000x100000 --chunks 10x100000 \\
        --strategies hdf5-direct,zarr-direct,zarr-blocked [--compression blosc-lz4] [--pairs 7] \\
        [--window 33554432]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from harness.measuring import strategies
from harness.measuring.matrix.generate import vector
from harness.measuring.matrix.spec import DatasetSpec, parse_shape
from harness.measuring.meters import pagecache
from harness.measuring.storage import datasets
from harness.measuring.strategies import readahead


def cold_pass(strategy, spec, path, x, window: int) -> float:
    """One timed cold pass, the operand opened (untimed) after the eviction: a live map of a
    file keeps its pages in the cache."""
    os.environ[readahead.READAHEAD_ENV_VAR] = str(window)
    pagecache.evict(path)
    with strategy.open(spec) as operand:
        started = time.perf_counter()
        operand.matvec(x)
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="1000x100000")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--chunks", default="10x100000")
    parser.add_argument("--compression", default=None)
    parser.add_argument("--values", default="uniform")
    parser.add_argument("--strategies", default="hdf5-direct,zarr-direct,zarr-blocked")
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--window", type=int, default=readahead.DEFAULT_READAHEAD_BYTES,
                        help="bytes requested ahead when the hints are on")
    args = parser.parse_args()
    shape = parse_shape(args.shape)
    chunks = tuple(int(n) for n in args.chunks.split("x"))
    x = vector(shape[1], args.dtype)
    for name in args.strategies.split(","):
        strategy = strategies.get(name)
        spec = DatasetSpec(shape, args.dtype, storage=strategy.storage[0], chunks=chunks,
                           compression=args.compression, values=args.values)
        path = datasets.materialize(spec)
        off, on = [], []
        with strategy.open(spec) as operand:
            operand.matvec(x)  # warm-up: imports
        for _ in range(args.pairs):
            off.append(cold_pass(strategy, spec, path, x, 0))
            on.append(cold_pass(strategy, spec, path, x, args.window))
        gb = spec.dense_bytes / 1e9
        ratio = statistics.median(a / b for a, b in zip(off, on))
        print(f"{name:20s} hints off {statistics.median(off) * 1e3:7.1f} ms "
              f"({gb / statistics.median(off):.2f} GB/s)  on {statistics.median(on) * 1e3:7.1f} ms "
              f"({gb / statistics.median(on):.2f} GB/s)  off/on {ratio:.2f} (median of pairs)")
    os.environ.pop(readahead.READAHEAD_ENV_VAR, None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
