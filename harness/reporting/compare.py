"""Judge asv results held in ``harness.reporting.results`` frames: run vs run, history, summaries.

The verdicts reuse asv 0.6.6's own code so that they agree with asv: ``compare`` walks the same
decision ladder as ``asv compare`` and calls its ``_is_result_better`` (Mann-Whitney U on the
samples where both sides have enough of them, else 99% confidence-interval overlap, and the
``factor``); ``regressions`` feeds each series to ``asv.step_detect`` with asv's weights, as
``asv publish`` does for ``regressions.json``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from asv import _stats as asv_stats
from asv import step_detect
from asv.commands.compare import _is_result_better
from asv_runner.statistics import get_err

from harness.names import benchmark_class
from harness.units import human_difference, human_value

# asv compare's change marks -> our verdicts. asv shows ' ' for several cases that we name:
# unchanged, new (no result before), gone (no result after), skipped, failed (both failed).
VERDICTS = ("regressed", "improved", "unchanged", "failed", "new", "gone", "skipped",
            "incomparable")
# The verdicts that mean something changed (``only_changed``, ``geomean_summary``'s counts).
CHANGED_VERDICTS = ("regressed", "improved", "failed")
VERDICT_MARKS = {
    "regressed": {"+"},
    "improved": {"-", "*"},  # '*': asv's "fixed a failure", which asv counts as improved
    "failed": {"!", " "},  # ' ': failed before and after
    "unchanged": {" "},
    "new": {" ", "!", "*"},
    "gone": {" ", "!", "*"},
    "skipped": {" ", "!", "*"},
    "incomparable": {"x"},  # benchmark code version changed
}
KEY = ["entry_name", "machine", "env_name"]
# Units where more is better. asv 0.6 has no such notion: its marks call every rise '+'
# (worse), so a throughput drop would read "improved". ``orient`` turns those rows around.
HIGHER_IS_BETTER_UNITS = frozenset({"GB/s"})
STATS_KEYS = {"ci_99_low": "ci_99_a", "ci_99_high": "ci_99_b", "q_25": "q_25",
              "q_75": "q_75", "number": "number", "repeat": "repeat"}
SIDE_COLUMNS = ["value", "status", "commit", "date", "version", "samples", "file"]


def compare(before: pd.DataFrame, after: pd.DataFrame, factor: float = 1.1,
            use_stats: bool = True, match_environment: bool | None = None) -> pd.DataFrame:
    """One row per benchmark x parameters (x machine/env) with both values and asv's verdict.

    ``before``/``after``: frames from ``harness.reporting.results.load`` holding one result per benchmark
    combination (select one commit each, e.g. with ``select_commit``). ``factor``: the minimum
    ratio that counts as a change (asv's ``--factor``). ``use_stats``: asv's statistical test
    (off = ``asv compare --no-stats``). ``match_environment``: match rows on machine and
    environment as asv does; ``None`` does so unless each side is one different environment
    (then two environments are being compared).

    Columns: the key and parameter columns, ``value_before``/``value_after`` (in ``unit``),
    ``err_before``/``err_after`` (half the interquartile range, as asv shows after '±'),
    ``status_*``, ``commit_*``, ``ratio`` (after / before), ``difference`` (after - before, in
    ``unit``: bytes for memory), ``mark`` (asv compare's change mark), ``ratio_text`` (asv's, with
    '~' for a change past ``factor`` that is not significant) and ``verdict`` (see VERDICTS).
    """
    if factor <= 0 or not math.isfinite(factor):
        raise ValueError(f"factor must be a positive number such as 1.1, got {factor!r}")
    if match_environment is None:
        envs_before = set(zip(before["machine"], before["env_name"]))
        envs_after = set(zip(after["machine"], after["env_name"]))
        match_environment = not (len(envs_before) == 1 and len(envs_after) == 1
                                 and envs_before != envs_after)
    key = KEY if match_environment else ["entry_name"]
    _check_unique(before, key, "before")
    _check_unique(after, key, "after")
    descriptive = [c for c in before.columns if c not in SIDE_COLUMNS and c not in STATS_KEYS]
    left = before.set_index(key)
    right = after.set_index(key)
    joined_index = left.index.union(right.index, sort=False)
    rows = []
    for index_value in joined_index:
        a = left.loc[index_value] if index_value in left.index else None
        b = right.loc[index_value] if index_value in right.index else None
        rows.append(_compare_row(a, b, factor, use_stats))
    table = pd.DataFrame(rows, index=joined_index).reset_index()
    # Descriptive columns (benchmark, unit, params...) from whichever side has the row.
    info = pd.concat([after, before]).drop_duplicates(subset=key)
    info = info[descriptive]
    merged = table.merge(info, on=key, how="left", suffixes=("", "_info"))
    order = ["benchmark", "entry_name", "type", "unit", "machine", "env_name"]
    order += [c for c in merged.columns if c.startswith("param_") and c != "raw_params"]
    order += ["value_before", "value_after", "err_before", "err_after", "status_before",
              "status_after", "commit_before", "commit_after", "ratio", "ratio_text",
              "difference", "mark", "verdict", "params"]
    return merged[[c for c in order if c in merged.columns]].sort_values(
        ["benchmark", "entry_name"], kind="stable").reset_index(drop=True)


def orient(table: pd.DataFrame) -> pd.DataFrame:
    """A ``compare`` table whose marks and verdicts read the right way round for units where
    more is better (``HIGHER_IS_BETTER_UNITS``): a fall in GB/s is '+' and "regressed". Other
    rows, and asv's '*' (a failure fixed), are unchanged; ``compare`` itself stays asv's."""
    turned = table.copy()
    flip = turned["unit"].isin(HIGHER_IS_BETTER_UNITS) & turned["mark"].isin(["+", "-"])
    turned.loc[flip, "mark"] = turned.loc[flip, "mark"].replace({"+": "-", "-": "+"})
    turned.loc[flip, "verdict"] = turned.loc[flip, "verdict"].replace(
        {"regressed": "improved", "improved": "regressed"})
    return turned


def _check_unique(frame: pd.DataFrame, key: list[str], side: str) -> None:
    duplicated = frame.duplicated(subset=key, keep=False)
    if duplicated.any():
        example = frame.loc[duplicated, "entry_name"].iloc[0]
        commits = sorted(set(frame.loc[duplicated, "commit"].dropna().str[:8]))
        raise ValueError(
            f"{side}: several results for {example!r} (commits {', '.join(commits)}); select "
            "one commit per side, e.g. harness.reporting.compare.select_commit(frame, '<prefix>')"
        )


def _stats_and_samples(row: pd.Series | None):
    """asv's (stats dict, samples) pair for one result, as asv's Results.get_result_stats."""
    if row is None:
        return None
    stats = {asv_key: float(row[column]) for column, asv_key in STATS_KEYS.items()
             if column in row.index and not pd.isna(row[column])}
    samples = row.get("samples")
    samples = list(map(float, samples)) if isinstance(samples, (list, np.ndarray)) else None
    return (stats or None, samples)


def _asv_value(row: pd.Series | None) -> float | None:
    """asv's encoding: None = failed, NaN = skipped or missing."""
    if row is None:
        return math.nan
    if row["status"] == "failed":
        return None
    return float(row["value"])


def _compare_row(a: pd.Series | None, b: pd.Series | None, factor: float,
                 use_stats: bool) -> dict:
    time_1, time_2 = _asv_value(a), _asv_value(b)
    ss_1, ss_2 = _stats_and_samples(a), _stats_and_samples(b)
    version_1 = a["version"] if a is not None else None
    version_2 = b["version"] if b is not None else None
    na_1, na_2 = _isna(time_1), _isna(time_2)
    ratio = math.nan
    ratio_text = "n/a"
    if not (na_1 or na_2) and time_1 != 0:
        ratio = time_2 / time_1
        ratio_text = f"{ratio:.2f}"

    # The same ladder, in the same order, as asv.commands.compare.Compare.print_table.
    if version_1 is not None and version_2 is not None and version_1 != version_2:
        mark = "x"
    elif time_1 is not None and time_2 is None:
        mark = "!"
    elif time_1 is None and time_2 is not None:
        mark = "*"
    elif (time_1 is None and time_2 is None) or na_1 or na_2:
        mark = " "  # both failed, or either skipped or missing
    elif _is_result_better(time_2, time_1, ss_2, ss_1, factor, use_stats=use_stats):
        mark = "-"
    elif _is_result_better(time_1, time_2, ss_1, ss_2, factor, use_stats=use_stats):
        mark = "+"
    else:
        mark = " "
        if (_is_result_better(time_1, time_2, None, None, factor)
                or _is_result_better(time_2, time_1, None, None, factor)):
            ratio_text = "~" + ratio_text

    return {
        "value_before": math.nan if time_1 is None else time_1,
        "value_after": math.nan if time_2 is None else time_2,
        "err_before": _err(time_1, ss_1),
        "err_after": _err(time_2, ss_2),
        "status_before": a["status"] if a is not None else "missing",
        "status_after": b["status"] if b is not None else "missing",
        "commit_before": a["commit"] if a is not None else None,
        "commit_after": b["commit"] if b is not None else None,
        "ratio": ratio,
        "ratio_text": ratio_text,
        "difference": time_2 - time_1 if not (na_1 or na_2) else math.nan,
        "mark": mark,
        "verdict": _verdict(mark, a, b),
    }


def _err(value: float | None, stats_samples) -> float:
    if _isna(value) or not stats_samples or not stats_samples[0]:
        return math.nan
    stats = stats_samples[0]
    if "q_25" not in stats or "q_75" not in stats:
        return math.nan
    return get_err(value, stats)


def _verdict(mark: str, a: pd.Series | None, b: pd.Series | None) -> str:
    status_1 = a["status"] if a is not None else "missing"
    status_2 = b["status"] if b is not None else "missing"
    if mark == "x":
        return "incomparable"
    if mark == "+":
        return "regressed"
    if mark == "-":
        return "improved"
    if status_1 == "missing" and status_2 != "missing":
        return "new"
    if status_2 == "missing":
        return "gone"
    if status_2 == "failed":
        return "failed"
    if mark == "*":
        return "improved"  # a failure fixed
    if "skipped" in (status_1, status_2):
        return "skipped"
    return "unchanged"


def _isna(value: float | None) -> bool:
    return value is None or math.isnan(value)


def select_commit(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Rows of ``frame`` whose commit hash starts with ``prefix`` (one commit, else ValueError)."""
    prefix = prefix.strip().lower()
    commits = sorted({c for c in frame["commit"].dropna().unique() if c.lower().startswith(prefix)})
    if not prefix or not commits:
        known = ", ".join(sorted({c[:8] for c in frame["commit"].dropna().unique()})) or "none"
        raise ValueError(f"no results for commit {prefix!r}; commits with results: {known}")
    if len(commits) > 1:
        raise ValueError(f"commit prefix {prefix!r} is ambiguous: "
                         f"{', '.join(c[:8] for c in commits)}; give more characters")
    return frame[frame["commit"] == commits[0]]


def select_machine(frame: pd.DataFrame, machine: str | None = None) -> pd.DataFrame:
    """Rows of one machine: ``machine``, or the only one there is (ValueError naming the
    machines when ``machine`` has no results, or when it is None and there are several)."""
    machines = sorted(frame["machine"].dropna().unique())
    if machine is None:
        if len(machines) > 1:
            raise ValueError(f"results of several machines ({', '.join(machines)}); choose one "
                             "with --machine NAME")
        return frame
    if machine not in machines:
        raise ValueError(f"no results for machine {machine!r}; machines: "
                         f"{', '.join(machines) or 'none'}")
    return frame[frame["machine"] == machine]


def regressions(frame: pd.DataFrame, threshold: float = 0.05,
                include_stale: bool = False) -> pd.DataFrame:
    """The regressions ``asv publish`` lists in regressions.json, from a results frame.

    Per benchmark combination, machine and environment, orders the results by commit date
    (asv orders by the git history; the two agree on a linear history), averages values and
    asv's weights per commit, runs ``asv.step_detect.detect_steps`` and
    ``detect_regressions(steps, threshold)``. ``threshold``: relative step size to report
    (asv's ``regressions_thresholds`` default 0.05). Stale rows (benchmarks no longer listed at
    this version in benchmarks.json) are left out, as asv publish does, unless
    ``include_stale``.

    One row per upward step: ``commit_before`` (last commit at the old level), ``commit_after``
    (first commit at the new level), ``value_before``, ``value_after`` (best value after the
    step), ``last_value``, ``best_value`` (of the whole series), ``ratio``, ``unit``.
    """
    columns = ["benchmark", "entry_name", "machine", "env_name", "unit", "commit_before",
               "commit_after", "date_after", "value_before", "value_after", "ratio",
               "last_value", "best_value", "params"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    data = frame if include_stale else frame[~frame["stale"]]
    # Only finite values and weights reach asv's step detection: on a series holding an
    # infinity it allocates until memory runs out.
    finite = np.isfinite(data["value"].astype("float64"))
    data = data.assign(_weight=[_row_weight(row) for row in data.itertuples(index=False)],
                       _value=data["value"].where((data["status"] == "ok") & finite),
                       _row=range(len(data)))
    series_key = ["entry_name", "machine", "env_name"]
    # One grouping for every series' per-commit means (a groupby per series costs ~30 ms of
    # pandas overhead each); commits ordered by date within each series.
    per_commit_all = (data.groupby([*series_key, "commit"], sort=False, dropna=False)
                      .agg(date=("date", "min"), value=("_value", "mean"),
                           weight=("_weight", "mean"), row=("_row", "min"))
                      .reset_index())
    per_commit_all = per_commit_all[per_commit_all["value"].notna()]
    found = []
    for (entry_name, machine, env_name), per_commit in per_commit_all.groupby(
            series_key, sort=True, dropna=False):
        per_commit = per_commit.sort_values(["date", "commit"], kind="stable")
        y = per_commit["value"].tolist()
        w = [None if pd.isna(x) else float(x) for x in per_commit["weight"]]
        steps = step_detect.detect_steps(y, w)
        last_v, best_v, jumps = step_detect.detect_regressions(steps, threshold)
        if jumps is None:
            continue
        first = data.iloc[int(per_commit["row"].min())]  # the series' first row
        commits, dates = per_commit["commit"].tolist(), per_commit["date"].tolist()
        for before_pos, after_pos, value_before, value_after in jumps:
            found.append({
                "benchmark": first["benchmark"], "entry_name": entry_name,
                "machine": machine, "env_name": env_name, "unit": first["unit"],
                "commit_before": commits[before_pos], "commit_after": commits[after_pos],
                "date_after": dates[after_pos],
                "value_before": value_before, "value_after": value_after,
                "ratio": value_after / value_before if value_before else math.inf,
                "last_value": last_v, "best_value": best_v, "params": first["params"],
            })
    return pd.DataFrame(found, columns=columns)


def _row_weight(row) -> float:
    """asv publish's data-point weight, 2 / (99% CI width); NaN where there is none."""
    stats = {"ci_99_a": row.ci_99_low, "ci_99_b": row.ci_99_high}
    if any(pd.isna(v) for v in stats.values()):
        return math.nan
    weight = asv_stats.get_weight(stats)
    return math.nan if weight is None or not math.isfinite(weight) else weight


def geomean_summary(frame: pd.DataFrame, by: str | Iterable[str] = "class",
                    value: str | None = None) -> pd.DataFrame:
    """Geometric means per benchmark class or per parameter value.

    ``frame``: a ``compare`` table (summarises ``ratio``, with counts of each verdict) or a
    results frame (summarises ``value`` per ``unit``). ``by``: ``"class"`` or parameter names
    (``"strategy"`` or ``"param_strategy"``). Non-positive and missing values are left out.
    """
    value = value or ("ratio" if "ratio" in frame.columns else "value")
    groups = []
    for name in ([by] if isinstance(by, str) else list(by)):
        if name == "class":
            groups.append(frame["benchmark"].map(benchmark_class).rename("class"))
        else:
            column = name if name in frame.columns else f"param_{name}"
            if column not in frame.columns:
                raise ValueError(f"no column {name!r} to group by; parameters present: "
                                 f"{', '.join(c[6:] for c in frame.columns if c.startswith('param_') and c != 'raw_params')}")
            groups.append(frame[column].astype(object).where(frame[column].notna(), "n/a"))
    if value == "value" and "unit" in frame.columns:
        groups.append(frame["unit"])
    positive = frame[value].where(frame[value] > 0)
    work = pd.DataFrame({g.name: g for g in groups})
    work["_log"] = np.log(positive)
    grouped = work.groupby([g.name for g in groups], sort=True, dropna=False)
    summary = grouped["_log"].agg(["count", "mean"])
    summary = summary.rename(columns={"mean": f"geomean_{value}"})
    summary[f"geomean_{value}"] = np.exp(summary[f"geomean_{value}"])
    if "verdict" in frame.columns:
        counts = pd.crosstab([g.values for g in groups], frame["verdict"].values)
        counts.index.names = summary.index.names
        for verdict in CHANGED_VERDICTS:
            summary[verdict] = counts[verdict] if verdict in counts.columns else 0
        summary = summary.fillna({v: 0 for v in CHANGED_VERDICTS})
    return summary.reset_index()


def side_text(row, side: str) -> str:
    """One side (``"before"``/``"after"``) of a ``compare`` row as asv shows it
    ('3.09±0.01ms', '97M'), or its status word when it has no value (failed, skipped,
    missing)."""
    status = row[f"status_{side}"]
    if status in ("failed", "skipped", "missing"):
        return status
    return human_value(row[f"value_{side}"], row["unit"], row[f"err_{side}"])


def compare_headers(before: str = "Before", after: str = "After",
                    verdict: Sequence[str] = ("Verdict",)) -> list[str]:
    """The headers of ``compare_rows``' columns: ``before`` and ``after`` name the two sides
    (e.g. ``"Before [abcdef12]"``, or ``"Baseline"`` and ``"Environment"``), ``verdict`` the
    column(s) that judge (the gate shows its own two there)."""
    return ["Change", before, after, "Ratio", "Difference", *verdict, "Benchmark (Parameter)"]


def compare_rows(table: pd.DataFrame, show_env: bool = False) -> list[list[str]]:
    """asv compare's columns for each row of a ``compare`` table: change mark, before, after,
    ratio, difference, verdict, and the benchmark label (with [machine/env] if ``show_env``);
    ``compare_headers`` names them."""
    rows = []
    for _, row in table.iterrows():
        name = row["entry_name"] + (f" [{row['machine']}/{row['env_name']}]" if show_env else "")
        rows.append([row["mark"], side_text(row, "before"), side_text(row, "after"),
                     row["ratio_text"], human_difference(row["difference"], row["unit"]),
                     row["verdict"], name])
    return rows


def several_environments(table: pd.DataFrame) -> bool:
    """Whether a ``compare`` table holds rows of more than one machine or environment (then
    each benchmark label needs its [machine/env])."""
    return table[["machine", "env_name"]].drop_duplicates().shape[0] > 1


def only_changed(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a ``compare`` table whose verdict is a change (``CHANGED_VERDICTS``)."""
    return table[table["verdict"].isin(CHANGED_VERDICTS)]


def verdict_counts(table: pd.DataFrame) -> str:
    """'2 regressed, 5 unchanged, 1 failed': each verdict of a ``compare`` table with its
    count, the most frequent first."""
    counts = table["verdict"].value_counts()
    return ", ".join(f"{counts[v]} {v}" for v in counts.index)
