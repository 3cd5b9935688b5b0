"""Figures for our own asv suite, drawn only when the figures they need are in the results.

The benchmark, parameter and figure names come from ``harness.names`` (``time_matvec`` in
seconds, ``track_peak_increment`` in bytes, ``track_gbps`` and the roofline in GB/s).
Each ``*_figures`` function returns a list of (title, matplotlib Figure), empty when the results
do not hold what it needs; the ``*_table`` functions return the numbers behind the figures.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, never a display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure

from harness import names
from harness.names import (
    CHUNK_CACHE_PARAM,
    CHUNKS_PARAM,
    COMPRESSION_PARAM,
    DISK_ROOF,
    MEMORY_ROOF,
    PROBLEM_PARAMS,
    ROOFLINE_CLASS,
    STRATEGY_PARAM,
    benchmark_class,
)
from harness.reporting.answer import latest_ok as latest_results
from harness.reporting.answer import param_columns as _param_columns
from harness.reporting.answer import way_text
from harness.reporting.textsafe import plain_label
from harness.units import KiB, MiB, binary_bytes, human_gbps, human_value

MAX_FIGURES = 6  # per kind: a report stays readable
MAX_BARS = 40  # configurations per roofline chart


def _method(frame: pd.DataFrame, method: str) -> pd.DataFrame:
    return frame[frame["benchmark"].map(names.method) == method]


def _describe(row: pd.Series, columns: list[str]) -> str:
    """'strategy=hdf5-rows, chunks=rows, cache=1 MiB' (compression=none left out: the default)."""
    return way_text(row, columns, separator=", ")


def pareto_front(time_seconds: np.ndarray, peak_bytes: np.ndarray) -> np.ndarray:
    """Mask of points that no other point beats on both time and peak memory (ties kept)."""
    t = np.asarray(time_seconds, dtype=float)
    p = np.asarray(peak_bytes, dtype=float)
    # other[j] dominates point[i]: no worse on both axes and better on one.
    no_worse = (t[None, :] <= t[:, None]) & (p[None, :] <= p[:, None])
    better = (t[None, :] < t[:, None]) | (p[None, :] < p[:, None])
    return ~(no_worse & better).any(axis=1)


def pareto_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Time vs peak increment per configuration, with ``problem`` and ``on_front`` columns."""
    latest = latest_results(frame)
    times = _method(latest, names.TIME)
    peaks = _method(latest, names.TRACK_PEAK)
    if times.empty or peaks.empty:
        return pd.DataFrame()
    key = ["_class", "machine", "env_name", "_reprs"]
    times = times.assign(_class=times["benchmark"].map(benchmark_class),
                         _reprs=times["raw_params"].map(tuple))
    peaks = peaks.assign(_class=peaks["benchmark"].map(benchmark_class),
                         _reprs=peaks["raw_params"].map(tuple))
    pairs = times.merge(peaks[key + ["value"]].rename(columns={"value": "peak_increment_bytes"}),
                        on=key).rename(columns={"value": "time_seconds"})
    if pairs.empty:
        return pd.DataFrame()
    params = _param_columns(pairs)
    problem_columns = [f"param_{p}" for p in PROBLEM_PARAMS if f"param_{p}" in params]
    other_columns = [c for c in params if c not in problem_columns]
    several_machines = pairs["machine"].nunique() > 1
    pairs["problem"] = [
        _describe(row, problem_columns) + (f" on {row['machine']}" if several_machines else "")
        for _, row in pairs.iterrows()]
    pairs["configuration"] = [
        f"{row['_class'].split('.')[0]}: {_describe(row, other_columns)}".rstrip(": ")
        for _, row in pairs.iterrows()]
    pairs["on_front"] = False
    for _, group in pairs.groupby("problem"):
        pairs.loc[group.index, "on_front"] = pareto_front(
            group["time_seconds"].to_numpy(), group["peak_increment_bytes"].to_numpy())
    return pairs[["problem", "configuration", "time_seconds", "peak_increment_bytes",
                  "on_front", "machine", "env_name"]].sort_values(
        ["problem", "time_seconds"]).reset_index(drop=True)


