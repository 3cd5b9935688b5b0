"""Render asv results: Markdown, one self-contained HTML file, CSV, Parquet, JSON.

``render(frame, fmt)`` returns the report as text (or bytes for Parquet); ``write_report`` writes
it atomically (temporary file + rename) so a killed run never leaves a half-written report.
The summary has one section per benchmark family (the first part of asv's benchmark name), the
figures our suite allows (see ``harness.reporting.plots``), the regressions asv publish would list, and
the full table. Every name and value from the results is escaped: in HTML with ``html.escape``
(figures are PNG images, so no result text reaches the page unescaped), in Markdown cells with
HTML entities and backslashes.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.names import family
from harness.reporting.compare import geomean_summary, regressions
from harness.reporting.textsafe import csv_cell, new_file_mode, plain_text
from harness.units import binary_bytes, gbps_number, human_difference, human_value

FORMATS = ("md", "html", "csv", "parquet", "json")
TEXT_COLUMNS = ["params", "requirements", "samples", "raw_params"]  # nested: JSON text on export


@dataclass
class Section:
    title: str
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    title: str
    sections: list[Section]
    figures: list[tuple[str, bytes]]  # (title, PNG bytes)


def build_report(frame: pd.DataFrame, title: str = "Benchmark report", plots: bool = True,
                 threshold: float = 0.05) -> Report:
    """The report's content (tables as strings, figures as PNG) from a results frame."""
    from harness.reporting.plots import latest_results

    latest_all = frame.sort_values(["date", "commit"], kind="stable").drop_duplicates(
        ["entry_name", "machine", "env_name"], keep="last")
    sections = [_overview(frame)]
    for name, rows in latest_all.groupby(latest_all["benchmark"].map(family), sort=True):
        section = Section(f"Family {name}")
        ok = latest_results(rows)
        if not ok.empty:
            # Per benchmark, not per class: a class's byte figures (peakmem, increments)
            # measure different things and must not be averaged together.
            summary = geomean_summary(ok, by="benchmark")
            section.tables.append((
                "Geometric mean of the latest values over parameters",
                ["benchmark", "unit", "results", "geometric mean"],
                [[r["benchmark"], r["unit"], str(r["count"]),
                  human_value(r["geomean_value"], r["unit"])] for _, r in summary.iterrows()]))
        section.tables.append(("Latest results", *_latest_table(rows)))
        sections.append(section)
    suite = _suite_section(frame)
    if suite.tables:
        sections.insert(1, suite)
    if frame["commit"].nunique() > 1:
        sections.append(_regressions_section(frame, threshold))
    sections.append(Section("Full results", tables=[("All rows", *_full_table(frame))]))
    figures = []
    if plots and not frame.empty:
        import matplotlib.pyplot as plt

        from harness.reporting.plots import suite_figures

        for figure_title, figure in suite_figures(frame):
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")  # long labels
            plt.close(figure)
            figures.append((figure_title, buffer.getvalue()))
    return Report(title, sections, figures)


def _suite_section(frame: pd.DataFrame) -> Section:
    """The numbers behind our suite's figures (present only when the results hold them)."""
    from harness.reporting.plots import chunk_heatmap_table, pareto_table, roofline_table

    section = Section("Our suite: Pareto fronts, HDF5 chunk cache, roofline")
    pareto = pareto_table(frame)
    for problem, group in (pareto.groupby("problem", sort=True) if not pareto.empty else []):
        front = group[group["on_front"]]
        section.tables.append((
            f"Pareto front (time vs peak increment), {problem}: {len(front)} of {len(group)}",
            ["configuration", "time", "peak increment"],
            [[r["configuration"], human_value(r["time_seconds"], "seconds"),
              human_value(r["peak_increment_bytes"], "bytes")] for _, r in front.iterrows()]))
    for title, table in chunk_heatmap_table(frame).items():
        section.tables.append((
            f"HDF5 time, chunk shape x chunk cache, {title}",
            ["chunks"] + [binary_bytes(float(c)) for c in table.columns],
            [[str(chunks)] + ["" if pd.isna(v) else human_value(float(v), "seconds")
                             for v in row] for chunks, row in table.iterrows()]))
    roofline = roofline_table(frame)
    if not roofline.empty:
        has_roof = "memory_gbps" in roofline and roofline["memory_gbps"].notna().any()
        section.tables.append((
            "Bandwidth against the roofline (fastest 15 per machine)",
            ["machine", "configuration", "GB/s", "of memory roof", "memory roof", "disk roof"],
            [[r["machine"], r["configuration"], gbps_number(r["gbps"]),
              f"{r['fraction_of_memory_roof']:.0%}" if has_roof and
              not pd.isna(r["fraction_of_memory_roof"]) else "n/a",
              gbps_number(r.get("memory_gbps")), gbps_number(r.get("disk_gbps"))]
             for _, r in roofline.groupby("machine").head(15).iterrows()]))
    return section


