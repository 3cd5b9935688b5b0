"""``python -m harness compare A B``: two runs side by side with asv compare's verdicts."""

from __future__ import annotations

import argparse

from harness.cli.results_args import (
    add_format_argument,
    add_strict_argument,
    add_verdict_arguments,
    error_exit,
    reported_warnings,
)

FAIL_ON = {"regressed": {"regressed"}, "failed": {"failed"}, "any": {"regressed", "failed"}}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare two runs (commits, result files or directories) like asv compare",
        description="Compare two sets of asv results with asv compare's statistics "
                    "(Mann-Whitney U on samples, else 99% CI overlap, and --factor); memory "
                    "differences are shown in bytes as well as by ratio; for GB/s, where more "
                    "is better, a fall is marked '+' (asv would mark it '-'). A and B are commit "
                    "prefixes (looked up in --results), result files or directories holding "
                    "one commit.")
    parser.add_argument("before", metavar="A", help="the reference: commit prefix, file or dir")
    parser.add_argument("after", metavar="B", help="the run judged: commit prefix, file or dir")
    parser.add_argument("--results", default="results",
                        help="results directory for commit prefixes (default: results)")
    add_verdict_arguments(parser)
    parser.add_argument("--machine", default=None, help="machine to compare when several")
    add_format_argument(parser)
    parser.add_argument("--fail-on", choices=sorted(FAIL_ON), default=None,
                        help="exit with status 1 when any result has this verdict")
    add_strict_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.reporting.compare import (
        compare_rows,
        only_changed,
        several_environments,
        verdict_counts,
    )
    from harness.reporting.report import format_table
    from harness.reporting.runs import compare_runs

    try:
        with reported_warnings():
            comparison = compare_runs(args.before, args.after, results_dir=args.results,
                                      machine=args.machine, factor=args.factor,
                                      use_stats=not args.no_stats, strict=args.strict)
    except (ValueError, FileNotFoundError) as exc:
        return error_exit(exc)
    table = only_changed(comparison.table) if args.only_changed else comparison.table
    rows = compare_rows(table, show_env=several_environments(table))
    print(format_table(args.format, comparison.headers(), rows))
    print("\n" + verdict_counts(table))
    if args.fail_on and table["verdict"].isin(FAIL_ON[args.fail_on]).any():
        return 1
    return 0
