"""Interactive figures (Plotly) for the HTML report: hover for the full combination, zoom,
click a legend entry to hide or show a strategy.

Each ``*_figures`` function takes the frame of ``harness.reporting.answer.combinations`` (or the
results frame for history) and returns (title, plotly Figure) pairs, empty when the results do
not hold what it needs. Axes are in ms, MiB and GB/s; every strategy keeps one colour in every
figure (``strategy_colours``). ``figure_json`` serialises a figure for a page that loads
``plotly_js()`` once (the library embedded: the page works offline).

Text from result files reaches Plotly only HTML-escaped (``plot_text``): Plotly renders a few
HTML tags in labels and decodes entities, so escaped text shows as written and never as markup.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly import colors as plotly_colors

from harness import names
from harness.reporting.answer import latest_ok
from harness.units import MiB, binary_bytes, human_gbps, human_seconds

MAX_FIGURES = 8  # per kind: a page stays quick to load and to read
MAX_BARS = 40  # configurations per bar chart
MS = 1e3  # seconds -> ms
FLOOR_MIB = 1 / 1024  # 1 KiB: a zero increment still shows on a log axis
PALETTE = plotly_colors.qualitative.Dark24 + plotly_colors.qualitative.Light24
FRONT_COLOUR = "#222222"
ANON_COLOUR, FILE_COLOUR = "#d62728", "#9ecae1"
HEIGHT = 440


def plot_text(value: object) -> str:
    """Result text as Plotly shows it literally: HTML-escaped, '$' (LaTeX) as an entity."""
    return html.escape(str(value)).replace("$", "&#36;")


def strategy_colours(strategies) -> dict[str, str]:
    """Strategy -> colour, by sorted name: the same strategy, the same colour in every figure
    (and in every report of the same set of strategies)."""
    ordered = sorted({str(s) for s in strategies})
    return {s: PALETTE[k % len(PALETTE)] for k, s in enumerate(ordered)}


def ticks_125(values) -> dict:
    """A log axis's ticks at 1, 2 and 5 times powers of ten over ``values``' range, labelled
    in plain numbers ('0.2', '50', '1000'); {} without positive values."""
    values = np.asarray([v for v in values if v is not None and np.isfinite(v) and v > 0])
    if values.size == 0:
        return {}
    low, high = np.floor(np.log10(values.min())), np.ceil(np.log10(values.max()))
    ticks = [m * 10.0 ** e for e in np.arange(low, high + 1) for m in (1, 2, 5)]
    ticks = [t for t in ticks if values.min() / 2.5 <= t <= values.max() * 2.5]
    return {"tickmode": "array", "tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]}


def _layout(figure: go.Figure, title: str, x: str, y: str, log_x: bool = False,
            log_y: bool = False, height: int = HEIGHT, wide: bool = False) -> go.Figure:
    figure.update_layout(
        title={"text": plot_text(title), "font": {"size": 14}}, template="plotly_white",
        height=height, margin={"l": 70, "r": 20, "t": 50, "b": 60}, hovermode="closest",
        legend={"title": {"text": "click to hide or show"}, "itemsizing": "constant"},
        hoverlabel={"align": "left"})
    # Log axes ticked 1-2-5 in plain numbers, never '8.024 x 10^2'; linear over a range too
    # narrow to hold two such ticks.
    log_x = log_x and _spread(_values(figure, "x")) >= LOG_SPREAD
    log_y = log_y and _spread(_values(figure, "y")) >= LOG_SPREAD
    x, y = (x if log_x else x.replace(", log)", ")"), y if log_y else y.replace(", log)", ")"))
    figure.update_xaxes(title_text=x, type="log" if log_x else "-", exponentformat="none",
                        showgrid=True, **(ticks_125(_values(figure, "x")) if log_x else {}))
    figure.update_yaxes(title_text=y, type="log" if log_y else "-", exponentformat="none",
                        showgrid=True, **(ticks_125(_values(figure, "y")) if log_y else {}))
    if wide:
        figure.update_layout(meta=WIDE)
    return figure


LOG_SPREAD = 3.0  # max / min of an axis's values below which it stays linear


def _spread(values: list[float]) -> float:
    positive = [v for v in values if v > 0]
    return max(positive) / min(positive) if positive else 1.0


WIDE = "wide"  # layout.meta of a figure that wants the page's whole width


def is_wide(figure: go.Figure) -> bool:
    return figure.layout.meta == WIDE


def _values(figure: go.Figure, axis: str) -> list[float]:
    """Every number the figure's traces put on ``axis`` ('x' or 'y')."""
    out: list[float] = []
    for trace in figure.data:
        values = getattr(trace, axis, None)
        if values is not None:
            out += [float(v) for v in values if isinstance(v, (int, float, np.number))]
    return out