def pareto_figures(frame: pd.DataFrame) -> list[tuple[str, Figure]]:
    """Per problem: time (ms) against peak increment (MiB); the front's points numbered, their
    configurations in the legend (labels beside the points overlapped one another)."""
    table = pareto_table(frame)
    figures = []
    for problem, group in list(table.groupby("problem", sort=True))[:MAX_FIGURES] \
            if not table.empty else []:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        rest, front = group[~group["on_front"]], group[group["on_front"]]
        # Increments span bytes to GB; clip at 1 KiB so a zero increment still shows.
        mebibytes = group["peak_increment_bytes"].clip(lower=KiB) / MiB
        milliseconds = group["time_seconds"] * 1e3
        ax.scatter(milliseconds[rest.index], mebibytes[rest.index], color="0.6", s=14,
                   label="dominated")
        ax.step(milliseconds[front.index], mebibytes[front.index], where="post", color="C3",
                marker="o", label="Pareto front")
        for k, (index, row) in enumerate(front.iterrows(), start=1):
            ax.annotate(str(k), (milliseconds[index], mebibytes[index]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
            ax.plot([], [], " ", label=plain_label(f"{k}: {row['configuration']}"))
        _readable_scale(ax, "x", milliseconds)
        _readable_scale(ax, "y", mebibytes)
        ax.set_xlabel("time per matvec (ms)")
        ax.set_ylabel("peak memory increment (MiB)")
        ax.set_title(plain_label(f"time vs peak increment: {problem}"), fontsize=9)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
        fig.tight_layout()
        figures.append((f"Time vs peak increment, {problem}", fig))
    return figures


def _readable_scale(ax, which: str, values: pd.Series) -> None:
    """Axis ``which`` ('x' or 'y'): log scale ticked 1-2-5 in plain numbers when the values
    span a factor of 3 or more; else linear, so a narrow range never reads '8.024 x 10^2'."""
    axis = getattr(ax, f"{which}axis")
    values = values[values > 0]
    spread = values.max() / values.min() if len(values) else 1.0
    if spread >= 3:
        getattr(ax, f"set_{which}scale")("log")
        axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_minor_formatter(ticker.NullFormatter())
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))


