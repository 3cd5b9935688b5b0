"""Inflate rates of zlib, ISA-L (``isal``) and zlib-ng on the harness's own chunks.

Encodes 10 chunks of 10 x 100000 float32 "smooth" values three ways (byte shuffle + deflate 1
in a zlib stream, as HDF5's gzip-1-shuffle; deflate 1 and 4 in a gzip container, as zarr's
gzip-1 and gzip-4), then inflates them into one reused 4 MB buffer with each library and prints
GB/s of decoded output on one core (the best of 7 passes, per round). The figures in
``harness.measuring.storage.inflate``'s docstring come from this script. Run from the
repository root:

    python tools/inflate_rates.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib
import time
import zlib

import numpy as np

from harness.measuring.matrix.generate import dense_array
from harness.measuring.matrix.spec import DatasetSpec

CHUNK_ROWS, COLS, CHUNKS = 10, 100_000, 10
CASES = (("shuffle + deflate 1 (HDF5 gzip-1-shuffle)", True, 15, 1),
         ("deflate 1, gzip container (zarr gzip-1)", False, 31, 1),
         ("deflate 4, gzip container (zarr gzip-4)", False, 31, 4))
LIBRARIES = (("zlib", "zlib"), ("isal", "isal.isal_zlib"), ("zlib-ng", "zlib_ng.zlib_ng"))


def encoded_chunks(matrix: np.ndarray, shuffle: bool, wbits: int, level: int) -> list[bytes]:
    chunks = []
    for r0 in range(0, matrix.shape[0], CHUNK_ROWS):
        raw = matrix[r0:r0 + CHUNK_ROWS].view(np.uint8)
        # Byte shuffle: every value's first bytes, then its second bytes, ...
        data = raw.reshape(-1, matrix.itemsize).T.copy().tobytes() if shuffle else raw.tobytes()
        encoder = zlib.compressobj(level, zlib.DEFLATED, wbits)
        chunks.append(encoder.compress(data) + encoder.flush())
    return chunks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    matrix = dense_array(DatasetSpec((CHUNK_ROWS * CHUNKS, COLS), "float32", values="smooth"))
    target = np.empty(CHUNK_ROWS * COLS * 4, np.uint8)
    libraries = []
    for name, module in LIBRARIES:
        try:
            libraries.append((name, importlib.import_module(module)))
        except ImportError:
            print(f"{name}: not installed")
    for label, shuffle, wbits, level in CASES:
        chunks = encoded_chunks(matrix, shuffle, wbits, level)
        ratio = matrix.nbytes / sum(map(len, chunks))
        rates: dict[str, list[str]] = {}
        for _ in range(args.rounds):
            for name, library in libraries:
                best = float("inf")
                for _ in range(7):
                    started = time.perf_counter()
                    for chunk in chunks:
                        decoded = library.decompress(chunk, wbits, target.nbytes)
                        target[:] = np.frombuffer(decoded, np.uint8)
                    best = min(best, time.perf_counter() - started)
                rates.setdefault(name, []).append(f"{matrix.nbytes / best / 1e9:.2f}")
        print(f"{label}: ratio {ratio:.2f}; GB/s " +
              "; ".join(f"{name} {', '.join(r)}" for name, r in rates.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