def _hover(group: pd.DataFrame) -> list[str]:
    """The full combination and its figures, one line each."""
    lines = []
    for _, r in group.iterrows():
        text = [f"<b>{plot_text(r['configuration'])}</b>", plot_text(r["problem"]),
                f"time {seconds_text(r['time_seconds'])}"]
        for column, label in (("peak_bytes", "peak"), ("anon_bytes", "anon"),
                              ("file_bytes", "file-backed")):
            if pd.notna(r.get(column)):
                text.append(f"{label} {binary_bytes(float(r[column]), decimals=1)}")
        if pd.notna(r.get("ratio_to_dense")):
            text.append(f"{r['ratio_to_dense']:.3g} x {names.REFERENCE_FAMILY} time")
        if pd.notna(r.get("gbps")):
            text.append(human_gbps(float(r["gbps"])))
        lines.append("<br>".join(text))
    return lines


def seconds_text(seconds: float) -> str:
    """A time in the unit that suits it ('15.3 ms', '1.00 s'); '-' when missing."""
    return "-" if pd.isna(seconds) else human_seconds(float(seconds))


def _mib(values: pd.Series) -> pd.Series:
    return (values.astype(float) / MiB).clip(lower=FLOOR_MIB)


def _problems(combos: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return list(combos.groupby("problem", sort=True))[:MAX_FIGURES]


def pareto_figures(combos: pd.DataFrame, colours: dict[str, str]) -> list[tuple[str, go.Figure]]:
    """Per problem: time (ms) against peak increment (MiB), log-log, one trace per strategy,
    the Pareto front as a line through its points."""
    from harness.reporting.plots import pareto_front

    out = []
    data = combos.dropna(subset=["time_seconds", "peak_bytes"]) if not combos.empty else combos
    for problem, group in _problems(data) if not data.empty else []:
        figure = go.Figure()
        for strategy, rows in group.groupby("strategy", sort=True):
            figure.add_trace(go.Scatter(
                x=_mib(rows["peak_bytes"]), y=rows["time_seconds"] * MS, mode="markers",
                name=plot_text(strategy), legendgroup=plot_text(strategy),
                marker={"color": colours[strategy], "size": 9, "line": {"width": 0.5}},
                hovertext=_hover(rows), hoverinfo="text"))
        on_front = pareto_front(group["time_seconds"].to_numpy(),
                                group["peak_bytes"].to_numpy())
        front = group[on_front].sort_values("peak_bytes")
        figure.add_trace(go.Scatter(
            x=_mib(front["peak_bytes"]), y=front["time_seconds"] * MS, mode="lines",
            line={"color": FRONT_COLOUR, "width": 1.5, "dash": "dot", "shape": "hv"},
            name="Pareto front", hoverinfo="skip"))
        title = f"Time against memory, {problem}"
        out.append((title, _layout(figure, title, "peak memory increment (MiB, log)",
                                   "time per product (ms, log)", log_x=True, log_y=True)))
    return out


def ratio_figures(combos: pd.DataFrame, colours: dict[str, str]) -> list[tuple[str, go.Figure]]:
    """One figure: per problem, each strategy's best time as a multiple of the in-RAM time."""
    data = combos.dropna(subset=["ratio_to_dense"]) if not combos.empty else combos
    if data.empty:
        return []
    best = data.sort_values("time_seconds").drop_duplicates(["problem", "strategy"])
    figure = go.Figure()
    for strategy, rows in best.groupby("strategy", sort=True):
        figure.add_trace(go.Bar(
            x=[plot_text(p) for p in rows["problem"]], y=rows["ratio_to_dense"],
            name=plot_text(strategy), marker_color=colours[strategy],
            hovertext=_hover(rows), hoverinfo="text"))
    figure.add_hline(y=1, line={"color": FRONT_COLOUR, "width": 1, "dash": "dash"})
    title = f"Time as a multiple of the in-RAM product ({names.REFERENCE_FAMILY}), best per " \
        "strategy"
    return [(title, _layout(figure, title, "problem", f"x {names.REFERENCE_FAMILY} time (log)",
                            log_y=True, wide=True).update_layout(barmode="group"))]


def heatmap_figures(frame: pd.DataFrame) -> list[tuple[str, go.Figure]]:
    """Chunk shape x chunk cache: time (ms) per cell, colour on a log scale."""
    from harness.reporting.plots import chunk_heatmap_table

    out = []
    for title, table in list(chunk_heatmap_table(frame).items())[:MAX_FIGURES]:
        milliseconds = table.to_numpy(dtype=float) * MS
        columns = [binary_bytes(float(c)) for c in table.columns]
        rows = [plot_text(i) for i in table.index]
        text = [["" if np.isnan(v) else human_seconds(v / MS) for v in row] for row in milliseconds]
        # Lists, not arrays: a missing cell must be null in the JSON (an empty cell), where
        # a typed array would carry NaN into the drawing.
        logs = [[None if np.isnan(v) else float(np.log10(v)) for v in row] for row in milliseconds]
        figure = go.Figure(go.Heatmap(
            z=logs, x=columns, y=rows, text=text, texttemplate="%{text}", hoverongaps=False,
            colorscale="Viridis", reversescale=True, hovertemplate=(
                "chunks %{y}<br>chunk cache %{x}<br>time %{text}<extra></extra>"),
            colorbar={"title": {"text": "ms"}, "tickmode": "array", **_log_ticks(milliseconds)}))
        full = f"HDF5 chunk shape x chunk cache, {title}"
        out.append((full, _layout(figure, full, "HDF5 chunk cache (rdcc_nbytes)",
                                  "chunk shape", height=max(260, 70 * len(rows) + 140))))
    return out


def _log_ticks(values: np.ndarray) -> dict:
    """Colour-bar ticks for log10 values, labelled in the values' own unit."""
    finite = values[np.isfinite(values) & (values > 0)]
    if finite.size == 0:
        return {}
    ticks = np.unique(np.round(np.geomspace(finite.min(), finite.max(), 5), 3))
    return {"tickvals": np.log10(ticks).tolist(), "ticktext": [f"{t:.3g}" for t in ticks]}


def cold_warm_figures(combos: pd.DataFrame, colours: dict[str, str]
                      ) -> list[tuple[str, go.Figure]]:
    """One figure: cold-cache time against warm-cache time (ms, log-log), with y = x."""
    data = combos.dropna(subset=["time_seconds", "cold_seconds"]) if not combos.empty else combos
    if data.empty:
        return []
    figure = go.Figure()
    for strategy, rows in data.groupby("strategy", sort=True):
        hover = [f"{h}<br>cold {seconds_text(c)}" for h, c in zip(_hover(rows), rows["cold_seconds"])]
        figure.add_trace(go.Scatter(
            x=rows["time_seconds"] * MS, y=rows["cold_seconds"] * MS, mode="markers",
            name=plot_text(strategy), marker={"color": colours[strategy], "size": 8},
            hovertext=hover, hoverinfo="text"))
    low = float(min(data["time_seconds"].min(), data["cold_seconds"].min())) * MS
    high = float(max(data["time_seconds"].max(), data["cold_seconds"].max())) * MS
    figure.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="cold = warm",
                                line={"color": FRONT_COLOUR, "width": 1, "dash": "dash"},
                                hoverinfo="skip"))
    title = "Cold page cache against warm, every combination"
    return [(title, _layout(figure, title, "warm: time per product (ms, log)",
                            "cold: time per product (ms, log)", log_x=True, log_y=True))]


