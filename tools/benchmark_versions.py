"""Print every benchmark of the asv suite with the version asv gives it, one per line.

asv keys a benchmark's history by name and by ``version`` (a hash of the source of the
benchmark method, its ``setup`` methods and ``setup_cache``): a refactoring that changes that
source starts a new history. Run this before and after such a change and diff the outputs:

    python tools/benchmark_versions.py > before.txt   # on the old commit
    python tools/benchmark_versions.py > after.txt    # on the new one
    diff before.txt after.txt                         # empty: history stays comparable

Uses asv_runner's own discovery (what ``asv run --bench just-discover`` calls), run from the
repository root; the profile does not change versions, only parameters.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    from asv_runner.discovery import disc_benchmarks

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    for benchmark in sorted(disc_benchmarks(str(root / "benchmarks")), key=lambda b: b.name):
        print(benchmark.name, benchmark.version, benchmark.param_names)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
