"""What the benchmark types share: the figure they declare (name pattern, asv type and unit)
and the files a benchmark names to be evicted from the page cache before each measured call.

A benchmark names those files in ``cold_files``: a path or a list of paths (a directory stands
for every file under it), as an attribute of the benchmark function, or set on ``self`` (or the
class) by ``setup``, which runs before it is read. Evicting them needs no root, but pages that a
live memory map holds stay cached: the eviction is checked, and a file that stays cached makes
the benchmark fail with the reason rather than report a warm figure as cold.
"""

from __future__ import annotations

import os
import re
import sys

from asv_runner.benchmarks._base import Benchmark, _get_first_attr

from asv_bench_harness import pagecache
from asv_bench_harness.figures import Figure

#: Share of a named file that may stay in the page cache after its eviction (a fraction).
COLD_RESIDENT_LIMIT = 0.01


class MeteredBenchmark(Benchmark):
    """A benchmark type of this distribution: subclasses set ``figure`` and ``run``."""

    figure: Figure

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.name_regex = re.compile(f"^{re.escape(cls.figure.prefix)}.+$")

    def __init__(self, name, func, attr_sources):
        Benchmark.__init__(self, name, func, attr_sources)
        self.type = self.figure.type
        self.unit = self.figure.unit

    def cold_files(self) -> list[str]:
        """The paths the benchmark names in ``cold_files`` (read now: ``setup`` may set it)."""
        named = _get_first_attr(self._attr_sources, "cold_files", None)
        if named is None:
            return []
        if isinstance(named, (str, os.PathLike)):
            named = [named]
        return [os.fspath(path) for path in named]

    def evict_cold_files(self) -> list[str]:
        """Evict the named files from the page cache, checked where mincore can tell; the
        paths. ``CacheEvictionError`` (saying why) when one stays cached."""
        files = self.cold_files()
        for path in files:
            checked = all(pagecache.can_see_residency(file)
                          for file in pagecache.files_under(path, "evict"))
            pagecache.evict(path, require_below=COLD_RESIDENT_LIMIT if checked else None)
        return files

    def note(self, message: str) -> None:
        """A line on the benchmark's stderr (``asv run --show-stderr`` shows it)."""
        print(f"asv_bench_harness: {self.name}: {message}", file=sys.stderr)
