"""Inflate rates of zlib, ISA-L (``isal``), zlib-ng and libdeflate on the harness's own chunks.

Encodes 10 chunks of 10 x 100000 float32 "smooth" values three ways (byte shuffle + deflate 1
in a zlib stream, as HDF5's gzip-1-shuffle; deflate 1 and 4 in a gzip container, as zarr's
gzip-1 and gzip-4), then inflates them into one reused 4 MB buffer with each library, as
``harness.measuring.storage.inflate.inflate_into`` calls it (a returned copy included), and prints
GB/s of decoded output on one core (the best of 7 passes, per round). The figures in
``harness.measuring.storage.inflate``'s docstring come from this script. Run from the
repository root:

    python tools/inflate_rates.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
import zlib

import numpy as np

from harness.measuring.matrix.generate import dense_array
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import inflate

CHUNK_ROWS, COLS, CHUNKS = 10, 100_000, 10
CASES = (("shuffle + deflate 1 (HDF5 gzip-1-shuffle)", True, 15, 1),
         ("deflate 1, gzip container (zarr gzip-1)", False, 31, 1),
         ("deflate 4, gzip container (zarr gzip-4)", False, 31, 4))


def encoded_chunks(matrix: np.ndarray, shuffle: bool, wbits: int, level: int
                   ) -> list[np.ndarray]:
    chunks = []
    for r0 in range(0, matrix.shape[0], CHUNK_ROWS):
        raw = matrix[r0:r0 + CHUNK_ROWS].view(np.uint8)
        # Byte shuffle: every value's first bytes, then its second bytes, ...
        data = raw.reshape(-1, matrix.itemsize).T.copy().tobytes() if shuffle else raw.tobytes()
        encoder = zlib.compressobj(level, zlib.DEFLATED, wbits)
        chunks.append(np.frombuffer(encoder.compress(data) + encoder.flush(), np.uint8))
    return chunks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    matrix = dense_array(DatasetSpec((CHUNK_ROWS * CHUNKS, COLS), "float32", values="smooth"))
    target = np.empty(CHUNK_ROWS * COLS * 4, np.uint8)
    libraries = list(reversed(inflate.available()))
    missing = {name for name, _ in inflate.PREFERENCE} - {lib.name for lib in libraries}
    for name in sorted(missing):
        print(f"{name}: not installed")
    for label, shuffle, wbits, level in CASES:
        chunks = encoded_chunks(matrix, shuffle, wbits, level)
        ratio = matrix.nbytes / sum(map(len, chunks))
        rates: dict[str, list[str]] = {}
        for _ in range(args.rounds):
            for inflater in libraries:
                best = float("inf")
                for _ in range(7):
                    started = time.perf_counter()
                    for chunk in chunks:
                        inflate.inflate_into(chunk, target, wbits, inflater)
                    best = min(best, time.perf_counter() - started)
                rates.setdefault(inflater.name, []).append(f"{matrix.nbytes / best / 1e9:.2f}")
        print(f"{label}: ratio {ratio:.2f}; GB/s " +
              "; ".join(f"{name} {', '.join(r)}" for name, r in rates.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
