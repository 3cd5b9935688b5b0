"""What one dask.distributed task costs here: submitting and gathering N tasks that do nothing.

On the harness's own LocalCluster (2 worker processes x 1 thread by default), prints the
median of ``--repeat`` rounds of ``client.map(noop, range(N))`` + ``client.gather`` for each N:
the fixed cost a product split into N tasks pays before any reading or multiplying. Run from
the repository root:

    python tools/dask_task_cost.py [--tasks 2,25,100] [--repeat 9]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path


def noop(i):
    return i


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="2,25,100", help="task counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=9, help="rounds per count (default 9)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from harness.measuring.strategies import cluster

    spec = cluster.ClusterSpec()
    client = cluster.client(spec)
    try:
        print(f"{spec.label()}: medians of {args.repeat} rounds")
        for count in (int(n) for n in args.tasks.split(",")):
            times = []
            for _ in range(args.repeat + 1):
                started = time.perf_counter()
                client.gather(client.map(noop, range(count), pure=False))
                times.append(time.perf_counter() - started)
            ms = 1e3 * statistics.median(times[1:])
            print(f"  {count:4d} trivial tasks: {ms:7.1f} ms ({ms / count:.2f} ms a task)")
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
