"""Bytes the benchmark function reads while it runs, from Linux's counters of this process
(``asv_bench_harness.reads``): ``storageread_`` (fetched from storage: with the benchmark's
``cold_files`` evicted first, every byte of them it reads) and ``readcalls_`` (returned by
read calls, cached or not)."""

from __future__ import annotations

from asv_bench_harness.benchmarks._metered import MeteredBenchmark
from asv_bench_harness.figures import READ_CALLS, STORAGE_READ
from asv_bench_harness.reads import ReadCounters, read_counters


class StorageReadBenchmark(MeteredBenchmark):
    figure = STORAGE_READ

    def part(self, read: ReadCounters) -> int:
        return read.storage_bytes

    def run(self, *param):
        self.evict_cold_files()
        before = read_counters()
        self.func(*param)
        return self.part(read_counters() - before)


class ReadCallsBenchmark(StorageReadBenchmark):
    figure = READ_CALLS

    def part(self, read: ReadCounters) -> int:
        return read.read_call_bytes


export_as_benchmark = [StorageReadBenchmark, ReadCallsBenchmark]
