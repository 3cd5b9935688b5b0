"""``python -m harness envs``: environments (e.g. an asv matrix of h5py versions) compared at
one commit, with asv compare's verdicts."""

from __future__ import annotations

import argparse
import sys

from harness.cli.results_args import (
    add_format_argument,
    add_paths_argument,
    add_verdict_arguments,
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
    from harness.reporting.compare import compare_rows
    from harness.reporting.environments import compare_environments, environments
    from harness.reporting.report import markdown_table, text_table

    frame = load_results(args)
    if frame is None:
        return 2
    render = markdown_table if args.format == "md" else text_table
    listing = environments(frame)
    print(render(["machine", "environment", "python", "requirements", "commits", "results"],
                 listing.astype(str).values.tolist()))
    try:
        table = compare_environments(frame, commit=args.commit, baseline=args.baseline,
                                     machine=args.machine, factor=args.factor,
                                     use_stats=not args.no_stats)
    except ValueError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    if args.only_changed:
        table = table[table["verdict"].isin(["regressed", "improved", "failed"])]
    commit = str(table["commit_after"].dropna().iloc[0])[:8] if table["commit_after"].notna().any() \
        else "?"
    for env, block in table.groupby("env", sort=True):
        baseline = block["baseline_env"].iloc[0]
        print(f"\n{env} against {baseline} at commit {commit}:")
        headers = ["Change", "Baseline", "Environment", "Ratio", "Difference", "Verdict",
                   "Benchmark (Parameter)"]
        print(render(headers, compare_rows(block)))
        counts = block["verdict"].value_counts()
        print(", ".join(f"{counts[v]} {v}" for v in counts.index))
    return 0
