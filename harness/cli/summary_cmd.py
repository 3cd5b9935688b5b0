"""``python -m harness summary``: the short per-family table that ``make bench`` prints."""

from __future__ import annotations

import argparse
import json
import sys

from harness.cli.results_args import add_paths_argument, load_results


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "summary",
        help="per family: fastest strategy, its time, peak increment and ratio to dense",
        description=(
            "Summarize one asv run of the harness suite: per family and problem, the fastest "
            "strategy (asv time_matvec), its peak memory increment and its ratio to dense. "
            "Reads the most recent result file unless --commit/--machine narrow it."
        ),
    )
    add_paths_argument(parser)
    parser.add_argument("--commit", help="commit hash prefix of the run to summarize")
    parser.add_argument("--machine", help="asv machine name of the run to summarize")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="the table as text (also valid Markdown) or JSON (default: text)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.reporting import summary

    frame = load_results(args)
    if frame is None:
        return 2
    try:
        one_run = summary.latest_run(frame, machine=args.machine, commit=args.commit)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = summary.summarize(one_run)
    limits = summary.roofline(one_run)
    source = one_run["file"].iloc[0]
    if args.format == "json":
        print(json.dumps({"rows": json.loads(table.to_json(orient="records")),
                          "roofline": limits, "file": str(source)}, indent=1))
    else:
        print(summary.render_text(table, limits, source))
    return 0
