"""The short table ``make bench`` prints: per family and problem, the fastest strategy.

Input is the tidy frame of :func:`harness.reporting.results.load` (one row per benchmark x parameter
combination x result file). For each family (the benchmark module: dense, memmap, hdf5,
sparse) and problem (shape, dtype, and density for sparse), the row with the smallest
``time_matvec`` wins; beside its time go its peak increment (``track_peak_increment``, bytes),
its anonymous part, and its ratio to the ``dense`` strategy on the same shape and dtype in the
same results. The machine's roofline (``machine.Roofline``) is given under the table.

Benchmarks outside the harness suite's classes (another project's suite: asv's own types, the
meter plugin's ``peakincrement_``, ``anonincrement_``...) are listed after it as they are: one
row per benchmark and parameter combination, its figure type and value (``others``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness import names
from harness.names import (
    DENSITY_PARAM,
    MATRIX_PARAMS,
    PROBLEM_PARAMS,
    REFERENCE_FAMILY,
    STRATEGY_PARAM,
    TIME,
    TRACK_PEAK,
    WAY_PARAMS,
    benchmark_class,
)
from harness.reporting.compare import select_commit
from harness.reporting.textsafe import plain_text
from harness.units import binary_bytes, human_bytes, human_gbps, human_seconds


def latest_run(frame: pd.DataFrame, machine: str | None = None,
               commit: str | None = None) -> pd.DataFrame:
    """Rows of one result file: the newest of the given machine and commit prefix (an
    ambiguous prefix is refused, as ``harness.reporting.compare.select_commit`` does), else the newest."""
    rows = frame
    if machine is not None:
        rows = rows[rows["machine"] == machine]
    if commit is not None and not rows.empty:
        rows = select_commit(rows, commit)
    if rows.empty:
        raise ValueError(
            f"no results for machine={machine!r} commit={commit!r}; "
            f"machines: {sorted(frame['machine'].dropna().unique())}, "
            f"commits: {sorted(frame['commit'].dropna().astype(str).str[:8].unique())}"
        )
    newest_file = rows.sort_values("date")["file"].iloc[-1]
    return rows[rows["file"] == newest_file]


def _param(params, name):
    value = params.get(name) if isinstance(params, dict) else None
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _way_value(name: str, value) -> str:
    if name in names.BYTES_PARAMS:
        try:
            return binary_bytes(float(value))
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def _matrix(params) -> tuple:
    """The matrix a combination multiplies, as the dense reference holds it (shape, dtype)."""
    return tuple(_param(params, n) for n in MATRIX_PARAMS)


def _combination_key(row) -> tuple:
    """(class, sorted params) identifies one combination across its benchmark methods."""
    params = row["params"] if isinstance(row["params"], dict) else {}
    return (benchmark_class(row["benchmark"]), tuple(sorted((k, str(v)) for k, v in params.items())))


def summarize(run: pd.DataFrame) -> pd.DataFrame:
    """One row per family and problem: fastest strategy, seconds, peak increment, ratio to dense.

    ``run`` holds the rows of one result file (see :func:`latest_run`). Columns: family, shape,
    dtype, density, strategy (with its chunks/cache/compression for HDF5), seconds,
    peak_increment_bytes, anon_increment_bytes, ratio_to_dense, measured, skipped, failed.
    """
    ok = run[run["status"] == "ok"].copy()
    ok["combination"] = [_combination_key(r) for _, r in ok.iterrows()]
    ok["method"] = ok["benchmark"].map(names.method)
    by_method = {m: dict(zip(g["combination"], g["value"])) for m, g in ok.groupby("method")}
    times = ok[ok["method"] == names.TIME]

    dense_seconds = {}
    for _, r in times[times["benchmark"].map(names.family) == names.REFERENCE_FAMILY].iterrows():
        dense_seconds[_matrix(r["params"])] = r["value"]

    counts = _status_counts(run)
    rows = []
    for family in _families(times["benchmark"]):
        fam = times[times["benchmark"].map(names.family) == family]
        if fam.empty:
            continue
        problems = fam["params"].map(lambda p: tuple(_param(p, n) for n in PROBLEM_PARAMS))
        for problem, group in fam.groupby(problems, sort=False):
            best = group.loc[group["value"].idxmin()]
            params = best["params"]
            way = [f"{n}={_way_value(n, _param(params, n))}" for n in WAY_PARAMS
                   if _param(params, n) is not None]
            reference = dense_seconds.get(_matrix(params))
            key = best["combination"]
            rows.append({
                "family": family,
                **dict(zip(PROBLEM_PARAMS, problem)),
                "strategy": " ".join([str(_param(params, STRATEGY_PARAM))] + way),
                "seconds": float(best["value"]),
                "peak_increment_bytes": by_method.get(names.TRACK_PEAK, {}).get(key),
                "anon_increment_bytes": by_method.get(names.TRACK_ANON, {}).get(key),
                "ratio_to_dense": float(best["value"]) / reference if reference else None,
                **counts.get(family, {}),
            })
    return pd.DataFrame(rows)


def _families(benchmarks: pd.Series) -> list[str]:
    """Families present, the suite's known ones first in their order, then any other (a
    third party's suite, a family added later) alphabetically."""
    present = set(benchmarks.map(names.family))
    known = [names.family(c) for c in names.MATVEC_CLASSES]
    return [f for f in dict.fromkeys(known + sorted(present)) if f in present]


def _status_counts(run: pd.DataFrame) -> dict:
    """Per family: how many time_matvec combinations were measured, skipped, failed."""
    counts: dict = {}
    timed = run[run["benchmark"].map(names.method) == names.TIME]
    for family, group in timed.groupby(timed["benchmark"].map(names.family)):
        status = group["status"].value_counts()
        counts[family] = {"measured": int(status.get("ok", 0)),
                          "skipped": int(status.get("skipped", 0)),
                          "failed": int(status.get("failed", 0))}
    return counts


