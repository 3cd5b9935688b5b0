"""``python -m harness report``: asv results -> Markdown, HTML, CSV, Parquet or JSON."""

from __future__ import annotations

import argparse
import sys

from harness.cli.results_args import add_paths_argument, error_exit, load_results


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="render asv results: the answer per problem, figures, full tables",
        description="Load asv results (any project, api version 2) and render a report: first "
                    "the answer per problem (fastest strategy, fastest within memory budgets, "
                    "least memory, with their costs), then the figures our suite allows "
                    "(interactive in HTML, with plotly.js embedded: time vs memory with Pareto "
                    "fronts, ratio to the in-RAM product, HDF5 chunk x cache heatmaps, cold vs "
                    "warm, roofline, memory split, history), then a summary per benchmark "
                    "family, the regressions asv publish would list and the full tables "
                    "(sortable and filterable in HTML).")
    add_paths_argument(parser)
    parser.add_argument("--format", "-f", choices=("md", "html", "csv", "parquet", "json"),
                        default=None, help="output format (default: from -o's extension, "
                                           "else md)")
    parser.add_argument("-o", "--output", default=None,
                        help="file to write (atomically); default standard output")
    parser.add_argument("--title", default="Benchmark report", help="report title")
    parser.add_argument("--no-plots", action="store_true", help="leave the figures out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.reporting.report import output_format, render, write_report

    try:
        fmt = output_format(args.format, args.output)
    except ValueError as exc:
        return error_exit(exc)
    frame = load_results(args)
    if frame is None:
        return 2
    if args.output:
        path = write_report(frame, args.output, fmt, title=args.title, plots=not args.no_plots)
        print(f"wrote {path} ({len(frame)} results, format {fmt})", file=sys.stderr)
    else:
        sys.stdout.write(render(frame, fmt, title=args.title, plots=not args.no_plots))
    return 0
