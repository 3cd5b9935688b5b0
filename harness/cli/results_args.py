"""Arguments and loading shared by the commands that read asv results (report, compare,
history, summary): one way to name results, one way to report unreadable files."""

from __future__ import annotations

import argparse
import sys
import warnings


def add_paths_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", default=["results"], metavar="PATHS",
                        help="asv results directories, machine directories or result files "
                             "(default: results)")
    add_strict_argument(parser)


def add_strict_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first unreadable result file instead of skipping it")


def load_results(args: argparse.Namespace, paths=None):
    """The frame for ``paths`` (default ``args.paths``); None after printing an error."""
    from harness.results import ResultsFileError, load

    paths = paths if paths is not None else args.paths
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame = load(*paths, strict=args.strict)
    except (FileNotFoundError, ResultsFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    if frame.empty:
        print(f"error: no asv results found in {', '.join(map(str, paths))}; run `make bench` "
              "or `asv run` first", file=sys.stderr)
        return None
    return frame
