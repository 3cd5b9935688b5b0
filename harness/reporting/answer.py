"""The answer first: per problem, which storage and strategy, at what cost.

``combinations(frame)`` gathers every figure of one benchmark combination (the newest ok result
per machine and environment) into one row: time (seconds, warm and cold), peak, anonymous and
file-backed memory increments (bytes), GB/s, and the ratios to the in-RAM product on the same
matrix (``names.REFERENCE_FAMILY``) and to this machine's memory-read roof. ``answers(combos)``
picks, per problem (``names.PROBLEM_PARAMS``, plus machine and environment when there are
several), the fastest combination, the one with the least memory (anonymous memory, what the
kernel cannot drop, where it was measured; else the peak) and the fastest within a few memory
budgets (fractions of the matrix's in-RAM size), and ``reading`` says what that means in one
line. Nothing here names a family or a strategy: new ones appear as the results hold them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness import names
from harness.names import (
    COMPRESSION_PARAM,
    MATRIX_PARAMS,
    NO_COMPRESSION,
    PROBLEM_PARAMS,
    REFERENCE_FAMILY,
    STRATEGY_PARAM,
    benchmark_class,
)
from harness.units import binary_bytes, human_bytes, human_seconds

#: Method -> column of ``combinations`` (units: seconds, bytes, GB/s).
FIGURE_COLUMNS = {
    names.TIME: "time_seconds",
    names.TRACK_COLD_SECONDS: "cold_seconds",
    names.TRACK_PEAK: "peak_bytes",
    names.TRACK_ANON: "anon_bytes",
    names.TRACK_FILE: "file_bytes",
    names.TRACK_GBPS: "gbps",
}
#: Memory budgets of the answer table, as fractions of the matrix's in-RAM size.
BUDGETS = (1 / 2, 1 / 10, 1 / 100)
_KEY = ["_class", "machine", "env_name", "_reprs"]


def latest_ok(frame: pd.DataFrame) -> pd.DataFrame:
    """The newest ok result per benchmark combination, machine and environment."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return ok
    ok = ok.sort_values(["date", "commit"], kind="stable")
    return ok.drop_duplicates(["entry_name", "machine", "env_name"], keep="last")


def param_columns(frame: pd.DataFrame) -> list[str]:
    """Parameter columns, the most telling first (strategy leads every label)."""
    columns = [c for c in frame.columns if c.startswith("param_") and c != "raw_params"]
    rank = {f"param_{name}": k for k, name in enumerate(names.LABEL_ORDER)}
    return sorted(columns, key=lambda c: (rank.get(c, len(rank)), c))


def _present(value) -> bool:
    return value is not None and not (pd.api.types.is_scalar(value) and pd.isna(value))


def way_text(row: pd.Series, columns: list[str], separator: str = " ") -> str:
    """'chunks=rows cache=8 MiB' (compression=none left out: the default)."""
    parts = []
    for column in columns:
        value = row.get(column)
        if not _present(value):
            continue
        name = column[len("param_"):]
        if name == COMPRESSION_PARAM and value == NO_COMPRESSION:
            continue
        if name in names.BYTES_PARAMS:
            name, value = name.replace("chunk_", ""), binary_bytes(float(value))
        parts.append(f"{name}={value}")
    return separator.join(parts)


def problem_text(row: pd.Series, several_machines: bool, several_envs: bool) -> str:
    """'1000x100000 float32', '1000x100000 float32 density=0.01', '... on box (env)'."""
    parts = [str(row[f"param_{p}"]) for p in MATRIX_PARAMS
             if _present(row.get(f"param_{p}"))]
    parts += [f"{p}={row[f'param_{p}']:g}" if isinstance(row[f"param_{p}"], float)
              else f"{p}={row[f'param_{p}']}" for p in PROBLEM_PARAMS
              if p not in MATRIX_PARAMS and _present(row.get(f"param_{p}"))]
    text = " ".join(parts) or benchmark_class(row["benchmark"])
    if several_machines:
        text += f" on {row['machine']}"
    if several_envs:
        text += f" ({row['env_short']})"
    return text


