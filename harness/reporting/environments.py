"""Environments side by side at one commit: what a dependency version costs.

An asv ``matrix`` (see ``asv.matrix.json``) runs the suite once per environment, e.g. two h5py
versions; asv files each run under its own environment name. ``compare_environments`` takes
one commit's results, picks a baseline environment and judges every other environment against
it with ``harness.reporting.compare.compare`` (asv compare's statistics and ``factor``), so "h5py 3.12 is
1.3x slower on hdf5-rows" reads like a regression between commits.
"""

from __future__ import annotations

import pandas as pd

from harness.reporting.compare import (
    compare,
    compare_headers,
    orient,
    select_commit,
    select_machine,
)


def environments(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (machine, environment): python, requirements (as 'name==version' text),
    how many commits and results it has. Sorted by machine and environment name."""
    if frame.empty:
        return pd.DataFrame(columns=["machine", "env_name", "python", "requirements",
                                     "commits", "results"])
    rows = []
    for (machine, env_name), group in frame.groupby(["machine", "env_name"], sort=True):
        requirements = group["requirements"].iloc[0] or {}
        rows.append({
            "machine": machine, "env_name": env_name, "python": group["python"].iloc[0],
            "requirements": requirements_text(requirements),
            "commits": group["commit"].nunique(), "results": len(group)})
    return pd.DataFrame(rows)


#: ``compare_headers`` for one environment against the baseline.
HEADERS = compare_headers("Baseline", "Environment")


def listing_table(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and text rows of the ``environments`` listing of a results frame."""
    headers = ["machine", "environment", "python", "requirements", "commits", "results"]
    return headers, environments(frame).astype(str).values.tolist()


def requirements_text(requirements: dict) -> str:
    """{'h5py': '3.12.1', 'numpy': ''} -> 'h5py==3.12.1 numpy' (asv's '' = latest)."""
    return " ".join(f"{name}=={version}" if version else str(name)
                    for name, version in sorted(requirements.items())) or "-"


def newest_shared_commit(frame: pd.DataFrame) -> str:
    """The newest commit (by commit date) with results from two or more environments of one
    machine."""
    counts = (frame.groupby(["commit", "machine"])
              .agg(envs=("env_name", "nunique"), date=("date", "max"))
              .reset_index(level="machine", drop=True))
    shared = counts[counts["envs"] >= 2].sort_values("date", kind="stable")
    if shared.empty:
        raise ValueError("no commit has results from two environments; run the suite with an "
                         "asv matrix (e.g. asv run --config asv.matrix.json HEAD^!)")
    return shared.index[-1]


def pick_environment(names: list[str], wanted: str) -> str:
    """The environment named ``wanted``, or the only one containing it (e.g. 'h5py3.11')."""
    if wanted in names:
        return wanted
    matches = [name for name in names if wanted in name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ValueError(f"no environment matches {wanted!r}; environments: {', '.join(names)}")
    raise ValueError(f"{wanted!r} matches several environments ({', '.join(matches)}); "
                     "give more of the name")


def compare_environments(frame: pd.DataFrame, commit: str | None = None,
                         baseline: str | None = None, machine: str | None = None,
                         factor: float = 1.1, use_stats: bool = True) -> pd.DataFrame:
    """Every environment against ``baseline`` at one commit of one machine.

    ``commit``: a hash prefix (default: ``newest_shared_commit``). ``baseline``: an environment
    name or a unique part of one (default: the first name in sorted order). ``machine``:
    required when the commit has results from several machines. ``factor``/``use_stats``: as
    ``harness.reporting.compare.compare``.

    Returns ``compare``'s columns (``value_before`` = baseline, ``value_after`` = the
    environment; ``ratio`` = environment / baseline; ``verdict``: ``regressed`` means slower,
    bigger or (GB/s) less throughput than the baseline: see ``harness.reporting.compare.orient``) plus ``baseline_env`` and ``env``, one block per other
    environment. ValueError with the choices when a selection is missing or ambiguous.
    """
    if machine is not None:
        frame = select_machine(frame, machine)
    at_commit = select_machine(select_commit(frame, commit if commit is not None else
                                             newest_shared_commit(frame)))
    names = sorted(at_commit["env_name"].unique())
    if len(names) < 2:
        raise ValueError(f"commit {at_commit['commit'].iloc[0][:8]} has results from one "
                         f"environment only ({names[0]}); nothing to compare")
    base = pick_environment(names, baseline) if baseline is not None else names[0]
    before = at_commit[at_commit["env_name"] == base]
    tables = []
    for name in names:
        if name == base:
            continue
        after = at_commit[at_commit["env_name"] == name]
        table = compare(before, after, factor=factor, use_stats=use_stats,
                        match_environment=False)
        tables.append(orient(table).assign(baseline_env=base, env=name))
    return pd.concat(tables, ignore_index=True)


def against_baseline(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """A ``compare_environments`` table cut into one block per environment, each with its
    title: '<env> against <baseline> at commit <hash[:8]>' ('?' when no row has a result)."""
    commits = table["commit_after"].dropna()
    commit = str(commits.iloc[0])[:8] if len(commits) else "?"
    return [(f"{env} against {block['baseline_env'].iloc[0]} at commit {commit}", block)
            for env, block in table.groupby("env", sort=True)]