def chunk_heatmap_table(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Matvec time (seconds) as chunk shape x chunk cache (bytes) tables, for every benchmark
    that has both parameters (the HDF5 family today).

    One table per problem, strategy and compression (mixing strategies would compare cells
    holding different configurations); only where at least two cache sizes were run. A cell
    holding several results (other parameters) shows their geometric mean.
    """
    latest = latest_results(frame)
    hdf5 = _method(latest, names.TIME)
    chunks, cache = f"param_{CHUNKS_PARAM}", f"param_{CHUNK_CACHE_PARAM}"
    if hdf5.empty or chunks not in hdf5 or cache not in hdf5:
        return {}
    hdf5 = hdf5.dropna(subset=[chunks, cache])
    # Grouping parameters these rows actually carry (density is a sparse-only parameter).
    group_columns = [f"param_{p}" for p in [*PROBLEM_PARAMS, STRATEGY_PARAM, COMPRESSION_PARAM]
                     if f"param_{p}" in hdf5.columns and hdf5[f"param_{p}"].notna().any()]
    keys = [hdf5[c].astype(object).where(hdf5[c].notna(), "n/a").astype(str)
            for c in group_columns] or [pd.Series("all", index=hdf5.index)]
    tables = {}
    for key, group in hdf5.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        if group[cache].nunique() < 2:
            continue
        title = ", ".join(f"{c[6:]}={v}" for c, v in zip(group_columns, key)) or "all"
        table = (group.assign(_log=np.log(group["value"]))
                 .pivot_table(index=chunks, columns=cache, values="_log", aggfunc="mean"))
        tables[title] = np.exp(table)
    return tables


def chunk_heatmap_figures(frame: pd.DataFrame) -> list[tuple[str, Figure]]:
    figures = []
    for title, table in list(chunk_heatmap_table(frame).items())[:MAX_FIGURES]:
        seconds_table = table.to_numpy(dtype=float)
        logs = np.log10(seconds_table)
        fig, ax = plt.subplots(figsize=(1.2 * table.shape[1] + 3, 0.6 * table.shape[0] + 2))
        image = ax.imshow(logs, cmap="viridis_r", aspect="auto")
        ax.set_xticks(range(table.shape[1]), [binary_bytes(float(c)) for c in table.columns])
        ax.set_yticks(range(table.shape[0]), [plain_label(i) for i in table.index])
        middle = np.nanmean([np.nanmin(logs), np.nanmax(logs)])
        for (i, j), seconds in np.ndenumerate(seconds_table):
            if not np.isnan(seconds):
                # viridis_r: slow cells are dark, so their text is white; fast cells get black.
                ax.text(j, i, human_value(seconds, "seconds"), ha="center", va="center",
                        fontsize=8, color="white" if logs[i, j] > middle else "black")
        ax.set_xlabel("HDF5 chunk cache (rdcc_nbytes)")
        ax.set_ylabel("chunk shape")
        ax.set_title(plain_label(f"HDF5 matvec time: {title}"), fontsize=9)
        fig.colorbar(image, ax=ax, label="log10 seconds")
        fig.tight_layout()
        figures.append((f"HDF5 chunk shape x chunk cache, {title}", fig))
    return figures


def roofline_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Achieved GB/s per configuration with this machine's memory and disk limits (GB/s)."""
    latest = latest_results(frame)
    rates = _method(latest, names.TRACK_GBPS)
    rates = rates[rates["benchmark"].map(names.family) != names.family(ROOFLINE_CLASS)]
    if rates.empty:
        return pd.DataFrame()
    limits = {}
    for name, column in ((MEMORY_ROOF, "memory_gbps"), (DISK_ROOF, "disk_gbps")):
        roof = latest[latest["benchmark"] == name]
        limits[column] = roof.groupby("machine")["value"].median()
    params = _param_columns(rates)
    table = pd.DataFrame({
        "machine": rates["machine"],
        "configuration": [f"{benchmark_class(row['benchmark']).split('.')[0]}: "
                          f"{_describe(row, params)}" for _, row in rates.iterrows()],
        "gbps": rates["value"],
    })
    for column, per_machine in limits.items():
        table[column] = table["machine"].map(per_machine)
    if "memory_gbps" in table:
        table["fraction_of_memory_roof"] = table["gbps"] / table["memory_gbps"]
    return table.sort_values(["machine", "gbps"], ascending=[True, False]).reset_index(drop=True)


def roofline_figures(frame: pd.DataFrame) -> list[tuple[str, Figure]]:
    table = roofline_table(frame)
    figures = []
    for machine, group in list(table.groupby("machine"))[:MAX_FIGURES] if not table.empty else []:
        shown = f" (fastest {MAX_BARS} of {len(group)})" if len(group) > MAX_BARS else ""
        group = group.head(MAX_BARS).iloc[::-1]
        fig, ax = plt.subplots(figsize=(11, 0.25 * len(group) + 1.8))
        ax.barh(range(len(group)), group["gbps"], color="C0")
        ax.set_yticks(range(len(group)), [plain_label(c) for c in group["configuration"]],
                      fontsize=7)
        for column, style, label in (("memory_gbps", "C3", "memory read roof"),
                                     ("disk_gbps", "C2", "disk read roof")):
            if column in group and group[column].notna().any():
                ax.axvline(group[column].iloc[0], color=style, linestyle="--",
                           label=f"{label} {human_gbps(group[column].iloc[0], decimals=1)}")
        ax.set_xlabel("achieved bandwidth (GB/s)")
        ax.set_title(plain_label(f"bandwidth against the roofline: {machine}{shown}"), fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        fig.tight_layout()
        figures.append((f"Bandwidth against the roofline, {machine}", fig))
    return figures


def suite_figures(frame: pd.DataFrame) -> list[tuple[str, Figure]]:
    """Every figure the results allow, in report order."""
    return pareto_figures(frame) + chunk_heatmap_figures(frame) + roofline_figures(frame)
