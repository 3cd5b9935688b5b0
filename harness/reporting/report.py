"""Render asv results: Markdown, one self-contained HTML file, CSV, Parquet, JSON.

``render(frame, fmt)`` returns the report as text (or bytes for Parquet); ``write_report`` writes
it atomically (temporary file + rename) so a killed run never leaves a half-written report.
The report opens with the answer (``harness.reporting.answer``: per problem, the fastest
strategy, the leanest, the fastest within a few memory budgets, and a one-line reading), then
the figures (interactive in HTML, ``harness.reporting.interactive``; PNG from
``harness.reporting.plots`` for papers), then the details: one section per benchmark family
(the first part of asv's benchmark name), the numbers behind the figures, the regressions asv
publish would list and the full table (sortable and filterable in HTML, skipped and failed
combinations counted with their reasons). ``harness.reporting.page`` lays out the HTML page.

Every name and value from the results is escaped: in HTML with ``html.escape`` (in figures,
``interactive.plot_text``; figure data sits in JSON script elements with '<', '>' and '&'
escaped), in Markdown cells with HTML entities and backslashes.
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

from harness.names import REFERENCE_FAMILY, family
from harness.reporting.answer import ANSWER_HEADERS, Answer, answer_rows, answers, short_names
from harness.reporting.compare import geomean_summary, regressions
from harness.reporting.textsafe import csv_cell, new_file_mode, plain_text
from harness.units import binary_bytes, gbps_number, human_difference, human_gbps, human_value

FORMATS = ("md", "html", "csv", "parquet", "json")
TEXT_COLUMNS = ["params", "requirements", "samples", "raw_params"]  # nested: JSON text on export


#: Why a combination has no figure, as far as asv's result files tell (asv keeps no message).
STATUS_REASONS = {
    "skipped": "declared by the benchmark (its setup raised NotImplementedError: outside the "
               "profile, refused by the strategy, or too large for this machine); asv run "
               "prints the reason",
    "failed": "the benchmark raised an error or timed out; asv run --show-stderr prints it",
}


@dataclass
class Section:
    title: str
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: HTML: shown unfolded (the others fold behind their title).
    open: bool = False
    #: Per row of the first table, a number to sort each column by (None: by its text); set
    #: on the full results, which the HTML page makes sortable and filterable.
    sort_keys: list[list[float | None]] | None = None


@dataclass
class Report:
    title: str
    sections: list[Section]
    figures: list[tuple[str, bytes]]  # (title, PNG bytes)
    answers: list[Answer] = field(default_factory=list)
    #: Interactive figures: (title, Plotly JSON (``interactive.figure_json``), whether it
    #: takes the page's whole width).
    interactive: list[tuple[str, str, bool]] = field(default_factory=list)
    #: One-paragraph overview: what the results hold, this machine's limits.
    lead: list[str] = field(default_factory=list)


def build_report(frame: pd.DataFrame, title: str = "Benchmark report", plots: bool = True,
                 threshold: float = 0.05) -> Report:
    """The report's content (tables as strings, figures as PNG and Plotly JSON) from a results
    frame; ``plots=False`` leaves both kinds of figure out."""
    from harness.reporting.answer import combinations
    from harness.reporting.plots import latest_results

    envs = short_names(frame["env_name"].dropna()) if not frame.empty else {}
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
        section.tables.append(("Latest results", *_latest_table(rows, envs)))
        sections.append(section)
    suite = _suite_section(frame)
    if suite.tables:
        sections.insert(1, suite)
    if frame["commit"].nunique() > 1:
        sections.insert(0, _regressions_section(frame, threshold))
    sections.append(_full_section(frame, envs))
    combos = combinations(frame) if not frame.empty else pd.DataFrame()
    figures, interactive = [], []
    if plots and not frame.empty:
        from harness.reporting.interactive import figure_json, interactive_figures, is_wide

        interactive = [(figure_title, figure_json(figure), is_wide(figure))
                       for figure_title, figure in interactive_figures(frame, combos)]
        import matplotlib.pyplot as plt

        from harness.reporting.plots import suite_figures

        for figure_title, figure in suite_figures(frame):
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")  # long labels
            plt.close(figure)
            figures.append((figure_title, buffer.getvalue()))
    return Report(title, sections, figures, answers=answers(combos), interactive=interactive,
                  lead=_lead(frame))


def _lead(frame: pd.DataFrame) -> list[str]:
    """What the results hold and this machine's limits, in two sentences."""
    if frame.empty:
        return ["No results found."]
    from harness.names import DISK_ROOF, MEMORY_ROOF
    from harness.reporting.answer import latest_ok

    counts = frame["status"].value_counts()
    commits = frame["commit"].nunique()
    text = (f"{counts.get('ok', 0)} figures measured ({counts.get('skipped', 0)} skipped, "
            f"{counts.get('failed', 0)} failed) in {commits} commit{'s' if commits > 1 else ''}")
    dates = frame["date"].dropna()
    if not dates.empty:
        text += f", newest {str(frame.loc[dates.idxmax(), 'commit'])[:8]} of {dates.max():%Y-%m-%d}"
    lines = [text + "."]
    latest = latest_ok(frame)
    for machine, rows in latest.groupby("machine", sort=True):
        roofs = [human_gbps(rows.loc[rows["benchmark"] == name, "value"].median(), decimals=1)
                 for name in (MEMORY_ROOF, DISK_ROOF)]
        if roofs != ["-", "-"]:
            lines.append(f"Machine {machine}: memory read {roofs[0]}, cold disk read "
                         f"{roofs[1]}.")
    return lines


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
    note = _first_product_note(frame)
    if note:
        section.notes.append(note)
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