def roofline_figures(combos: pd.DataFrame, frame: pd.DataFrame, colours: dict[str, str]
                     ) -> list[tuple[str, go.Figure]]:
    """Per machine: the fastest ``MAX_BARS`` combinations' GB/s, with the memory and disk
    read roofs measured in the same run."""
    data = combos.dropna(subset=["gbps"]) if not combos.empty else combos
    if data.empty:
        return []
    latest = latest_ok(frame)
    out = []
    for machine, group in list(data.groupby("machine", sort=True))[:MAX_FIGURES]:
        group = group.sort_values("gbps", ascending=False).head(MAX_BARS).iloc[::-1]
        labels = [plot_text(f"{c} | {p}") for c, p in zip(group["configuration"],
                                                          group["problem"])]
        figure = go.Figure()
        for strategy in sorted(group["strategy"].unique()):
            mask = (group["strategy"] == strategy).to_numpy()
            rows = group[mask]
            figure.add_trace(go.Bar(
                x=rows["gbps"], y=[label for label, m in zip(labels, mask) if m],
                orientation="h", name=plot_text(strategy), marker_color=colours[strategy],
                hovertext=_hover(rows), hoverinfo="text"))
        for benchmark, what, colour in ((names.MEMORY_ROOF, "memory read roof", "#d62728"),
                                        (names.DISK_ROOF, "disk read roof", "#2ca02c")):
            roof = latest[(latest["benchmark"] == benchmark) & (latest["machine"] == machine)]
            if not roof.empty:
                # A line trace, not an annotation: named in the legend, hidden by a click.
                value = float(roof["value"].median())
                figure.add_trace(go.Scatter(
                    x=[value, value], y=[labels[0], labels[-1]], mode="lines",
                    name=f"{what} {human_gbps(value)}", hoverinfo="name",
                    line={"color": colour, "dash": "dash", "width": 2}))
        title = f"Bandwidth against the roofline, {machine}"
        figure = _layout(figure, title, "achieved bandwidth (GB/s)", "",
                         height=max(HEIGHT, 18 * len(group) + 160), wide=True)
        figure.update_yaxes(categoryorder="array", categoryarray=labels, automargin=True,
                            tickfont={"size": 10})
        out.append((title, figure.update_layout(barmode="overlay")))
    return out


