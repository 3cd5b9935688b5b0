"""The gate's inputs: the stored results of BASE and HEAD on one machine, and the benchmarks
chosen by regular expression.

Reads only the two commits' files (``<machine>/<hash[:8]>-<env>.json``, asv's names) with
``harness.reporting.results.load``; a commit without results is a ``GateError`` naming the run
that would make them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from harness.reporting.compare import select_commit, select_machine
from harness.reporting.gate.errors import GateError
from harness.reporting.results import load, select_matching


def load_pair(results_dir: str | os.PathLike, base: str, head: str, machine: str | None = None,
              environments: Iterable[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The results of commits ``base`` and ``head`` (full hashes) on one machine.

    ``machine``: None takes the only machine that has results for either commit.
    ``environments``: keep only these env names (the ones the gate ran); None keeps all, and
    ``harness.reporting.compare.compare`` matches them by name.
    """
    results = Path(results_dir)
    if not results.is_dir():
        raise GateError(f"no asv results directory {results}; run without --no-run, or check "
                        "results_dir in the asv configuration")
    files = sorted({path for commit in (base, head)
                    for path in results.glob(f"*/{commit[:8]}-*.json")})
    frame = load(*files) if files else pd.DataFrame(columns=["commit", "machine", "env_name"])
    if environments is not None:
        frame = frame[frame["env_name"].isin(list(environments))]
    if machine is not None or frame["machine"].nunique() > 1:
        try:
            frame = select_machine(frame, machine)
        except ValueError as exc:
            raise GateError(str(exc)) from None
    sides = []
    for label, commit in (("BASE", base), ("HEAD", head)):
        rows = frame[frame["commit"] == commit]
        if rows.empty:
            where = f" on machine {machine!r}" if machine else ""
            raise GateError(f"no results for {label} {commit[:8]}{where} in {results}; run the "
                            "gate without --no-run (or asv run) for that commit")
        sides.append(select_commit(rows, commit))
    return sides[0], sides[1]


def select_benchmarks(frame: pd.DataFrame, patterns: Iterable[str]) -> pd.DataFrame:
    """Rows whose asv label (``name(param, ...)``) matches any of the regular expressions, as
    ``asv run --bench`` selects them (``re.search``); all rows when there are none."""
    return select_matching(frame, patterns, column="entry_name")


def load_selected(results_dir: str | os.PathLike, base: str, head: str,
                  machine: str | None = None, environments: Iterable[str] | None = None,
                  bench: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``load_pair`` narrowed to the benchmarks ``bench`` selects (``select_benchmarks``); a
    GateError when neither side has any of them."""
    before, after = (select_benchmarks(side, bench) for side in
                     load_pair(results_dir, base, head, machine=machine,
                               environments=environments))
    if before.empty and after.empty:
        raise GateError(f"no results match --bench {' '.join(bench)}")
    return before, after