#: Strategies whose first product after opening faults the file's pages into the process's
#: page tables (memory maps), so that asv's ``time_matvec`` (one product per opening) and
#: ``measure``'s steady-state passes differ most (docs/findings-suite.md).
MAPPED_STRATEGIES = ("memmap", "memmap-rows", "memmap-blocked", "hdf5-mmap", "zarr-mmap")


def _first_product_note(frame: pd.DataFrame) -> str:
    """Which figure to believe, when the results hold asv times of mapped routes."""
    from harness.names import STRATEGY_PARAM, TIME

    if frame.empty or f"param_{STRATEGY_PARAM}" not in frame:
        return ""
    times = frame[frame["benchmark"].str.endswith(f".{TIME}") & (frame["status"] == "ok")]
    mapped = sorted(set(times[f"param_{STRATEGY_PARAM}"].dropna()) & set(MAPPED_STRATEGIES))
    if not mapped:
        return ""
    return (f"{TIME} of {', '.join(mapped)} is the first product after the file was opened: "
            "asv runs setup again before every sample, and a map's first product faults every "
            "page into the process. Believe it for a one-off A @ x. An iterative solver's later "
            "products skip those faults: `python -m harness measure` times them (steady state; "
            "measured here 1.5x faster for memmap and 1.8x for zarr-mmap on the notebook's "
            "matrix, docs/findings-suite.md).")


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


def _env(envs: dict[str, str], name) -> str:
    return envs.get(str(name), str(name))


def _latest_table(rows: pd.DataFrame, envs: dict[str, str]
                  ) -> tuple[list[str], list[list[str]]]:
    headers = ["benchmark", "parameters", "value", "machine", "environment", "commit", "date"]
    body = [[r["benchmark"], _params_text(r["params"]), _value_text(r), str(r["machine"]),
             _env(envs, r["env_name"]), str(r["commit"])[:8], _date_text(r["date"])]
            for _, r in rows.sort_values(["benchmark", "entry_name"]).iterrows()]
    return _without_single_environment(headers, body, envs)


