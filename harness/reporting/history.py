"""Benchmarks over commits: each series' values at the newest commits, as a table or as
records.

A series is one benchmark combination (asv's label) on one machine and environment; commits
are ordered by commit date. Values are shown as asv shows them ('3.09ms', '97M', '12.5 GB/s');
a result that is not ok shows its status (failed, skipped). The lasting regressions of the
same history are ``harness.reporting.compare.regressions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.units import human_value

if TYPE_CHECKING:  # frames come from the caller: importing this module stays cheap
    import pandas as pd

HISTORY_COMMITS = 8  # newest commits shown per series


def newest_commits(frame: pd.DataFrame, count: int = HISTORY_COMMITS) -> list[str]:
    """The ``count`` newest commits of a results frame (by commit date), oldest first."""
    return list(frame.groupby("commit")["date"].min().sort_values().index[-count:])


def history_table(frame: pd.DataFrame, count: int = HISTORY_COMMITS
                  ) -> tuple[list[str], list[list[str]]]:
    """Headers and rows: one row per series, one column per commit of ``newest_commits``
    (empty where the series has no result at that commit)."""
    commits = newest_commits(frame, count)
    recent = frame[frame["commit"].isin(commits)]
    headers = ["benchmark (parameters)", "machine/env"] + [c[:8] for c in commits]
    rows = []
    for (entry, machine, env), series in recent.groupby(["entry_name", "machine", "env_name"],
                                                        sort=True):
        by_commit = {row["commit"]: (row["status"] if row["status"] != "ok" else
                                     human_value(row["value"], row["unit"]))
                     for _, row in series.iterrows()}
        rows.append([entry, f"{machine}/{env}"] + [by_commit.get(c, "") for c in commits])
    return headers, rows


def history_records(frame: pd.DataFrame, count: int = HISTORY_COMMITS) -> list[dict]:
    """The results of ``newest_commits`` as records (label, machine, env, commit, date in
    ISO format, value in ``unit``, status), for strict JSON (a missing value is null)."""
    from harness.reporting.report import json_value

    recent = frame[frame["commit"].isin(newest_commits(frame, count))]
    records = recent[["entry_name", "machine", "env_name", "commit", "date", "value", "unit",
                      "status"]]
    return [{k: json_value(v) for k, v in row.items()} for row in records.to_dict("records")]


def regression_records(found: pd.DataFrame) -> list[dict]:
    """A ``regressions`` table as records for JSON (dates in ISO format, no params dict)."""
    records = found.drop(columns=["params"]).assign(
        date_after=found["date_after"].map(lambda d: d.isoformat()))
    return records.to_dict("records")
