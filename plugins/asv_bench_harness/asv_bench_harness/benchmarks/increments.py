"""Memory the benchmark function adds while it runs (bytes), measured around that call alone
by ``asv_bench_harness.memory``: ``peakincrement_`` (the exact peak of resident memory over its
start), ``anonincrement_`` and ``fileincrement_`` (its anonymous and file-backed parts, sampled
every 0.5 ms). ``setup``, imports and whatever the process held before are not counted."""

from __future__ import annotations

from asv_bench_harness.benchmarks._metered import MeteredBenchmark
from asv_bench_harness.figures import ANON_INCREMENT, FILE_INCREMENT, PEAK_INCREMENT
from asv_bench_harness.memory import PeakMemory, PeakMeter


class PeakIncrementBenchmark(MeteredBenchmark):
    figure = PEAK_INCREMENT

    def part(self, peak: PeakMemory) -> int:
        return peak.increment

    def run(self, *param):
        self.evict_cold_files()
        _, peak = PeakMeter().measure(self.func, *param)
        if peak.method != "clear_refs":
            self.note(f"method {peak.method}: /proc/self/clear_refs is not writable, so the peak "
                      "is the largest of samples every 0.5 ms (a shorter spike can be missed)")
        return self.part(peak)


class AnonIncrementBenchmark(PeakIncrementBenchmark):
    figure = ANON_INCREMENT

    def part(self, peak: PeakMemory) -> int:
        return peak.anon_increment


class FileIncrementBenchmark(PeakIncrementBenchmark):
    figure = FILE_INCREMENT

    def part(self, peak: PeakMemory) -> int:
        return peak.file_increment


export_as_benchmark = [PeakIncrementBenchmark, AnonIncrementBenchmark, FileIncrementBenchmark]