def _without_single_environment(headers: list[str], body: list[list[str]],
                                envs: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """The table without its environment column when every row has the same one (the full
    name, a temporary path as often as not, is given once under the full results)."""
    if len(envs) > 1 or "environment" not in headers:
        return headers, body
    column = headers.index("environment")
    return (headers[:column] + headers[column + 1:],
            [row[:column] + row[column + 1:] for row in body])


FULL_HEADERS = ["benchmark", "parameters", "value", "unit", "status", "machine", "environment",
                "commit", "date"]


def _full_section(frame: pd.DataFrame, envs: dict[str, str]) -> Section:
    """Measured rows (sortable: value and date sort as numbers), then the skipped and failed
    ones counted per benchmark with their reason."""
    ordered = frame.sort_values(["benchmark", "entry_name", "date"], kind="stable")
    ok = ordered[ordered["status"] == "ok"]
    body = [[r["benchmark"], _params_text(r["params"]), _value_text(r), str(r["unit"]),
             r["status"], str(r["machine"]), _env(envs, r["env_name"]), str(r["commit"])[:8],
             _date_text(r["date"])] for _, r in ok.iterrows()]
    keys = [[None, None, float(r["value"]), None, None, None, None, None,
             None if pd.isna(r["date"]) else r["date"].timestamp()] for _, r in ok.iterrows()]
    headers, body = _without_single_environment(FULL_HEADERS, body, envs)
    if len(headers) < len(FULL_HEADERS):
        column = FULL_HEADERS.index("environment")
        keys = [key[:column] + key[column + 1:] for key in keys]
    section = Section("Full results", tables=[(f"{len(ok)} measured", headers, body)],
                      open=True, sort_keys=keys)
    missing = ordered[ordered["status"] != "ok"]
    if not missing.empty:
        counts = missing.groupby(["status", "benchmark"], sort=True).size()
        section.tables.append((
            f"{len(missing)} skipped or failed",
            ["status", "benchmark", "combinations", "reason"],
            [[status, benchmark, str(count), STATUS_REASONS.get(status, status)]
             for (status, benchmark), count in counts.items()]))
    if len(envs) > 1:
        section.notes.append("Environments: " + "; ".join(
            f"{short} = {name}" for name, short in sorted(envs.items())))
    elif envs:
        section.notes.append(f"Environment of every result: {next(iter(envs))}.")
    return section


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
        section.open = True
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


def html_table(headers: Sequence[str], rows: Sequence[Sequence[object]],
               css_class: str = "", table_id: str = "",
               sort_keys: Sequence[Sequence[float | None]] | None = None) -> str:
    """An escaped HTML table; ``sort_keys``: per row and column, a number written as the
    cell's ``data-sort`` (None: no attribute)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    attributes = (f' id="{html.escape(table_id)}"' if table_id else "") + \
        (f' class="{html.escape(css_class)}"' if css_class else "")

    def cell(value: object, key: float | None) -> str:
        sort = "" if key is None or math.isnan(key) else f' data-sort="{key!r}" class="num"'
        return f"<td{sort}>{html.escape(str(value))}</td>"

    body = "\n".join(
        "<tr>" + "".join(cell(c, sort_keys[r][k] if sort_keys else None)
                         for k, c in enumerate(row)) + "</tr>"
        for r, row in enumerate(rows))
    return (f"<table{attributes}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n"
            "</tbody>\n</table>")


ANSWER_TITLE = "The answer: per problem, which strategy, at what cost"
ANSWER_NOTE = (f"x {REFERENCE_FAMILY}: time as a multiple of the in-RAM product on the same "
               "matrix; peak memory: the product's peak increment (anon: heap, which the kernel "
               "cannot drop; file-backed: mapped pages, which it can); within 1/N: fastest "
               "whose peak stays under that share of the matrix's size; of memory roof: "
               "achieved GB/s over this machine's memory read bandwidth.")


def to_markdown(report: Report) -> str:
    parts = [f"# {markdown_cell(report.title)}"]
    parts += [markdown_cell(line) for line in report.lead]
    if report.answers:
        parts.append(f"## {markdown_cell(ANSWER_TITLE)}")
        for answer in report.answers:
            parts.append(f"**{markdown_cell(answer.problem)}**: {markdown_cell(answer.reading)}"
                         f"\n\n{markdown_table(ANSWER_HEADERS, answer_rows(answer))}")
        parts.append(markdown_cell(ANSWER_NOTE))
    for section in report.sections:
        parts.append(f"## {markdown_cell(section.title)}")
        parts += [markdown_cell(note) for note in section.notes]
        for caption, headers, rows in section.tables:
            parts.append(f"**{markdown_cell(caption)}**\n\n{markdown_table(headers, rows)}")
    if report.figures or report.interactive:
        parts.append("## Figures")
        parts += [f"- {markdown_cell(title)} (in the HTML report)"
                  for title, *_ in report.interactive or report.figures]
    return "\n\n".join(parts) + "\n"


def to_html(report: Report, links: Sequence[tuple[str, str]] = (),
            downloads: Sequence[tuple[str, str]] = ()) -> str:
    """One self-contained page (``harness.reporting.page``); ``links``: (text, href) pairs shown
    above the title, e.g. the way back to a published asv site; ``downloads``: (text, href) of
    the data behind the page."""
    from harness.reporting.page import render_page

    return render_page(report, links=links, downloads=downloads)


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


def json_value(value):
    """One value as strict JSON takes it: NaN and missing -> None, infinities as strings,
    timestamps in ISO format, tuples as lists; anything else unchanged."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


_json_value = json_value  # the old name


def to_json(frame: pd.DataFrame) -> str:
    """Records, one per row; NaN -> null, infinities as strings (strict JSON)."""
    records = [{k: json_value(v) for k, v in row.items()}
               for row in frame.drop(columns=["samples"], errors="ignore").to_dict("records")]
    return json.dumps(records, indent=1, default=str, allow_nan=False) + "\n"


def render(frame: pd.DataFrame, fmt: str, title: str = "Benchmark report",
           plots: bool = True, links: Sequence[tuple[str, str]] = (),
           downloads: Sequence[tuple[str, str]] | None = None) -> str | bytes:
    """The report (md, html) or the data (csv, parquet, json) as text, bytes for parquet;
    ``links`` (text, href) go at the top of the HTML report; ``downloads`` (text, href) link
    the data from it (default: ``embedded_downloads``, the data inside the page)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib layout chatter is not the reader's concern
        return _render(frame, fmt, title, plots, links, downloads)


#: Data larger than this is linked only when written beside the page (publish does).
EMBEDDED_DOWNLOAD_LIMIT = 2_000_000  # bytes


def embedded_downloads(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """CSV and Parquet of the tidy frame as data: links, each while under
    ``EMBEDDED_DOWNLOAD_LIMIT`` bytes."""
    out = []
    for fmt, mime in (("csv", "text/csv"), ("parquet", "application/vnd.apache.parquet")):
        data = _render(frame, fmt, "", False, (), ())
        data = data.encode("utf-8") if isinstance(data, str) else data
        if len(data) <= EMBEDDED_DOWNLOAD_LIMIT:
            out.append((f"results.{fmt}", (f"data:{mime};base64,"
                                          f"{base64.b64encode(data).decode('ascii')}")))
    return out


def _render(frame: pd.DataFrame, fmt: str, title: str, plots: bool,
            links: Sequence[tuple[str, str]],
            downloads: Sequence[tuple[str, str]] | None) -> str | bytes:
    if fmt == "md":
        return to_markdown(build_report(frame, title, plots=False))
    if fmt == "html":
        return to_html(build_report(frame, title, plots=plots), links=links,
                       downloads=embedded_downloads(frame) if downloads is None else downloads)
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
    """Write to a temporary file beside ``path`` and rename it over ``path``; ValueError when
    ``path`` exists and is not a regular file (a FIFO, a device, a directory), which the
    rename would replace."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ValueError(f"refusing to write {str(path)!r}: it exists and is not a regular "
                         "file, and writing would replace it; give a regular file path")
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
