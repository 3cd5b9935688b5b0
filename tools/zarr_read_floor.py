"""Where zarr-blocked's time goes: zarr's read path taken apart, side by side in one run.

On an uncompressed zarr store of the harness (default: the 1000 x 100000 float32 matrix, its
default ~4 MiB chunks of whole rows), warm page cache, this prints the median of ``--repeat``
passes of:

- ``dense A @ x``: the in-RAM product every ratio is against;
- ``pread into one buffer + dot``: every chunk file read straight into one reused page-aligned
  slab, then multiplied: the floor of any reader that copies the bytes once;
- ``read_bytes``: what zarr's LocalStore does for each chunk (``Path.read_bytes``: a fresh
  buffer per chunk), nothing else;
- ``read_bytes + copy into out``: that, and the copy zarr's codec pipeline makes of every
  decoded chunk into ``out``: the floor of zarr's design, without its event loop;
- ``zarr get_basic_selection(out=)``: zarr itself, reading the slabs zarr-blocked reads;
- ``zarr-blocked``: the same plus the dot, as the strategy runs it.

Run from the repository root:

    python tools/zarr_read_floor.py [--shape 1000x100000] [--dtype float32] [--repeat 7]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm: page cache, mappings, allocator
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1e3 * statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="1000x100000", help="ROWSxCOLS (default 1000x100000)")
    parser.add_argument("--dtype", default="float32", help="float32 or float64 (default float32)")
    parser.add_argument("--repeat", type=int, default=7, help="passes per figure (default 7)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import numpy as np
    from zarr.core.buffer import cpu

    from harness.measuring.matrix.spec import DatasetSpec, parse_shape
    from harness.measuring.storage import zarr as zarr_store
    from harness.measuring.storage.datasets import materialize
    from harness.measuring.strategies import get
    from harness.measuring.strategies.base import Options, read_buffer
    from harness.measuring.strategies.zarr import ZARR_READS_IN_FLIGHT, slab_rows

    spec = DatasetSpec(shape=parse_shape(args.shape), dtype=args.dtype, storage="zarr")
    path = materialize(spec)
    array = zarr_store.open_array(path)
    refusal = zarr_store.raw_chunks_refusal(array)
    if refusal:
        raise SystemExit(f"the store must hold raw chunks: {refusal}")
    nrows, ncols = spec.shape
    ch, cw = zarr_store.chunk_shape(spec)
    if cw < ncols:
        raise SystemExit("this probe reads chunks of whole rows; the store's chunks are narrower")
    files = [zarr_store.chunk_file(array, path, (i, 0)) for i in range(math.ceil(nrows / ch))]
    slab = get("zarr-blocked")
    rows_per_slab = slab_rows(spec, Options())
    out = read_buffer((rows_per_slab, ncols), spec.dtype)
    x = np.ones(ncols, dtype=spec.dtype)
    y = np.empty(nrows, dtype=spec.dtype)
    dense = np.empty(spec.shape, dtype=spec.dtype)
    dense.fill(1)

    def place(index):  # rows of chunk ``index`` inside the reused slab
        r0 = index * ch % rows_per_slab
        return out[r0:r0 + min(ch, nrows - index * ch)]

    descriptors = [os.open(f, os.O_RDONLY) for f in files]

    def pread_and_dot():
        for index, fd in enumerate(descriptors):
            rows = place(index)
            os.preadv(fd, [rows], 0)
            np.dot(rows, x, out=y[index * ch:index * ch + rows.shape[0]])

    def read_bytes():
        for f in files:
            f.read_bytes()

    def read_bytes_and_copy():
        for index, f in enumerate(files):
            rows = place(index)
            chunk = np.frombuffer(f.read_bytes(), dtype=spec.dtype).reshape(ch, ncols)
            rows[...] = chunk[:rows.shape[0]]

    import zarr

    def zarr_reads():
        with zarr.config.set({"async.concurrency": ZARR_READS_IN_FLIGHT}):
            for r0 in range(0, nrows, rows_per_slab):
                r1 = min(r0 + rows_per_slab, nrows)
                array.get_basic_selection((slice(r0, r1), slice(0, ncols)),
                                          out=cpu.NDBuffer.from_numpy_array(out[:r1 - r0]))

    figures = [("dense A @ x", lambda: dense @ x), ("pread into one buffer + dot", pread_and_dot),
               ("read_bytes (zarr's LocalStore)", read_bytes),
               ("read_bytes + copy into out", read_bytes_and_copy),
               ("zarr get_basic_selection(out=)", zarr_reads)]
    try:
        results = [(name, _median_ms(fn, args.repeat)) for name, fn in figures]
        with slab.open_at(spec, path) as operand:
            results.append(("zarr-blocked (reads + dot)",
                            _median_ms(lambda: operand.matvec(x), args.repeat)))
    finally:
        for fd in descriptors:
            os.close(fd)
    base = results[0][1]
    print(f"{spec.shape[0]} x {spec.shape[1]} {spec.dtype}, chunks {ch} x {cw}, "
          f"{len(files)} chunk files, slabs of {rows_per_slab} rows; medians of {args.repeat}")
    for name, ms in results:
        print(f"  {name:32s} {ms:8.1f} ms  {ms / base:6.2f}x dense")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
