"""How the destination's alignment changes the kernel's copy out of the page cache.

Reads the same warm file in 16 MiB ``preadv`` calls into destinations placed at several byte
offsets past a page, from several file offsets, and prints the median milliseconds of each
(rows: destination offset modulo 4 KiB; columns: file offset). numpy places large arrays 16
bytes past a page; on this project's VM (AMD EPYC) a destination 16 bytes past the source's
offset modulo 4 KiB copied 2.6x slower (138 ms against 54 ms here), which is why
``harness.measuring.strategies.base.read_buffer`` aligns its buffers to a page. Run from the
repository root (it writes a 320 MiB scratch file in the harness's data directory and removes
it):

    python tools/read_alignment.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import mmap
import os
import statistics
import sys
import time
from pathlib import Path

READ = 16 << 20
TOTAL = 320 << 20
DESTINATIONS = (0, 16, 32, 64, 2048, 2064)
SOURCES = (0, 16, 64, 2048, 2064)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="passes per figure (default 5)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import numpy as np

    from harness.measuring.storage.datasets import default_root

    root = default_root()
    root.mkdir(parents=True, exist_ok=True)
    scratch = root / f"read-alignment-{os.getpid()}.tmp"
    try:
        with open(scratch, "wb") as f:
            block = np.random.default_rng(0).integers(0, 255, READ, dtype=np.uint8).tobytes()
            f.writelines(block for _ in range(TOTAL // READ + 1))
        memory = mmap.mmap(-1, READ + 8192)
        fd = os.open(scratch, os.O_RDONLY)
        for _ in range(2):  # warm the page cache
            for offset in range(0, TOTAL, READ):
                os.pread(fd, READ, offset)
        print(f"ms to read {TOTAL >> 20} MiB in {READ >> 20} MiB calls, medians of {args.repeat}")
        print("dst \\ src " + "".join(f"{s:>8d}" for s in SOURCES))
        for shift in DESTINATIONS:
            out = np.frombuffer(memory, np.uint8, READ, shift)
            out[:] = 1  # faulted in before timing
            row = []
            for source in SOURCES:
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    for offset in range(0, TOTAL, READ):
                        os.preadv(fd, [out], offset + source)
                    times.append(time.perf_counter() - started)
                row.append(1e3 * statistics.median(times))
            print(f"{shift:9d} " + "".join(f"{v:8.1f}" for v in row))
            del out
        os.close(fd)
    finally:
        scratch.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