def others(run: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``run`` outside the harness suite's classes (matvec classes and the
    roofline): columns entry_name, type, unit, value, status, in asv's name order."""
    known = {*names.MATVEC_CLASSES, names.ROOFLINE_CLASS}
    rows = run[~run["benchmark"].map(benchmark_class).isin(known)]
    columns = {"entry_name": rows.get("entry_name", rows["benchmark"]),
               **{name: rows.get(name) for name in ("type", "unit", "value", "status")}}
    return pd.DataFrame(columns).sort_values("entry_name", kind="stable").reset_index(drop=True)


def _figure_text(value, unit, status) -> str:
    if status != "ok":
        return status
    if unit == "bytes":
        return human_bytes(value)
    if unit == "seconds":
        return human_seconds(value)
    return f"{value:.4g}" + ("" if unit in (None, "", "unit") else f" {unit}")


def roofline(run: pd.DataFrame) -> dict:
    """This run's machine limits in GB/s: {'memory_read_gbps': ..., 'disk_read_gbps': ...}."""
    out = {}
    for name, benchmark in (("memory_read_gbps", names.MEMORY_ROOF),
                            ("disk_read_gbps", names.DISK_ROOF)):
        rows = run[(run["benchmark"] == benchmark) & (run["status"] == "ok")]
        if not rows.empty:
            out[name] = float(rows["value"].iloc[0])
    return out


@dataclass(frozen=True)
class RunSummary:
    """``summarize`` and ``roofline`` of one result file (``latest_run``), and its path."""

    table: pd.DataFrame
    limits: dict  # GB/s, see roofline
    source: str
    other: pd.DataFrame | None = None  # see others

    def to_text(self) -> str:
        """The table ``make bench`` prints (``render_text``)."""
        return render_text(self.table, self.limits, self.source, self.other)

    def to_json(self) -> str:
        """{"rows": [...], "roofline": {...}, "others": [...], "file": path} as indented JSON
        text."""
        other = self.other if self.other is not None else pd.DataFrame()
        return json.dumps({"rows": json.loads(self.table.to_json(orient="records")),
                           "roofline": self.limits,
                           "others": json.loads(other.to_json(orient="records")),
                           "file": self.source}, indent=1)


def summarize_latest(frame: pd.DataFrame, machine: str | None = None,
                     commit: str | None = None) -> RunSummary:
    """The summary of the run ``latest_run`` picks (ValueError as there)."""
    run = latest_run(frame, machine=machine, commit=commit)
    return RunSummary(summarize(run), roofline(run), str(run["file"].iloc[0]), others(run))


def _markdown_table(header: list[str], lines: list[list[str]]) -> list[str]:
    lines = [[plain_text(c) for c in line] for line in lines]  # names from the results
    widths = [max(len(c) for c in col) for col in zip(header, *lines)]

    def fmt(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    return [fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
            *(fmt(line) for line in lines)]


def render_text(table: pd.DataFrame, limits: dict | None = None,
                source: str | Path | None = None, other: pd.DataFrame | None = None) -> str:
    """A plain-text (also valid Markdown) table of :func:`summarize`'s output, then the other
    benchmarks (:func:`others`) when there are any; a run with only those shows only them."""
    out = []
    if not table.empty or other is None or other.empty:
        out = _suite_text(table, limits)
    if other is not None and not other.empty:
        if out:
            out.append("")
        out += _markdown_table(["benchmark", "type", "value"], [
            [r["entry_name"], str(r["type"] or "-"), _figure_text(r["value"], r["unit"],
                                                                   r["status"])]
            for _, r in other.iterrows()])
        out.append("other benchmarks: the value of each in this run. peakincrement_, "
                   "anonincrement_, fileincrement_ (asv_bench_harness): the memory the call "
                   "alone added, setup and imports excluded; peakmem_: asv's peak of the whole "
                   "process")
    if source:
        out.append(f"full results: {plain_text(source)}")
    return "\n".join(out)


def _suite_text(table: pd.DataFrame, limits: dict | None) -> list[str]:
    header = ["family", "problem", "fastest strategy", "time", "peak increment",
              "anon part", f"x {REFERENCE_FAMILY}", "ok/skip/fail"]
    lines = []
    for _, r in table.iterrows():
        problem = " ".join(str(r[n]) for n in MATRIX_PARAMS)
        density = r.get(DENSITY_PARAM)
        if density is not None and not pd.isna(density):
            problem += f" d={float(density):g}"
        ratio = r["ratio_to_dense"]
        lines.append([
            r["family"], problem, r["strategy"], human_seconds(r["seconds"]),
            human_bytes(r["peak_increment_bytes"]), human_bytes(r["anon_increment_bytes"]),
            "-" if ratio is None or pd.isna(ratio) else f"{ratio:.3g}",
            f"{r.get('measured', 0)}/{r.get('skipped', 0)}/{r.get('failed', 0)}",
        ])
    out = _markdown_table(header, lines)
    if limits:
        out.append("")
        out.append("machine: memory read {}, cold disk read {}".format(
            *(human_gbps(limits.get(k), decimals=1)
              for k in ("memory_read_gbps", "disk_read_gbps"))))
    out.append(f"time: asv {TIME} (warm page cache), median; peak increment: {TRACK_PEAK} "
               "(RSS peak over the RSS before opening and multiplying); "
               f"x {REFERENCE_FAMILY}: time / {REFERENCE_FAMILY} time on the same "
               f"{' and '.join(MATRIX_PARAMS)}; ok/skip/fail: {TIME} combinations of the family")
    return out
