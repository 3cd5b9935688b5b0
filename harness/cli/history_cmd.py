"""``python -m harness history``: values over commits, or the regressions asv publish lists."""

from __future__ import annotations

import argparse
import json
import re
import sys

from harness.cli.results_args import add_paths_argument, load_results

HISTORY_COMMITS = 8  # newest commits shown per series in the value table


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
    parser.add_argument("--bench", "-b", default=None,
                        help="regular expression on benchmark names to keep")
    parser.add_argument("--include-stale", action="store_true",
                        help="keep benchmarks no longer listed in benchmarks.json")
    parser.add_argument("--format", "-f", choices=("text", "md", "json"), default="text",
                        help="aligned text, a Markdown table or JSON records (default: text)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.reporting.compare import regressions
    from harness.reporting.report import markdown_table, regression_rows, text_table
    from harness.units import human_value

    frame = load_results(args)
    if frame is None:
        return 2
    if args.bench:
        try:
            pattern = re.compile(args.bench)
        except re.error as exc:
            print(f"error: --bench {args.bench!r} is not a regular expression: {exc}",
                  file=sys.stderr)
            return 2
        frame = frame[frame["benchmark"].map(lambda name: bool(pattern.search(name)))]
    render = markdown_table if args.format == "md" else text_table
    if args.regressions:
        found = regressions(frame, threshold=args.threshold, include_stale=args.include_stale)
        if args.format == "json":
            records = found.drop(columns=["params"]).assign(
                date_after=found["date_after"].map(lambda d: d.isoformat()))
            print(json.dumps(records.to_dict("records"), indent=1, default=str))
        elif found.empty:
            print("No lasting regressions.")
        else:
            print(render(*regression_rows(found)))
        return 0
    commits = (frame.groupby("commit")["date"].min().sort_values().index[-HISTORY_COMMITS:])
    recent = frame[frame["commit"].isin(commits)]
    if args.format == "json":
        records = recent[["entry_name", "machine", "env_name", "commit", "date", "value",
                          "unit", "status"]].assign(date=recent["date"].map(str))
        print(json.dumps(records.to_dict("records"), indent=1, default=str))
        return 0
    headers = ["benchmark (parameters)", "machine/env"] + [c[:8] for c in commits]
    rows = []
    for (entry, machine, env), series in recent.groupby(["entry_name", "machine", "env_name"],
                                                        sort=True):
        by_commit = {row["commit"]: (row["status"] if row["status"] != "ok" else
                                     human_value(row["value"], row["unit"]))
                     for _, row in series.iterrows()}
        rows.append([entry, f"{machine}/{env}"] + [by_commit.get(c, "") for c in commits])
    print(render(headers, rows))
    return 0
