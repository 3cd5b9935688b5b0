"""``python -m harness envs``: environments (e.g. an asv matrix of h5py versions) compared at
one commit, with asv compare's verdicts."""

from __future__ import annotations

import argparse

from harness.cli.results_args import (
    add_format_argument,
    add_paths_argument,
    add_verdict_arguments,
    error_exit,
    load_results,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "envs", help="compare environments (dependency versions) at one commit",
        description="List the environments that have results, then judge each one against a "
                    "baseline environment at one commit with asv compare's statistics and "
                    "--factor: 'regressed' means slower (or more memory) than the baseline. "
                    "Environments come from an asv matrix, e.g. `asv run --config "
                    "asv.matrix.json HEAD^!` (two h5py versions).")
    add_paths_argument(parser)
    parser.add_argument("--commit", default=None,
                        help="commit hash prefix (default: the newest commit with results "
                             "from two or more environments)")
    parser.add_argument("--baseline", default=None,
                        help="baseline environment: its name or a unique part of it, e.g. "
                             "h5py3.11 (default: the first name in sorted order)")
    parser.add_argument("--machine", default=None, help="machine, when several have results")
    add_verdict_arguments(parser)
    add_format_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.reporting import environments as envs
    from harness.reporting.compare import compare_rows, only_changed, verdict_counts
    from harness.reporting.report import format_table

    frame = load_results(args)
    if frame is None:
        return 2
    print(format_table(args.format, *envs.listing_table(frame)))
    try:
        table = envs.compare_environments(frame, commit=args.commit, baseline=args.baseline,
                                          machine=args.machine, factor=args.factor,
                                          use_stats=not args.no_stats)
    except ValueError as exc:
        return error_exit(exc, lead="\n")
    if args.only_changed:
        table = only_changed(table)
    for title, block in envs.against_baseline(table):
        print(f"\n{title}:")
        print(format_table(args.format, envs.HEADERS, compare_rows(block)))
        print(verdict_counts(block))
    return 0