def short_names(values) -> dict[str, str]:
    """Each name -> the part that differs from the others (common prefix and suffix cut at
    separators); a single name -> itself."""
    distinct = sorted({str(v) for v in values})
    if len(distinct) < 2:
        return {v: v for v in distinct}
    prefix = _common_prefix(distinct)
    suffix = _common_prefix([v[::-1] for v in distinct])[::-1]
    prefix = prefix[:max(prefix.rfind(c) for c in "-_/.") + 1] if prefix else ""
    cut = [i for i, c in enumerate(suffix) if c in "-_/."]
    suffix = suffix[cut[0]:] if cut else ""
    short = {v: v[len(prefix):len(v) - len(suffix)] or v for v in distinct}
    return short if len(set(short.values())) == len(short) else {v: v for v in distinct}


def _common_prefix(values: list[str]) -> str:
    first, last = min(values), max(values)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def strategy_of(row: pd.Series) -> str:
    """The strategy parameter, or the benchmark class for suites without one."""
    value = row.get(f"param_{STRATEGY_PARAM}")
    return str(value) if _present(value) else benchmark_class(row["benchmark"])


def matrix_bytes(row: pd.Series) -> float | None:
    """Bytes of the dense matrix ('1000x100000', 'float32' -> 4e8), None if not parseable."""
    shape, dtype = (row.get(f"param_{p}") for p in MATRIX_PARAMS)
    if not (_present(shape) and _present(dtype)):
        return None
    dims = re.findall(r"\d+", str(shape))
    try:
        itemsize = np.dtype(str(dtype)).itemsize
    except (TypeError, ValueError):  # ValueError: e.g. a sub-array dtype too big to make
        return None
    # math.prod on Python ints: np.prod would wrap around on a huge shape
    return float(math.prod(int(d) for d in dims)) * itemsize if dims else None


