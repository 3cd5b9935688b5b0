"""What the kernel does while plain ``mm @ x`` (numpy.memmap) runs cold on a file larger than RAM.

Evicts the file, starts ``mm @ x`` in a thread and, every 10 s until it finishes or ``SECONDS``
have passed, prints the disk's read rate and request size (``/proc/diskstats``), the process's
resident set (the mapped pages the product has touched) and the kernel's reclaim counters
(``/proc/vmstat``: major faults, pages scanned and stolen, file pages read again after being
evicted). The figures of ``compare.past_ram_notes`` and docs/findings-storage.md come from it:

    python tools/mm_past_ram.py DATA_DIR/float32-8000x1000000-dense-s0-raw-....raw 8000 1000000 120

``DISK`` (default vda) names the block device in /proc/diskstats.
"""
import os
import sys
import threading
import time

import numpy as np
from asv_bench_harness.pagecache import evict

path, rows, cols, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
DISK = os.environ.get("DISK", "vda")
evict(path)
KEYS = ("pgmajfault", "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct",
        "workingset_refault_file")


def lines(name: str) -> list[str]:
    with open(name) as f:
        return f.readlines()


def vmstat() -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in lines("/proc/vmstat"))}


def disk_reads() -> tuple[int, int]:
    """(read requests completed, sectors read) of ``DISK``."""
    for line in lines("/proc/diskstats"):
        fields = line.split()
        if fields[2] == DISK:
            return int(fields[3]), int(fields[5])
    raise SystemExit(f"no block device {DISK!r} in /proc/diskstats: set DISK")


def resident_bytes() -> int:
    for line in lines("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> int:
    evict(path)
    matrix = np.memmap(path, dtype=np.float32, mode="r", shape=(rows, cols))
    x = np.ones(cols, np.float32)
    done: list = []
    threading.Thread(target=lambda: done.append(matrix @ x), daemon=True).start()
    started = before = time.perf_counter()
    counters, reads = vmstat(), disk_reads()
    while time.perf_counter() - started < seconds and not done:
        time.sleep(10)
        now, new_counters, new_reads = time.perf_counter(), vmstat(), disk_reads()
        dt = now - before
        requests, sectors = new_reads[0] - reads[0], new_reads[1] - reads[1]
        print(f"t={now - started:6.1f}s read {sectors * 512 / dt / 1e6:7.1f} MB/s, "
              f"avg request {sectors * 512 / max(requests, 1) / 1024:6.1f} KiB, "
              f"resident {resident_bytes() / 2**30:5.1f} GiB, " + ", ".join(
                  f"{k} {(new_counters.get(k, 0) - counters.get(k, 0)) / dt:.0f}/s"
                  for k in KEYS), flush=True)
        before, counters, reads = now, new_counters, new_reads
    print("finished" if done else f"not finished after {seconds:.0f} s", flush=True)
    os._exit(0)  # the product's thread cannot be interrupted


if __name__ == "__main__":
    raise SystemExit(main())
