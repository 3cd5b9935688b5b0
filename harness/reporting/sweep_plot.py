"""The size sweep's figure: GB/s against matrix size, with both roofs and this machine's RAM
(``python -m harness sweep --plot PATH.html``).

``write_sweep_plot(path, sweep)`` takes a sweep as JSON data (``Sweep.to_dict()`` of
``harness.measuring.runs.sweep``: ``records`` with ``size_bytes``, ``gbps``, ``strategy``,
``cache`` and ``cache_label``; ``roofline`` with ``memory_read_gbps`` and ``disk_read_gbps``;
``ram_bytes``), so this half never imports the measuring one. The figure: both axes log, one
line per (strategy, cache state asked), a warm point whose file the page cache could not hold
drawn open and named "2nd pass", horizontal lines at the memory and disk roofs, a vertical line
at the RAM. The page is one HTML file with plotly.js embedded (no network), written atomically.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path

from harness.units import human_bytes, human_gbps, human_seconds

#: Suffixes ``--plot`` accepts: the page is HTML.
HTML_SUFFIXES = (".html", ".htm")
SECOND_PASS = "2nd pass"  # the measuring half's label of a warm pass read from disk
MEMORY_ROOF, DISK_ROOF, RAM_LINE = "memory roof", "disk roof", "RAM"


def check_plot_path(path: str | os.PathLike) -> Path:
    """``path`` if the figure may be written there: an .html name in a directory that exists,
    not a directory itself; else a ValueError naming the fix. Writes nothing."""
    text = os.fspath(path)
    target = Path(text)
    if not text.strip() or target.suffix.lower() not in HTML_SUFFIXES:
        raise ValueError(f"--plot writes an HTML page: give a file name ending in .html, got "
                         f"{text!r}")
    if not target.parent.is_dir():
        raise ValueError(f"--plot {text}: the directory {str(target.parent)!r} does not exist; "
                         "create it first, or give a path in an existing directory")
    if target.exists() and not target.is_file():
        raise ValueError(f"--plot {text}: it exists and is not a regular file; give a file path")
    return target


def _decimal_size(n: float) -> str:
    """1e6 -> '1 MB', 1e10 -> '10 GB' (decimal units, as sizes are asked)."""
    for unit, factor in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= factor:
            return f"{n / factor:g} {unit}"
    return f"{n:g} B"


def _log_range(values: list[float]) -> list[float]:
    """A log axis's range (log10 units) holding every value, with a margin."""
    return [math.log10(min(values)) - 0.15, math.log10(max(values)) + 0.15]


