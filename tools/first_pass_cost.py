"""The first product after opening against a steady one, per strategy (why asv and measure differ).

asv re-runs a benchmark's ``setup`` before every timing sample but the first (asv_runner's
``redo_setup``, with ``number = 1``): the suite's ``time_matvec`` therefore times the first
product after the operand was opened, while ``python -m harness measure`` times products on an
operand that has already multiplied twice (steady state). For a mapped route the first product
also faults every page of the file into the process's page tables (the file is in the page
cache either way); a thread-pool reader also warms its buffers and pool. This script opens each
strategy ``--repeat`` times and prints the median first product and the median steady one on
the same warm file. Run from the repository root:

    python tools/first_pass_cost.py [--shape 1000x100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness.measuring import strategies
from harness.measuring.matrix.generate import vector
from harness.measuring.matrix.spec import DatasetSpec, parse_shape

#: (strategy, storage, chunks): the in-RAM reference, two mapped routes, a thread-pool reader.
CASES = (("dense", "ram", None), ("memmap", "raw", None), ("zarr-mmap", "zarr", "rows"),
         ("zarr-direct", "zarr", "rows"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="1000x100000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows, cols = parse_shape(args.shape)
    x = vector(cols, "float32")
    for name, storage, chunks in CASES:
        # Chunks of about 4 MB of full rows, as the suite's "rows" layout.
        chunk_shape = (max(1, min(rows, (4 << 20) // (cols * 4))), cols) if chunks else None
        spec = DatasetSpec((rows, cols), "float32", storage=storage, chunks=chunk_shape)
        strategy = strategies.get(name)
        first, steady = [], []
        for _ in range(args.repeat):
            with strategy.open(spec) as operand:
                started = time.perf_counter()
                operand.matvec(x)
                first.append(time.perf_counter() - started)
                operand.matvec(x)
                started = time.perf_counter()
                operand.matvec(x)
                steady.append(time.perf_counter() - started)
        a, b = statistics.median(first), statistics.median(steady)
        print(f"{name:12s} first product after opening {a * 1e3:7.1f} ms, steady "
              f"{b * 1e3:7.1f} ms ({a / b:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
