"""Benchmark ``harness.reporting.results.load`` on 300 asv result files holding 40,000 rows in all.

Writes realistic api-version-2 files (3 machines x 100 commits; per file 9 parameterised
benchmarks x 14 combinations with stats, plus 7-8 plain ones; every 10th combination skipped,
every 50th failed) into a temporary directory, then times ``load`` a few times in this process
and prints the median wall time in seconds. Target: under 2 seconds on the project machine.

    .venv/bin/python tools/bench_load_results.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import statistics
import tempfile
import time
from pathlib import Path

from harness import names
from harness.reporting.results import load
from harness.units import human_seconds

TARGET_SECONDS = 2.0  # for 300 files, 40,000 rows, on the project machine

COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a",
           "stats_ci_99_b", "stats_q_25", "stats_q_75", "stats_number", "stats_repeat",
           "samples", "profile"]
MACHINES = 3
COMMITS = 100
SHAPES = ["'1000x100000'", "'10000x10000'", "'100000x1000'", "'2000x50000'", "'5000x5000'",
          "'20000x2000'", "'400x250000'"]
DTYPES = ["'float32'", "'float64'"]


def write_results(root: Path) -> int:
    """Write the 300 files (and benchmarks.json) under ``root``; return the number of rows."""
    rng = random.Random(0)
    benchmarks = {}
    parameterised = [f"family{k % 4}.Class{k}.{names.TIME}" for k in range(9)]
    plain = [f"{names.ROOFLINE_CLASS}.track_{k}" for k in range(8)]
    for name in parameterised:
        benchmarks[name] = {"name": name, "param_names": list(names.MATRIX_PARAMS),
                            "params": [SHAPES, DTYPES], "type": "time", "unit": "seconds",
                            "version": "1"}
    for name in plain:
        benchmarks[name] = {"name": name, "param_names": [], "params": [], "type": "track",
                            "unit": "GB/s", "version": "1"}
    (root / "benchmarks.json").write_text(json.dumps({**benchmarks, "version": 2}))
    rows = 0
    for machine, commit in itertools.product(range(MACHINES), range(COMMITS)):
        machine_dir = root / f"machine{machine}"
        machine_dir.mkdir(exist_ok=True)
        (machine_dir / "machine.json").write_text(
            json.dumps({"machine": f"machine{machine}", "version": 1}))
        results = {}
        for name in parameterised:
            count = len(SHAPES) * len(DTYPES)
            values = [None if j % 50 == 49 else math.nan if j % 10 == 9 else
                      rng.uniform(0.01, 1.0) for j in range(count)]
            low = [None if v is None or math.isnan(v) else v * 0.98 for v in values]
            high = [None if v is None or math.isnan(v) else v * 1.02 for v in values]
            results[name] = [values, [SHAPES, DTYPES], "1", 1795573654205, 3.2, low, high,
                             low, high, [1] * count, [10] * count]
            rows += count
        # 7 plain benchmarks per file, 8 in the first 100 files: 40,000 rows in all.
        file_index = machine * COMMITS + commit
        for name in plain[: 8 if file_index < 100 else 7]:
            results[name] = [[rng.uniform(1, 30)], [], "1", 1795573654205, 0.5]
            rows += 1
        document = {"commit_hash": f"{commit:08x}{machine:032x}", "env_name": "virtualenv-py3.11",
                    "date": 1704067200000 + commit * 86_400_000,
                    "params": {"machine": f"machine{machine}", "python": "3.11"},
                    "python": "3.11", "requirements": {"numpy": "2.4"}, "env_vars": {},
                    "result_columns": COLUMNS, "results": results,
                    "durations": {"<build>": 12.0}, "version": 2}
        (machine_dir / f"{commit:08x}-virtualenv-py3.11.json").write_text(json.dumps(document))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed loads (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-load-results-") as directory:
        root = Path(directory)
        rows_written = write_results(root)
        files = len(list(root.glob("machine*/*-*.json")))
        seconds = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            frame = load(root)
            seconds.append(time.perf_counter() - start)
        assert len(frame) == rows_written, (len(frame), rows_written)
        print(f"files={files} rows={len(frame)} load time: "
              f"median={human_seconds(statistics.median(seconds))} "
              f"min={human_seconds(min(seconds))} max={human_seconds(max(seconds))} "
              f"(n={args.repeat}); target < {human_seconds(TARGET_SECONDS)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
