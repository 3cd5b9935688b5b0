"""Two runs side by side: find each one, compare them with asv compare's statistics.

A run is named by a result file, a directory holding one commit's results, or a commit hash
prefix looked up in a results directory (loaded once for both sides). Each side is narrowed to
one machine, then ``harness.reporting.compare.compare`` judges the second against the first and
``orient`` turns the verdicts round for units where more is better (GB/s).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.reporting.compare import (
    compare,
    compare_headers,
    orient,
    select_commit,
    select_machine,
)
from harness.reporting.results import load_nonempty


@dataclass(frozen=True)
class Comparison:
    """Two runs and asv compare's table of them (``compare`` then ``orient``)."""

    before: pd.DataFrame  # one commit, one machine
    after: pd.DataFrame
    table: pd.DataFrame

    def headers(self) -> list[str]:
        """``compare_headers`` with each side's commit: 'Before [abcdef12]', 'After [...]'."""
        return compare_headers(*(f"{label} [{side['commit'].iloc[0][:8]}]" for label, side in
                                 (("Before", self.before), ("After", self.after))))


class RunFinder:
    """Finds runs by path or by commit prefix in ``results_dir`` (loaded on first use, once).

    ``strict``: stop at the first unreadable result file instead of skipping it (with a
    warning naming it).
    """

    def __init__(self, results_dir: str | os.PathLike = "results", strict: bool = False):
        self.results_dir, self.strict = results_dir, strict
        self._results: pd.DataFrame | None = None

    def find(self, spec: str) -> pd.DataFrame:
        """The results of one run: ``spec`` is a result file or a directory of one commit's
        results, else a commit prefix. ValueError naming the problem."""
        if Path(spec).exists():
            frame = load_nonempty(spec, strict=self.strict)
            if frame["commit"].nunique() > 1:
                commits = ", ".join(sorted(c[:8] for c in frame["commit"].unique()))
                raise ValueError(f"{spec} holds results of several commits ({commits}); give "
                                 "one result file, or a commit prefix with --results DIR")
            return frame
        if self._results is None:
            if not Path(self.results_dir).exists():
                raise ValueError(f"{spec!r} is neither a file nor a directory, and the results "
                                 f"directory {str(self.results_dir)!r} for commit prefixes "
                                 "does not exist")
            self._results = load_nonempty(self.results_dir, strict=self.strict)
        return select_commit(self._results, spec)


def compare_runs(before: str, after: str, results_dir: str | os.PathLike = "results",
                 machine: str | None = None, factor: float = 1.1, use_stats: bool = True,
                 strict: bool = False) -> Comparison:
    """Run ``after`` judged against run ``before`` (each a path or a commit prefix, see
    ``RunFinder``) on one machine (``machine``, or the only one each side has).

    ``factor``/``use_stats``: as ``harness.reporting.compare.compare``. Raises ValueError
    (``ResultsFileError`` and ``NoResultsError`` among them) or FileNotFoundError, each naming
    the side or file at fault.
    """
    finder = RunFinder(results_dir, strict=strict)
    found = [finder.find(before), finder.find(after)]
    sides = []
    for label, frame in zip(("A", "B"), found):
        try:
            sides.append(select_machine(frame, machine))
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
    table = orient(compare(sides[0], sides[1], factor=factor, use_stats=use_stats))
    return Comparison(sides[0], sides[1], table)