def memory_split_figures(combos: pd.DataFrame) -> list[tuple[str, go.Figure]]:
    """Per problem: each strategy's fastest combination's peak increment split into anonymous
    (heap, the kernel cannot drop it) and file-backed (page cache) MiB, stacked."""
    data = combos.dropna(subset=["anon_bytes", "file_bytes"]) if not combos.empty else combos
    out = []
    for problem, group in _problems(data) if not data.empty else []:
        best = group.sort_values("time_seconds").drop_duplicates("strategy") \
            .sort_values("peak_bytes", ascending=True)
        labels = [plot_text(label) for label in best["label"]]
        figure = go.Figure()
        hover = _hover(best)
        for column, what, colour in (("anon_bytes", "anonymous", ANON_COLOUR),
                                     ("file_bytes", "file-backed", FILE_COLOUR)):
            figure.add_trace(go.Bar(x=best[column].astype(float) / MiB, y=labels,
                                    orientation="h", name=what, marker_color=colour,
                                    hovertext=hover, hoverinfo="text"))
        title = f"Memory split, anonymous and file-backed, {problem}"
        figure = _layout(figure, title, "memory increment (MiB)", "",
                         height=max(300, 22 * len(best) + 160))
        figure.update_yaxes(automargin=True, tickfont={"size": 10})
        out.append((title, figure.update_layout(barmode="stack")))
    return out