def _overview(frame: pd.DataFrame) -> Section:
    section = Section("Overview")
    if frame.empty:
        section.notes.append("No results found.")
        return section
    dates = frame["date"].dropna()
    section.notes.append(
        f"{frame['file'].nunique()} result files, {frame['commit'].nunique()} commits, "
        f"machines: {', '.join(sorted(frame['machine'].dropna().unique()))}; commit dates "
        f"{dates.min():%Y-%m-%d} to {dates.max():%Y-%m-%d} (UTC)." if not dates.empty else
        f"{frame['file'].nunique()} result files.")
    rows = []
    for name, group in frame.groupby(frame["benchmark"].map(family), sort=True):
        counts = group["status"].value_counts()
        rows.append([name, str(group["benchmark"].nunique()), str(len(group)),
                     str(counts.get("ok", 0)), str(counts.get("failed", 0)),
                     str(counts.get("skipped", 0))])
    section.tables.append(("Results per family", ["family", "benchmarks", "results", "ok",
                                                  "failed", "skipped"], rows))
    return section


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) if isinstance(params, dict) else ""


def _value_text(row) -> str:
    if row["status"] != "ok":
        return row["status"]
    err = (row["q_75"] - row["q_25"]) / 2 if not pd.isna(row["q_25"]) else None
    return human_value(row["value"], row["unit"], err=err)