def combinations(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per measured combination (newest ok figures) with every figure it has.

    Columns: problem, family, strategy, way (its other parameters), label (strategy and way),
    configuration (family: label), machine, env_name, env_short, the ``FIGURE_COLUMNS``
    (NaN where missing), matrix_bytes, ratio_to_dense (time / in-RAM time), memory_to_dense
    (peak / in-RAM peak), fraction_of_roof (GB/s / memory-read roof) and the param_ columns.
    Rows without a ``time_matvec`` are left out: time is what every answer is about.
    """
    latest = latest_ok(frame)
    latest = latest[latest["benchmark"].map(names.method).isin(list(FIGURE_COLUMNS))]
    if latest.empty:
        return pd.DataFrame()
    latest = latest.assign(_class=latest["benchmark"].map(benchmark_class),
                           _reprs=latest["raw_params"].map(tuple),
                           _method=latest["benchmark"].map(names.method))
    base = latest[latest["_method"] == names.TIME]
    if base.empty:
        return pd.DataFrame()
    figures = latest.pivot_table(index=_KEY, columns="_method", values="value", aggfunc="last")
    figures = figures.rename(columns=FIGURE_COLUMNS).reset_index()
    combos = base.drop(columns=["value"]).merge(figures, on=_KEY, how="left")
    for column in FIGURE_COLUMNS.values():
        if column not in combos:
            combos[column] = np.nan
    params = param_columns(combos)
    problem_columns = [f"param_{p}" for p in PROBLEM_PARAMS]
    way_columns = [c for c in params
                   if c not in problem_columns and c != f"param_{STRATEGY_PARAM}"]
    envs = short_names(combos["env_name"])
    combos["env_short"] = combos["env_name"].map(lambda e: envs.get(str(e), str(e)))
    several_machines = combos["machine"].nunique() > 1
    several_envs = combos["env_name"].nunique() > 1
    combos["family"] = combos["benchmark"].map(names.family)
    combos["strategy"] = [strategy_of(r) for _, r in combos.iterrows()]
    combos["way"] = [way_text(r, way_columns) for _, r in combos.iterrows()]
    combos["label"] = [f"{s} {w}".strip() for s, w in zip(combos["strategy"], combos["way"])]
    combos["configuration"] = combos["family"] + ": " + combos["label"]
    combos["problem"] = [problem_text(r, several_machines, several_envs)
                         for _, r in combos.iterrows()]
    combos["matrix_bytes"] = [matrix_bytes(r) for _, r in combos.iterrows()]
    _add_ratios(combos, frame)
    keep = ["problem", "family", "strategy", "way", "label", "configuration", "machine",
            "env_name", "env_short", *FIGURE_COLUMNS.values(), "matrix_bytes",
            "ratio_to_dense", "memory_to_dense", "fraction_of_roof", "benchmark", *params]
    return combos[keep].sort_values(["problem", "time_seconds"], kind="stable") \
        .reset_index(drop=True)


def _add_ratios(combos: pd.DataFrame, frame: pd.DataFrame) -> None:
    matrix = [f"param_{p}" for p in MATRIX_PARAMS if f"param_{p}" in combos]
    group = ["machine", "env_name", *matrix]
    reference = combos[combos["family"] == REFERENCE_FAMILY]
    if reference.empty or not matrix:
        combos["ratio_to_dense"] = combos["memory_to_dense"] = np.nan
    else:
        best = reference.sort_values("time_seconds").drop_duplicates(group)
        best = best[group + ["time_seconds", "peak_bytes"]].rename(
            columns={"time_seconds": "_ref_time", "peak_bytes": "_ref_peak"})
        merged = combos[group].astype(object).merge(best.astype(object), on=group, how="left")
        combos["ratio_to_dense"] = combos["time_seconds"].to_numpy() / merged[
            "_ref_time"].astype(float).to_numpy()
        combos["memory_to_dense"] = combos["peak_bytes"].to_numpy() / merged[
            "_ref_peak"].astype(float).to_numpy()
        # Without a parseable shape, the in-RAM product's peak is the matrix's size.
        combos["matrix_bytes"] = combos["matrix_bytes"].astype(float).fillna(
            merged["_ref_peak"].astype(float))
    roofs = latest_ok(frame)
    roofs = roofs[roofs["benchmark"] == names.MEMORY_ROOF].groupby("machine")["value"].median()
    combos["fraction_of_roof"] = combos["gbps"] / combos["machine"].map(roofs).astype(float)


# ----------------------------------------------------------------------------- the answer


@dataclass(frozen=True)
class Answer:
    """One problem's answer: ``picks`` rows of ``combinations`` with a ``role`` column, and a
    one-line ``reading``."""

    problem: str
    picks: pd.DataFrame
    reading: str


def answers(combos: pd.DataFrame) -> list[Answer]:
    """Per problem: fastest, fastest within each of ``BUDGETS`` (when it picks a combination
    not listed yet), least memory, in that order."""
    out = []
    if combos.empty:
        return out
    for problem, group in combos.groupby("problem", sort=True):
        picks: list[tuple[str, pd.Series]] = []
        fastest = group.loc[group["time_seconds"].idxmin()]
        picks.append(("fastest", fastest))
        with_memory = group.dropna(subset=["peak_bytes"])
        if not with_memory.empty:
            size = group["matrix_bytes"].dropna()
            for budget in BUDGETS if not size.empty else ():
                limit = budget * float(size.iloc[0])
                fits = with_memory[with_memory["peak_bytes"] <= limit]
                if fits.empty:
                    continue
                best = fits.loc[fits["time_seconds"].idxmin()]
                if all(best.name != chosen.name for _, chosen in picks):
                    role = f"within {fraction_text(budget)} of the matrix ({human_bytes(limit)})"
                    picks.append((role, best))
            # The least memory is what the kernel cannot drop: anonymous memory where it was
            # measured (a mapped route's file pages count in its peak, yet cost nothing the
            # kernel must keep), else the peak.
            lean_key = with_memory["anon_bytes"].astype(float).fillna(
                with_memory["peak_bytes"].astype(float)) if "anon_bytes" in with_memory \
                else with_memory["peak_bytes"]
            leanest = with_memory.assign(_lean=lean_key).sort_values(
                ["_lean", "time_seconds"]).iloc[0].drop("_lean")
            if leanest.name == picks[-1][1].name:
                picks[-1] = (picks[-1][0] + ", least memory", leanest)
            else:
                picks.append(("least memory", leanest))
        table = pd.DataFrame([row for _, row in picks])
        table.insert(0, "role", [role for role, _ in picks])
        out.append(Answer(str(problem), table.reset_index(drop=True), reading(table)))
    return out


def fraction_text(ratio: float) -> str:
    """0.025 -> '1/40', 0.5 -> '1/2', 0.3 -> '1/3.3', 1.3 -> '1.3 x', NaN -> '-'."""
    if not _present(ratio) or ratio <= 0:
        return "-"
    if ratio < 0.95:
        return f"1/{_two_digits(1 / ratio)}"
    return f"{_two_digits(ratio)} x"


def _two_digits(number: float) -> str:
    """Two significant digits, never in exponent form: 3.38 -> '3.4', 412 -> '410'."""
    return f"{float(f'{number:.2g}'):.0f}" if number >= 10 else f"{number:.2g}"


def percent_text(fraction) -> str:
    """0.8 -> '80%', 0.003 -> '<1%', NaN -> '-'."""
    if not _present(fraction):
        return "-"
    return "<1%" if 0 < fraction < 0.005 else f"{fraction:.0%}"


def ratio_text(ratio) -> str:
    """A ratio to the in-RAM product: 2.6 -> '2.6 x', 0.0059 -> '0.0059 x', 412 -> '410 x',
    NaN -> '-'."""
    return "-" if not _present(ratio) else f"{_two_digits(ratio)} x"


def reading(picks: pd.DataFrame) -> str:
    """One line: who is fastest and at what cost, and what the leanest choice costs, in time
    against RAM (or against the fastest) and in memory against RAM."""
    fastest = picks.iloc[0]
    has_ram = _present(fastest["ratio_to_dense"])
    against = "RAM" if has_ram else "the fastest"
    text = f"Fastest: {fastest['label']} ({human_seconds(fastest['time_seconds'])}"
    text += f", {ratio_text(fastest['ratio_to_dense'])} RAM)" if has_ram and \
        fastest["family"] != REFERENCE_FAMILY else ")"
    lean = picks[picks["role"].str.contains("least memory")]
    if lean.empty:
        return text + "."
    if lean.index[0] == 0:
        return text + ", also the least memory."
    lean = lean.iloc[0]
    time_ratio = lean["ratio_to_dense"] if has_ram else \
        lean["time_seconds"] / fastest["time_seconds"]
    if _present(lean.get("anon_bytes")):
        return (f"{text}. {lean['label']}, the least anonymous memory (what the kernel cannot "
                f"drop), costs {ratio_text(time_ratio)} {against} with "
                f"{human_bytes(lean['anon_bytes'])} of it ({human_seconds(lean['time_seconds'])}"
                f", {human_bytes(lean['peak_bytes'])} peak with file pages).")
    memory_ref = lean["memory_to_dense"] if has_ram else \
        lean["peak_bytes"] / fastest["peak_bytes"] if fastest["peak_bytes"] else math.nan
    return (f"{text}. {lean['label']} costs {ratio_text(time_ratio)} {against} "
            f"at {fraction_text(memory_ref)} of its memory "
            f"({human_seconds(lean['time_seconds'])}, {human_bytes(lean['peak_bytes'])}).")


ANSWER_HEADERS = ["", "strategy", "time", f"x {REFERENCE_FAMILY}", "peak memory", "anon",
                  "file-backed", "of memory roof"]


def answer_rows(answer: Answer) -> list[list[str]]:
    """The answer table's cells (``ANSWER_HEADERS``)."""
    return [[r["role"], r["label"], human_seconds(r["time_seconds"]),
             ratio_text(r["ratio_to_dense"]), human_bytes(r["peak_bytes"]),
             human_bytes(r["anon_bytes"]), human_bytes(r["file_bytes"]),
             percent_text(r["fraction_of_roof"])]
            for _, r in answer.picks.iterrows()]

