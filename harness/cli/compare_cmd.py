"""``python -m harness compare A B``: two runs side by side with asv compare's verdicts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.results_args import (
    add_format_argument,
    add_strict_argument,
    add_verdict_arguments,
    load_results,
)

FAIL_ON = {"regressed": {"regressed"}, "failed": {"failed"}, "any": {"regressed", "failed"}}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare two runs (commits, result files or directories) like asv compare",
        description="Compare two sets of asv results with asv compare's statistics "
                    "(Mann-Whitney U on samples, else 99%% CI overlap, and --factor); memory "
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


def _side(spec: str, args: argparse.Namespace, cache: dict):
    """Results of one side: a path (one commit) or a commit prefix in --results."""
    from harness.reporting.compare import select_commit

    if Path(spec).exists():
        frame = load_results(args, [spec])
        if frame is not None and frame["commit"].nunique() > 1:
            commits = ", ".join(sorted(c[:8] for c in frame["commit"].unique()))
            raise ValueError(f"{spec} holds results of several commits ({commits}); give one "
                             "result file, or a commit prefix with --results DIR")
        return frame
    if "results" not in cache:
        if not Path(args.results).exists():
            raise ValueError(f"{spec!r} is neither a file nor a directory, and the results "
                             f"directory {args.results!r} for commit prefixes does not exist")
        cache["results"] = load_results(args, [args.results])
    if cache["results"] is None:
        return None
    return select_commit(cache["results"], spec)


def _one_machine(frame, machine: str | None, side: str):
    from harness.reporting.compare import select_machine

    try:
        return select_machine(frame, machine)
    except ValueError as exc:
        raise ValueError(f"{side}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from harness.reporting.compare import compare, compare_rows, orient
    from harness.reporting.report import markdown_table, text_table

    cache: dict = {}
    try:
        before = _side(args.before, args, cache)
        after = _side(args.after, args, cache)
        if before is None or after is None:
            return 2
        before = _one_machine(before, args.machine, "A")
        after = _one_machine(after, args.machine, "B")
        table = orient(compare(before, after, factor=args.factor,
                               use_stats=not args.no_stats))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.only_changed:
        table = table[table["verdict"].isin(["regressed", "improved", "failed"])]
    several_envs = table[["machine", "env_name"]].drop_duplicates().shape[0] > 1
    commit_before = before["commit"].iloc[0][:8]
    commit_after = after["commit"].iloc[0][:8]
    headers = ["Change", f"Before [{commit_before}]", f"After [{commit_after}]", "Ratio",
               "Difference", "Verdict", "Benchmark (Parameter)"]
    render = markdown_table if args.format == "md" else text_table
    print(render(headers, compare_rows(table, show_env=several_envs)))
    counts = table["verdict"].value_counts()
    print("\n" + ", ".join(f"{counts[v]} {v}" for v in counts.index))
    if args.fail_on and table["verdict"].isin(FAIL_ON[args.fail_on]).any():
        return 1
    return 0
