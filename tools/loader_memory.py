"""How much memory ``harness.reporting.results.load`` takes against the size of the files it
reads: writes 300 asv result files (40,200 rows, 10 timing samples each) into a temporary
directory, loads them in a fresh process and prints the peak RSS increment (``VmHWM`` after
loading minus the RSS before, bytes) against the files' total size.

    python tools/loader_memory.py [--files 300] [--samples 10]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

RESULT_COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a",
                  "stats_ci_99_b", "stats_q_25", "stats_q_75", "stats_number", "stats_repeat",
                  "samples", "profile"]

CHILD = """
import sys, time
from harness.reporting.results import load

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise KeyError(key)

before = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # reset VmHWM: the peak of loading alone
frame = load(sys.argv[1])
print(len(frame), status("VmHWM:") - before, status("VmRSS:") - before)
"""


def write_results(directory: Path, files: int, samples: int, seed: int = 0) -> tuple[int, int]:
    """``files`` result files of 134 rows each; (rows, total bytes)."""
    rng = random.Random(seed)
    machine = directory / "box"
    machine.mkdir(parents=True)
    (machine / "machine.json").write_text(json.dumps({"machine": "box", "version": 1}))
    rows = 0
    for k in range(files):
        results = {}
        for b in range(7):
            sizes = [4, 5] if b < 6 else [2, 7]
            params = [[repr(f"v{j}") for j in range(n)] for n in sizes]
            count = sizes[0] * sizes[1]
            values = [rng.uniform(1e-4, 1e-2) for _ in range(count)]
            results[f"bench{b % 3}.Suite{b}.time_case_{b}"] = [
                values, params, f"{rng.getrandbits(128):032x}", 1704000000000, 12.5,
                [v * 0.9 for v in values], [v * 1.1 for v in values],
                [v * 0.95 for v in values], [v * 1.05 for v in values], [1] * count,
                [10] * count, [[v * rng.uniform(0.9, 1.1) for _ in range(samples)]
                               for v in values]]
            rows += count
        document = {"commit_hash": f"{k:040x}", "env_name": "existing-py_python3",
                    "date": 1704000000000 + k * 3600000, "params": {"machine": "box"},
                    "python": "3.11", "requirements": {"numpy": "2.1"}, "env_vars": {},
                    "result_columns": RESULT_COLUMNS, "results": results, "durations": {},
                    "version": 2}
        (machine / f"{k:08x}-existing-py_python3.json").write_text(json.dumps(document))
    total = sum(p.stat().st_size for p in machine.glob("*.json"))
    return rows, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        rows, total = write_results(Path(directory), args.files, args.samples)
        out = subprocess.run([sys.executable, "-c", CHILD, directory], check=True,
                             capture_output=True, text=True).stdout.split()
        loaded, peak, kept = (int(x) for x in out)
        print(f"{args.files} files, {rows} rows ({loaded} loaded), {total / 1e6:.1f} MB of JSON: "
              f"peak RSS increment {peak / 1e6:.1f} MB ({peak / total:.2f} x the files), "
              f"{kept / 1e6:.1f} MB kept after loading ({kept / total:.2f} x)")


if __name__ == "__main__":
    main()
