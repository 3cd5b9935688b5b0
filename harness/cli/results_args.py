"""Arguments and loading shared by the commands that read asv results (report, compare,
history, summary, envs, gate): one way to name results (and pick benchmarks), one way to report
unreadable files and errors, one way to ask for asv compare's factor and a table format."""

from __future__ import annotations

import argparse
import contextlib
import sys

from harness.cli.arg_types import positive_ratio


def add_paths_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", default=["results"], metavar="PATHS",
                        help="asv results directories, machine directories or result files "
                             "(default: results)")
    add_strict_argument(parser)


def add_bench_argument(parser: argparse.ArgumentParser) -> None:
    """--bench: the benchmarks ``load_results`` keeps, by a regular expression on their names."""
    parser.add_argument("--bench", "-b", default=None,
                        help="regular expression on benchmark names to keep")


def add_strict_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first unreadable result file instead of skipping it")


def add_verdict_arguments(parser: argparse.ArgumentParser) -> None:
    """asv compare's --factor and --no-stats, and --only-changed for the table."""
    parser.add_argument("--factor", type=positive_ratio, default=1.1,
                        help="minimum ratio that counts as a change (default 1.1, as asv)")
    parser.add_argument("--no-stats", action="store_true",
                        help="judge by --factor alone (asv compare --no-stats)")
    parser.add_argument("--only-changed", action="store_true",
                        help="show only regressed, improved and failed results")


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", "-f", choices=("text", "md"), default="text",
                        help="aligned text for a terminal or a Markdown table (default: text)")


def error_exit(message: object, lead: str = "") -> int:
    """Print 'error: MESSAGE' to stderr (after ``lead``, e.g. a blank line) and return 2, the
    exit status of a command that cannot do its job."""
    print(f"{lead}error: {message}", file=sys.stderr)
    return 2


@contextlib.contextmanager
def reported_warnings():
    """Print the warnings raised inside the block (the result files the loader skipped, each
    named) to stderr as 'warning: ...' lines once it ends, instead of Python's format."""
    from harness.reporting.results import forwarded_warnings

    with forwarded_warnings(lambda message: print(f"warning: {message}", file=sys.stderr)):
        yield


def load_results(args: argparse.Namespace):
    """The frame for ``args.paths``, narrowed to ``args.bench`` when the command has that
    argument (``add_bench_argument``); None after printing an error (unreadable file with
    --strict, missing path, no results at all, a --bench that is not a regular expression)."""
    from harness.reporting.results import load_nonempty, select_matching

    bench = getattr(args, "bench", None)
    try:
        with reported_warnings():
            frame = load_nonempty(*args.paths, strict=args.strict)
        return select_matching(frame, [bench] if bench else [], column="benchmark")
    except (FileNotFoundError, ValueError) as exc:  # ResultsFileError, NoResultsError
        error_exit(exc)
        return None