HISTORY_METHODS = {names.TIME: ("time per product (ms)", MS),
                   names.TRACK_PEAK: ("peak memory increment (MiB)", 1 / MiB),
                   names.TRACK_GBPS: ("bandwidth (GB/s)", 1.0),
                   names.TRACK_COLD_SECONDS: ("cold-cache time (ms)", MS)}
HISTORY_SERIES = 12  # combinations per method: the fastest ones of the newest commit


def history_figures(frame: pd.DataFrame, colours: dict[str, str]
                    ) -> list[tuple[str, go.Figure]]:
    """One figure when the results span several commits: a figure (menu: time, memory, GB/s,
    cold time) of the newest commit's fastest combinations over commit dates."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty or ok["commit"].nunique() < 2:
        return []
    figure = go.Figure()
    buttons, visible_sets = [], []
    for method, (axis, scale) in HISTORY_METHODS.items():
        rows = ok[ok["benchmark"].map(names.method) == method]
        if rows.empty or rows["commit"].nunique() < 2:
            continue
        newest = rows.sort_values("date").drop_duplicates(
            ["entry_name", "machine", "env_name"], keep="last")
        # The best ones: least time or memory, most GB/s.
        newest = newest.sort_values("value", ascending=method != names.TRACK_GBPS) \
            .head(HISTORY_SERIES)
        first = len(figure.data)
        for _, entry in newest.iterrows():
            series = rows[(rows["entry_name"] == entry["entry_name"])
                          & (rows["machine"] == entry["machine"])
                          & (rows["env_name"] == entry["env_name"])].sort_values("date")
            strategy = _strategy(entry["params"], entry["benchmark"])
            figure.add_trace(go.Scatter(
                x=series["date"], y=series["value"] * scale, mode="lines+markers",
                name=plot_text(entry["entry_name"]), visible=not buttons,
                line={"color": colours.get(strategy, FRONT_COLOUR)},
                hovertext=[f"{plot_text(entry['entry_name'])}<br>commit {plot_text(str(c)[:8])}"
                           for c in series["commit"]],
                hoverinfo="text+y"))
        visible_sets.append((method, axis, range(first, len(figure.data))))
        buttons.append(method)
    if not visible_sets:
        return []
    menu = [{"label": plot_text(method), "method": "update", "args": [
        {"visible": [k in indices for k in range(len(figure.data))]},
        {"yaxis": {"title": {"text": axis}}}]} for method, axis, indices in visible_sets]
    title = "History over commits (menu: which figure)"
    figure = _layout(figure, title, "commit date", visible_sets[0][1])
    figure.update_layout(updatemenus=[{"buttons": menu, "x": 1, "xanchor": "right", "y": 1.15}],
                         legend={"font": {"size": 9}})
    return [(title, figure)]


def interactive_figures(frame: pd.DataFrame, combos: pd.DataFrame | None = None
                        ) -> list[tuple[str, go.Figure]]:
    """Every interactive figure the results allow, in reading order."""
    from harness.reporting.answer import combinations

    combos = combinations(frame) if combos is None else combos
    colours = strategy_colours(_strategy(p, b) for p, b in zip(frame["params"],
                                                               frame["benchmark"]))
    return (pareto_figures(combos, colours) + ratio_figures(combos, colours)
            + heatmap_figures(frame) + cold_warm_figures(combos, colours)
            + roofline_figures(combos, frame, colours) + memory_split_figures(combos)
            + history_figures(frame, colours))


def _strategy(params, benchmark: str) -> str:
    """As ``answer.strategy_of``, from a results row's params dict."""
    value = params.get(names.STRATEGY_PARAM) if isinstance(params, dict) else None
    return str(value) if value is not None else names.benchmark_class(benchmark)


def figure_json(figure: go.Figure) -> str:
    """The figure as JSON safe inside a <script type="application/json"> element: '<', '>'
    and '&' as JSON escapes, so no text in it can close the element."""
    text = figure.to_json(validate=False, pretty=False, remove_uids=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def plotly_js() -> str:
    """plotly.js, minified, as shipped in the plotly package (embedded once per page)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()