def _latest_table(rows: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    headers = ["benchmark", "parameters", "value", "machine", "environment", "commit", "date"]
    body = [[r["benchmark"], _params_text(r["params"]), _value_text(r), str(r["machine"]),
             str(r["env_name"]), str(r["commit"])[:8], _date_text(r["date"])]
            for _, r in rows.sort_values(["benchmark", "entry_name"]).iterrows()]
    return headers, body


def _full_table(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    headers = ["benchmark", "parameters", "value", "unit", "status", "machine", "environment",
               "commit", "date"]
    ordered = frame.sort_values(["benchmark", "entry_name", "date"], kind="stable")
    body = [[r["benchmark"], _params_text(r["params"]), _value_text(r), str(r["unit"]),
             r["status"], str(r["machine"]), str(r["env_name"]), str(r["commit"])[:8],
             _date_text(r["date"])] for _, r in ordered.iterrows()]
    return headers, body


def _date_text(date) -> str:
    return "" if pd.isna(date) else f"{date:%Y-%m-%d %H:%M}"


def regression_rows(found: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    headers = ["benchmark (parameters)", "machine", "environment", "commits", "before",
               "after", "ratio", "change"]
    body = [[r["entry_name"], str(r["machine"]), str(r["env_name"]),
             f"{str(r['commit_before'])[:8]}..{str(r['commit_after'])[:8]}",
             human_value(r["value_before"], r["unit"]), human_value(r["value_after"], r["unit"]),
             f"{r['ratio']:.2f}", human_difference(r["value_after"] - r["value_before"],
                                                   r["unit"])]
            for _, r in found.iterrows()]
    return headers, body


def _regressions_section(frame: pd.DataFrame, threshold: float) -> Section:
    section = Section("Regressions (as asv publish lists them)")
    found = regressions(frame, threshold=threshold)
    if found.empty:
        section.notes.append("No lasting regressions.")
    else:
        section.tables.append((f"{len(found)} regressions", *regression_rows(found)))
    return section


# ----------------------------------------------------------------------------- text renderers


def markdown_cell(text: object) -> str:
    """One Markdown table cell: HTML-escaped, pipes and emphasis characters backslashed."""
    value = html.escape(plain_text(text), quote=False)
    for character in "\\|*_`[]":
        value = value.replace(character, "\\" + character)
    return value


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(markdown_cell(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain, aligned table for terminals (control characters made visible)."""
    cells = [[_printable(h) for h in headers]] + [[_printable(c) for c in row] for row in rows]
    widths = [max(len(row[k]) for row in cells) for k in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_table(fmt: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A table in the terminal's format (``"text"``: ``text_table``) or as Markdown (``"md"``:
    ``markdown_table``)."""
    if fmt not in ("text", "md"):
        raise ValueError(f"unknown table format {fmt!r}; choose text or md")
    return (markdown_table if fmt == "md" else text_table)(headers, rows)


def _printable(value: object) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))


def html_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                     for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def to_markdown(report: Report) -> str:
    parts = [f"# {markdown_cell(report.title)}"]
    for section in report.sections:
        parts.append(f"## {markdown_cell(section.title)}")
        parts += [markdown_cell(note) for note in section.notes]
        for caption, headers, rows in section.tables:
            parts.append(f"**{markdown_cell(caption)}**\n\n{markdown_table(headers, rows)}")
    if report.figures:
        parts.append("## Figures")
        parts += [f"- {markdown_cell(title)} (in the HTML report)" for title, _ in report.figures]
    return "\n\n".join(parts) + "\n"


HTML_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }
th { background: #f0f0f0; }
figure { margin: 1em 0; } img { max-width: 100%; }
nav { margin-bottom: 1em; } nav a { margin-right: 1.5em; }
"""


def to_html(report: Report, links: Sequence[tuple[str, str]] = ()) -> str:
    """One self-contained page; ``links``: (text, href) pairs shown above the title, e.g. the
    way back to a published asv site."""
    title = html.escape(report.title)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{title}</title><style>{HTML_STYLE}</style></head><body>"]
    if links:
        parts.append("<nav>" + "".join(f'<a href="{html.escape(href)}">{html.escape(text)}</a>'
                                       for text, href in links) + "</nav>")
    parts.append(f"<h1>{title}</h1>")
    for section in report.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(note)}</p>" for note in section.notes]
        for caption, headers, rows in section.tables:
            parts.append(f"<h3>{html.escape(caption)}</h3>")
            parts.append(html_table(headers, rows))
        if section.title == "Overview" and report.figures:
            parts.append("<h2>Figures</h2>")
            for figure_title, png in report.figures:
                data = base64.b64encode(png).decode("ascii")
                parts.append(f'<figure><img alt="{html.escape(figure_title)}" '
                             f'src="data:image/png;base64,{data}"><figcaption>'
                             f"{html.escape(figure_title)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- data exports


def flat_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The results frame with nested columns (dicts, lists) as JSON text, for CSV/Parquet."""
    flat = frame.copy()
    for column in TEXT_COLUMNS:
        if column in flat:
            flat[column] = flat[column].map(lambda v: None if v is None else
                                            json.dumps(v, allow_nan=True, default=_plain))
    for column in flat.columns:
        if flat[column].dtype == object:
            flat[column] = flat[column].map(lambda v: None if v is None else
                                            v if isinstance(v, str) else str(v))
    return flat


def _plain(value):
    """JSON's fallback for what ``json`` cannot write: arrays (samples) as lists, else text."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def to_json(frame: pd.DataFrame) -> str:
    """Records, one per row; NaN -> null, infinities as strings (strict JSON)."""
    records = [{k: _json_value(v) for k, v in row.items()}
               for row in frame.drop(columns=["samples"], errors="ignore").to_dict("records")]
    return json.dumps(records, indent=1, default=str, allow_nan=False) + "\n"


def render(frame: pd.DataFrame, fmt: str, title: str = "Benchmark report",
           plots: bool = True, links: Sequence[tuple[str, str]] = ()) -> str | bytes:
    """The report (md, html) or the data (csv, parquet, json) as text, bytes for parquet;
    ``links`` (text, href) go at the top of the HTML report."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib layout chatter is not the reader's concern
        return _render(frame, fmt, title, plots, links)


def _render(frame: pd.DataFrame, fmt: str, title: str, plots: bool,
            links: Sequence[tuple[str, str]]) -> str | bytes:
    if fmt == "md":
        return to_markdown(build_report(frame, title, plots=False))
    if fmt == "html":
        return to_html(build_report(frame, title, plots=plots), links=links)
    if fmt == "csv":
        flat = flat_frame(frame)
        for column in flat.columns:
            if not pd.api.types.is_numeric_dtype(flat[column]):
                flat[column] = flat[column].map(csv_cell)
        return flat.to_csv(index=False)
    if fmt == "json":
        return to_json(frame)
    buffer = io.BytesIO()
    flat_frame(frame).to_parquet(buffer, index=False)
    return buffer.getvalue()


def write_atomically(path: str | os.PathLike, content: str | bytes) -> Path:
    """Write to a temporary file beside ``path`` and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    mode = new_file_mode(path)  # mkstemp's 0600 would hide the file from a web server
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


SUFFIX_FORMATS = {"markdown": "md", "htm": "html", "pq": "parquet"}  # other suffixes: FORMATS


def format_for_path(path: str | os.PathLike) -> str:
    """The format a file name asks for ('report.html' -> 'html'); ValueError if it names none."""
    suffix = Path(path).suffix.lstrip(".").lower()
    fmt = SUFFIX_FORMATS.get(suffix, suffix)
    if fmt not in FORMATS:
        raise ValueError(f"cannot tell the format from {str(path)!r}; add --format "
                         f"({', '.join(FORMATS)})")
    return fmt


def output_format(fmt: str | None, path: str | os.PathLike | None) -> str:
    """The format to write: ``fmt`` when given, else the one ``path``'s extension names, else
    Markdown. ValueError when the extension names none, or for Parquet (binary) without a
    file."""
    if fmt is None and path:
        fmt = format_for_path(path)
    fmt = fmt or "md"
    if fmt == "parquet" and not path:
        raise ValueError("parquet is binary: give a file with -o FILE.parquet")
    return fmt


def write_report(frame: pd.DataFrame, path: str | os.PathLike, fmt: str | None = None,
                 title: str = "Benchmark report", plots: bool = True,
                 links: Sequence[tuple[str, str]] = ()) -> Path:
    """Render and write atomically; ``fmt`` defaults to the file's extension."""
    fmt = fmt or format_for_path(path)
    return write_atomically(path, render(frame, fmt, title=title, plots=plots, links=links))
