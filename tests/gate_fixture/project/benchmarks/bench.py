"""The gate's end-to-end suite: time, peak memory, an exact peak increment, and a throughput.

This runs in asv's virtualenv of the tiny project, where harness is not installed, so the exact
increment is measured here the way harness.memory does it (Linux): reset the resident-set
high-water mark (write 5 to /proc/self/clear_refs), run, read VmHWM.
"""

import time

import tinywork


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # the kernel writes kB
    raise RuntimeError(f"no {field} in /proc/self/status")


class Work:
    repeat = 5
    number = 1
    warmup_time = 0.0

    def time_work(self):
        tinywork.work()

    def peakmem_work(self):
        tinywork.work()

    def track_peak_increment(self):
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        baseline = _status_bytes("VmRSS")
        tinywork.work()
        return _status_bytes("VmHWM") - baseline

    track_peak_increment.unit = "bytes"

    def track_gbps(self):
        start = time.perf_counter()
        tinywork.work()
        return tinywork.BASE_BYTES / (time.perf_counter() - start) / 1e9

    track_gbps.unit = "GB/s"
