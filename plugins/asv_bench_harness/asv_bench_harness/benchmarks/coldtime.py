"""``coldtime_``: the wall time of the benchmark function with the files it names
(``cold_files``) evicted from the page cache before each sample (seconds).

Each sample is one call: ``setup`` runs again before every sample but the first (as asv's
``time_`` does between samples when there is a ``setup``), then the files are evicted, then the
call is timed alone. Samples go to asv as a time benchmark's do, so ``asv compare`` applies its
significance test. ``repeat`` is asv's: a count, or (min, max, seconds) as in ``time_``;
default (2, 7, 20.0), 7 samples being the fewest for which asv's test can tell two runs apart.
A benchmark that names no files is refused: without them there is nothing to make cold.
"""

from __future__ import annotations

import time

from asv_runner.benchmarks._base import _get_first_attr

from asv_bench_harness.benchmarks._metered import MeteredBenchmark
from asv_bench_harness.figures import COLD_TIME

DEFAULT_REPEAT = (2, 7, 20.0)


class NoColdFilesError(ValueError):
    """A ``coldtime_`` benchmark that names no files to evict."""


class ColdTimeBenchmark(MeteredBenchmark):
    figure = COLD_TIME

    def sample_counts(self) -> tuple[int, int, float]:
        """(min samples, max samples, seconds after which to stop once min are taken)."""
        repeat = _get_first_attr(self._attr_sources, "repeat", 0) or DEFAULT_REPEAT
        if isinstance(repeat, (tuple, list)):
            low, high, seconds = repeat
            return int(low), int(high), float(seconds)
        return int(repeat), int(repeat), float("inf")

    def run(self, *param):
        if not self.cold_files():
            raise NoColdFilesError(
                f"{self.name} names no files to evict from the page cache: a coldtime_ "
                "benchmark times its call with those files cold. Set cold_files (a path or a "
                "list of paths) on the benchmark function, or self.cold_files in setup; or "
                "rename it time_ to time it warm")
        low, high, seconds = self.sample_counts()
        samples: list[float] = []
        started = time.perf_counter()
        while len(samples) < high:
            if samples and self._setups:
                self.do_teardown()
                self.do_setup()
            self.evict_cold_files()
            start = time.perf_counter()
            self.func(*param)
            samples.append(time.perf_counter() - start)
            if len(samples) >= low and time.perf_counter() - started > seconds:
                break
        return {"samples": samples, "number": 1}


export_as_benchmark = [ColdTimeBenchmark]