def sweep_figure(sweep: dict):
    """The plotly Figure of ``sweep`` (``Sweep.to_dict()``)."""
    import plotly.graph_objects as go

    from harness.reporting.interactive import plot_text, strategy_colours, ticks_125

    records = [r for r in sweep["records"] if r.get("gbps") and r["gbps"] > 0]
    roofline = sweep.get("roofline") or {}
    memory, disk = roofline.get("memory_read_gbps"), roofline.get("disk_read_gbps")
    ram = sweep.get("ram_bytes")
    colours = strategy_colours(r["strategy"] for r in records)
    figure = go.Figure()
    lines = dict.fromkeys((r["strategy"], r["cache"]) for r in records)
    for strategy, state in lines:
        points = sorted((r for r in records if (r["strategy"], r["cache"]) == (strategy, state)),
                        key=lambda r: r["size_bytes"])
        uncached = [r["cache_label"] == SECOND_PASS for r in points]
        name = f"{strategy}, {state}" + (f" (open: {SECOND_PASS})" if any(uncached) else "")
        figure.add_trace(go.Scatter(
            x=[r["size_bytes"] for r in points], y=[r["gbps"] for r in points],
            name=plot_text(name), mode="lines+markers",
            line={"color": colours[strategy], "dash": "solid" if state == "warm" else "dash"},
            marker={"size": 9, "symbol": ["circle-open" if u else "circle" for u in uncached]},
            text=["<br>".join(plot_text(part) for part in (
                f"{strategy}, {r['cache_label']}",
                f"{human_bytes(r['size_bytes'])} ({'x'.join(map(str, r['spec']['shape']))})",
                f"median {human_seconds(r['seconds'])}, {human_gbps(r['gbps'])}"))
                for r in points],
            hovertemplate="%{text}<extra></extra>"))
    # On a log axis an annotation is placed at log10 of its value (a shape at the value
    # itself), so the labels are added apart from add_hline's and add_vline's own.
    for gbps, label in ((memory, MEMORY_ROOF), (disk, DISK_ROOF)):
        if gbps:
            figure.add_hline(y=gbps, line={"color": "#444", "dash": "dot", "width": 1})
            figure.add_annotation(text=f"{label} {human_gbps(gbps)}", showarrow=False,
                                  xref="paper", x=0, xanchor="left", yref="y",
                                  y=math.log10(gbps), yanchor="bottom")
    if ram:
        figure.add_vline(x=ram, line={"color": "#b22222", "dash": "dashdot", "width": 1})
        figure.add_annotation(text=f"{RAM_LINE} {human_bytes(ram)}", showarrow=False,
                              xref="x", x=math.log10(ram), xanchor="right", yref="paper",
                              y=1, yanchor="top", font={"color": "#b22222"})
    sizes = [r["size_bytes"] for r in records] + ([ram] if ram else [])
    rates = [r["gbps"] for r in records] + [g for g in (memory, disk) if g]
    ticks = [10.0 ** e for e in range(math.floor(math.log10(min(sizes))),
                                      math.ceil(math.log10(max(sizes))) + 1)] if sizes else []
    figure.update_layout(
        title={"text": "GB/s against matrix size: where the page cache stops helping",
               "font": {"size": 14}},
        template="plotly_white", height=520, hovermode="closest",
        legend={"title": {"text": "click to hide or show"}})
    figure.update_xaxes(title_text="matrix size (bytes, log)", type="log",
                        range=_log_range(sizes) if sizes else None, tickmode="array",
                        tickvals=ticks, ticktext=[_decimal_size(t) for t in ticks])
    figure.update_yaxes(title_text="read rate (GB/s, log)", type="log",
                        range=_log_range(rates) if rates else None, exponentformat="none",
                        **ticks_125(rates))
    return figure


def sweep_page(sweep: dict) -> str:
    """The figure as one HTML page, plotly.js embedded (the page needs no network), with a
    note on what the lines and the open markers mean."""
    from plotly.io import to_html

    roofline = sweep.get("roofline") or {}
    note = ("Each point: the median pass of one strategy on one matrix, matrix bytes per second. "
            "Solid lines: warm (the file in the page cache when it fits); dashed: cold (evicted "
            f"before each pass). Open markers: '{SECOND_PASS}', warm was asked but the page "
            "cache could not hold the file, so the pass read the disk. Roofs probed once, "
            f"before the first size: memory {human_gbps(roofline.get('memory_read_gbps'))}, "
            f"disk (cold) {human_gbps(roofline.get('disk_read_gbps'))}.")
    body = to_html(sweep_figure(sweep), include_plotlyjs=True, full_html=False)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>harness sweep: GB/s against matrix size</title></head>"
            "<body style=\"font-family: system-ui, sans-serif\">\n"
            f"{body}\n<p>{html.escape(note)}</p>\n</body></html>\n")


def write_sweep_plot(path: str | os.PathLike, sweep: dict) -> Path:
    """Write ``sweep``'s page to ``path`` (checked by ``check_plot_path``) atomically: a
    temporary file in the same directory, renamed over ``path``."""
    from harness.reporting.report import write_atomically

    return write_atomically(check_plot_path(path), sweep_page(sweep))
