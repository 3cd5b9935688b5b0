"""Arguments and loading shared by the commands that read asv results (report, compare,
history, summary, envs, gate): one way to name results, one way to report unreadable files,
one way to ask for asv compare's factor and a table format."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings

from harness.cli.arg_types import positive_ratio


def add_paths_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", default=["results"], metavar="PATHS",
                        help="asv results directories, machine directories or result files "
                             "(default: results)")
    add_strict_argument(parser)


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


@contextlib.contextmanager
def reported_warnings():
    """Print the warnings raised inside the block (the result files the loader skipped, each
    named) to stderr as 'warning: ...' lines once it ends, instead of Python's format."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                print(f"warning: {warning.message}", file=sys.stderr)


def load_results(args: argparse.Namespace, paths=None):
    """The frame for ``paths`` (default ``args.paths``); None after printing an error."""
    from harness.reporting.results import ResultsFileError, load

    paths = paths if paths is not None else args.paths
    try:
        with reported_warnings():
            frame = load(*paths, strict=args.strict)
    except (FileNotFoundError, ResultsFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    if frame.empty:
        print(f"error: no asv results found in {', '.join(map(str, paths))}; run `make bench` "
              "or `asv run` first", file=sys.stderr)
        return None
    return frame
