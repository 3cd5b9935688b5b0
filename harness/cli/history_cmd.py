"""``python -m harness history``: values over commits, or the regressions asv publish lists."""

from __future__ import annotations

import argparse
import json

from harness.cli.results_args import add_bench_argument, add_paths_argument, load_results
from harness.reporting.history import HISTORY_COMMITS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "history", help="results over commits; --regressions lists regressions like asv publish",
        description=f"Show each benchmark's values over the {HISTORY_COMMITS} newest commits, "
                    "or with "
                    "--regressions the lasting regressions found by asv's step detection "
                    "(the list asv publish writes to regressions.json).")
    add_paths_argument(parser)
    parser.add_argument("--regressions", action="store_true", help="list regressions")
    parser.add_argument("--threshold", type=float, default=0.05,
                        help="relative step size to report (default 0.05, as asv)")
    add_bench_argument(parser)
    parser.add_argument("--include-stale", action="store_true",
                        help="keep benchmarks no longer listed in benchmarks.json")
    parser.add_argument("--format", "-f", choices=("text", "md", "json"), default="text",
                        help="aligned text, a Markdown table or JSON records (default: text)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.reporting import history
    from harness.reporting.compare import regressions
    from harness.reporting.report import format_table, regression_rows

    frame = load_results(args)
    if frame is None:
        return 2
    if args.regressions:
        found = regressions(frame, threshold=args.threshold, include_stale=args.include_stale)
        if args.format == "json":
            print(json.dumps(history.regression_records(found), indent=1, default=str))
        elif found.empty:
            print("No lasting regressions.")
        else:
            print(format_table(args.format, *regression_rows(found)))
        return 0
    if args.format == "json":
        print(json.dumps(history.history_records(frame), indent=1, default=str))
    else:
        print(format_table(args.format, *history.history_table(frame)))
    return 0
