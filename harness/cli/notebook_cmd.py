"""``python -m harness notebook``: the 2017 notebook's measured claims, replayed on this machine.

Per claim: the notebook's figure, ours with the harness's meter (and, where the notebook used
``%memit``, ``memory_profiler``'s 10 Hz sampler on the same cell), the verdict (reproduced,
different, wrong) and why. ``--quick`` divides the column counts by 100 (seconds instead of
minutes; the notebook's figures are scaled alike where they scale). The work is
``harness.measuring.runs.notebook``; this module parses and prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "notebook", help="replay the claims of the 2017 memory-mapping notebook, with verdicts",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="columns divided by 100 (a few seconds)")
    p.add_argument("--repeat", type=int, default=None,
                   help="timed passes per timing (default 5, 1 with --quick)")
    p.add_argument("--data-dir", default=None, help="where datasets are cached (default $HARNESS_DATA_DIR)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.measuring.runs.notebook import format_rows, replay

    if args.repeat is not None and args.repeat < 1:
        print("error: --repeat must be >= 1", file=sys.stderr)
        return 2
    rows = replay(quick=args.quick, root=args.data_dir, repeat=args.repeat,
                  progress=lambda line: print(line, file=sys.stderr, flush=True))
    if args.format == "json":
        print(json.dumps([dataclasses.asdict(row) for row in rows], indent=1))
    else:
        print(format_rows(rows))
    return 0
