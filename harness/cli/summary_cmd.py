"""``python -m harness summary``: the short per-family table that ``make bench`` prints."""

from __future__ import annotations

import argparse

from harness import names
from harness.cli.results_args import add_paths_argument, error_exit, load_results


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "summary",
        help="per family: fastest strategy, its time, peak increment and ratio to dense",
        description=(
            "Summarize one asv run of the harness suite: per family and problem, the fastest "
            f"strategy (asv {names.TIME}), its peak memory increment and its ratio to "
            f"{names.REFERENCE_FAMILY}. "
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
    from harness.reporting.summary import summarize_latest

    frame = load_results(args)
    if frame is None:
        return 2
    try:
        summary = summarize_latest(frame, machine=args.machine, commit=args.commit)
    except ValueError as exc:
        return error_exit(exc)
    print(summary.to_json() if args.format == "json" else summary.to_text())
    return 0
