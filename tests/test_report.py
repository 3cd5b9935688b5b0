"""harness.reporting.report, harness.reporting.plots, harness.reporting.history and the
report/compare/history commands."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pandas as pd
import pytest
from report_fixture import known_suite, our_suite, write_suite

from harness.cli import main
from harness.reporting import history
from harness.reporting.answer import (
    answer_rows,
    answers,
    combinations,
    fraction_text,
    short_names,
)
from harness.reporting.compare import regressions
from harness.reporting.interactive import interactive_figures, plot_text
from harness.reporting.plots import (
    chunk_heatmap_table,
    pareto_front,
    pareto_table,
    roofline_table,
    suite_figures,
)
from harness.reporting.report import (
    format_table,
    markdown_cell,
    output_format,
    render,
    write_atomically,
)
from harness.reporting.results import load


@pytest.fixture
def suite_frame(tmp_path):
    write_suite(tmp_path / "results", our_suite())
    return load(tmp_path / "results")


def test_pareto_front_keeps_only_undominated_points():
    time_seconds = np.array([1.0, 2.0, 3.0, 2.5, 1.0])
    peak_bytes = np.array([10.0, 5.0, 1.0, 6.0, 10.0])
    assert pareto_front(time_seconds, peak_bytes).tolist() == [True, True, True, False, True]


def test_pareto_table_pairs_time_with_peak_increment_per_problem(suite_frame):
    table = pareto_table(suite_frame)
    assert len(table) == 8 and table["problem"].nunique() == 1
    assert table["problem"].iloc[0] == "shape=100x1000, dtype=float32"
    front = set(table.loc[table["on_front"], "configuration"])
    assert front == {"dense: strategy=dense", "memmap: strategy=memmap-blocked",
                     "memmap: strategy=memmap-rows"}


def test_chunk_heatmap_is_chunks_by_cache(suite_frame):
    (title, table), = chunk_heatmap_table(suite_frame).items()
    assert title == "shape=100x1000, dtype=float32, strategy=hdf5-blocked, compression=none"
    assert table.loc["columns", 1048576] == pytest.approx(0.8)
    assert table.loc["rows", 8388608] == pytest.approx(0.04)
    assert list(table.columns) == [1048576, 8388608]


def test_roofline_puts_bandwidth_against_this_machines_limits(suite_frame):
    table = roofline_table(suite_frame)
    assert len(table) == 4 and table["memory_gbps"].eq(25.0).all()
    assert table["disk_gbps"].eq(2.0).all()
    assert table["fraction_of_memory_roof"].max() == pytest.approx(0.8)


def test_suite_figures_appear_only_when_their_columns_exist(suite_frame, tmp_path):
    titles = [title for title, _ in suite_figures(suite_frame)]
    assert len(titles) == 3 and titles[0].startswith("Time vs peak increment")
    only_time = suite_frame[suite_frame["benchmark"].str.endswith("time_matvec")
                            & ~suite_frame["benchmark"].str.startswith("hdf5")]
    assert suite_figures(only_time) == []
    page = _without_own_scripts(render(suite_frame, "html"))  # plotly.js holds such text
    assert page.count('<img alt="') == 3 and page.count("data:image/png;base64,") == 3


def test_markdown_carries_the_numbers_behind_the_figures(suite_frame):
    text = render(suite_frame, "md")
    assert "Pareto front (time vs peak increment), shape=100x1000, dtype=float32: 3 of 8" in text
    assert "| rows | 50.0ms | 40.0ms |" in text  # chunk shape x cache (1 MiB, 8 MiB)
    assert "| box | dense: strategy=dense, shape=100x1000, dtype=float32 | 20 | 80% | 25 | 2 |" \
        in text


def test_script_in_names_and_values_never_reaches_the_html_unescaped(tmp_path):
    evil = "<script>alert('x')</script>"
    write_suite(tmp_path / "results", {
        f"evil.{evil}.time_x": (["label"], [[evil, "a|b"]], [1.0, 2.0]),
        "evil.Plain.time_y": ([], [], [0.5]),
    })
    frame = load(tmp_path / "results")
    page = render(frame, "html")
    assert "<script" not in _without_own_scripts(page).lower()
    assert "&lt;script&gt;" in page
    text = render(frame, "md")
    assert "<script" not in text.lower() and "a\\|b" in text
    assert markdown_cell("x|<b>*y*") == "x\\|&lt;b&gt;\\*y\\*"


@pytest.mark.slow
def test_report_of_real_results_escapes_and_has_no_suite_figures(asv_project):
    frame = load(asv_project.results_dir)
    page = render(frame, "html")
    assert "<script" not in _without_own_scripts(page).lower() and "<img" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 9
    text = render(frame, "md")
    assert f"{len(regressions(frame))} regressions" in text
    # The deliberate 60 MB allocation, shown in bytes: '| +59.9M |' or so.
    assert re.search(r"peakmem\\_buffer \|.*\| \+(5[5-9]|6[0-5])(\.\d)?M \|", text)


def test_data_exports_round_trip(suite_frame, tmp_path):
    path = write_atomically(tmp_path / "out.parquet", render(suite_frame, "parquet"))
    back = pd.read_parquet(path)
    assert len(back) == len(suite_frame) and back["value"].sum() == pytest.approx(
        suite_frame["value"].sum())
    csv = pd.read_csv(__import__("io").StringIO(render(suite_frame, "csv")))
    assert len(csv) == len(suite_frame)
    records = json.loads(render(suite_frame, "json"),
                         parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert len(records) == len(suite_frame) and records[0]["date"].startswith("2024-01-01")


def test_unknown_format_is_a_clear_error(suite_frame):
    with pytest.raises(ValueError, match="unknown format 'pdf'; choose one of md, html"):
        render(suite_frame, "pdf")


def test_interrupted_write_leaves_the_previous_report_untouched(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    target.write_text("previous report")

    def interrupted(_fd):
        raise KeyboardInterrupt  # as if the run were killed mid-write

    monkeypatch.setattr("harness.reporting.report.os.fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, "<html>half")
    assert target.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_cli_report_writes_html_and_warns_about_bad_files(tmp_path, capsys):
    write_suite(tmp_path / "results", our_suite())
    (tmp_path / "results" / "box" / "deadbeef-env.json").write_text('{"version": 2, "res')
    out = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "results"), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "deadbeef-env.json" in err and "not valid JSON" in err
    assert out.read_text().count("<img") == 3
    assert main(["report", str(tmp_path / "results"), "--strict", "-o", str(out)]) == 2
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert main(["report", str(tmp_path / "results"), "-f", "parquet"]) == 2


@pytest.mark.slow
def test_cli_compare_and_history_on_real_results(asv_project, capsys):
    first, second, third = (c[:8] for c in asv_project.commits)
    results = str(asv_project.results_dir)
    assert main(["compare", first, second, "--results", results, "--fail-on", "regressed"]) == 1
    shown = capsys.readouterr().out
    assert re.search(r"\b[5-6] regressed", shown) and re.search(r"\+(5[5-9]|6[0-5])(\.\d)?M ", shown)
    # Commit 3 fixes the failure: nothing fails (timing noise may move other rows).
    assert main(["compare", second, third, "--results", results, "--fail-on", "failed",
                 "--only-changed", "-f", "md"]) == 0
    shown = capsys.readouterr().out
    assert "| \\* | failed | 1 |" in shown and "| - | 30 items | 5 items |" in shown
    assert "unchanged" not in shown
    assert main(["compare", "ffff", second, "--results", results]) == 2
    assert main(["history", results, "--regressions", "-f", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == len(regressions(load(results)))
    assert "bench.Alloc.peakmem_buffer" in {r["entry_name"] for r in listed}
    assert main(["history", results, "-b", "Steady"]) == 0
    assert capsys.readouterr().out.count("bench.Steady.time_steady") == 1


def test_every_combination_gets_a_row(tmp_path):
    values = [["a", "b"], [1, 2, 3]]
    count = len(list(itertools.product(*values)))
    write_suite(tmp_path / "r", {"s.T.time_x": (["k", "n"], values, [0.1] * count)})
    assert len(load(tmp_path / "r")) == count == 6


def test_history_table_has_one_column_per_newest_commit(tmp_path):
    results = tmp_path / "results"
    for day, (commit, seconds) in enumerate([("aaaa0000", 0.010), ("bbbb1111", 0.020),
                                             ("cccc2222", 0.040)]):
        write_suite(results, {"s.T.time_x": (["n"], [[1, 2]], [seconds, None])},
                    commit=commit, date_ms=1704110400000 + day * 86_400_000)
    frame = load(results)
    assert history.newest_commits(frame, 2) == ["bbbb1111", "cccc2222"]
    headers, rows = history.history_table(frame)
    assert headers == ["benchmark (parameters)", "machine/env", "aaaa0000", "bbbb1111",
                       "cccc2222"]
    assert rows == [["s.T.time_x(1)", "box/env", "10.0ms", "20.0ms", "40.0ms"],
                    ["s.T.time_x(2)", "box/env", "failed", "failed", "failed"]]
    headers, rows = history.history_table(frame, count=1)
    assert headers[2:] == ["cccc2222"] and rows[0][2:] == ["40.0ms"]
    records = history.history_records(frame, count=2)
    assert [(r["commit"], r["status"]) for r in records if r["entry_name"] == "s.T.time_x(1)"] \
        == [("bbbb1111", "ok"), ("cccc2222", "ok")]
    assert len(records) == 4
    found = regressions(frame)
    assert [r["entry_name"] for r in history.regression_records(found)] == \
        found["entry_name"].tolist()


def test_output_format_comes_from_the_option_then_the_file_name():
    assert output_format(None, None) == "md"
    assert output_format(None, "out/report.htm") == "html"
    assert output_format("csv", "report.html") == "csv"
    with pytest.raises(ValueError, match="cannot tell the format from 'report.pdf'"):
        output_format(None, "report.pdf")
    with pytest.raises(ValueError, match="parquet is binary"):
        output_format("parquet", None)
    assert output_format("parquet", "r.pq") == "parquet"


def test_format_table_is_text_or_markdown():
    assert format_table("md", ["a", "b"], [["1", "x|y"]]) == "| a | b |\n|---|---|\n| 1 | x\\|y |"
    assert format_table("text", ["a", "bb"], [["10", "x"]]) == "a   bb\n--  --\n10  x"
    with pytest.raises(ValueError, match="unknown table format 'json'"):
        format_table("json", ["a"], [])


def _without_own_scripts(page: str) -> str:
    """The page without the script elements the report writes (marked data-harness)."""
    return re.sub(r'<script data-harness="[a-z]+"[^>]*>.*?</script>', "", page, flags=re.DOTALL)


def test_the_answer_names_fastest_leanest_and_fastest_within_budgets(suite_frame):
    (answer,) = answers(combinations(suite_frame))
    assert answer.problem == "100x1000 float32"
    assert answer_rows(answer) == [
        ["fastest", "dense", "10.0 ms", "1 x", "390.6 KiB", "-", "-", "80%"],
        ["within 1/2 of the matrix (195.3 KiB)", "memmap-blocked", "30.0 ms", "3 x",
         "97.7 KiB", "-", "-", "28%"],
        ["within 1/10 of the matrix (39.1 KiB), least memory", "memmap-rows", "500.0 ms",
         "50 x", "1000 B", "-", "-", "2%"]]
    assert answer.reading == ("Fastest: dense (10.0 ms). memmap-rows costs 50 x RAM at 1/400 "
                              "of its memory (500.0 ms, 1000 B).")


def test_least_memory_is_the_least_anonymous_memory_and_says_so():
    kib = 1024
    rows = [  # label, seconds, peak, anonymous: memmap-rows' peak is its mapped file pages
        ("dense", 0.010, 400 * kib, 400 * kib), ("memmap-blocked", 0.030, 100 * kib, 100 * kib),
        ("memmap-rows", 0.500, 1200 * kib, 84 * kib)]
    combos = pd.DataFrame([{
        "problem": "100x1000 float32", "label": label, "family": label.split("-")[0],
        "time_seconds": seconds, "peak_bytes": float(peak), "anon_bytes": float(anon),
        "file_bytes": float(peak - anon), "matrix_bytes": 400.0 * kib,
        "ratio_to_dense": seconds / 0.010, "memory_to_dense": peak / (400 * kib),
        "fraction_of_roof": 0.5} for label, seconds, peak, anon in rows])
    (answer,) = answers(combos)
    assert answer.picks["role"].tolist() == ["fastest", "within 1/2 of the matrix (200.0 KiB)",
                                             "least memory"]
    assert answer.picks["label"].tolist() == ["dense", "memmap-blocked", "memmap-rows"]
    assert answer.reading == (
        "Fastest: dense (10.0 ms). memmap-rows, the least anonymous memory (what the kernel "
        "cannot drop), costs 50 x RAM with 84.0 KiB of it (500.0 ms, 1.2 MiB peak with file "
        "pages).")


def test_the_answer_finds_a_strategy_faster_than_ram(tmp_path):
    write_suite(tmp_path / "results", known_suite())
    by_problem = {a.problem: a for a in answers(combinations(load(tmp_path / "results")))}
    assert sorted(by_problem) == ["100x1000 float32", "200x1000 float32"]
    second = by_problem["200x1000 float32"]
    assert second.picks["label"].tolist() == ["memmap-blocked", "memmap-rows"]
    assert second.picks["ratio_to_dense"].iloc[0] == pytest.approx(0.8)
    assert second.reading.startswith("Fastest: memmap-blocked (12.0 ms, 0.8 x RAM).")


def test_ratios_and_names_read_as_a_person_writes_them():
    assert [fraction_text(r) for r in (0.025, 0.5, 1 / 3.38, 1 / 412, 1.3, float("nan"))] == \
        ["1/40", "1/2", "1/3.4", "1/410", "1.3 x", "-"]
    assert short_names(["existing-py_tmp_a_bin_python", "existing-py_tmp_b_bin_python"]) == {
        "existing-py_tmp_a_bin_python": "a", "existing-py_tmp_b_bin_python": "b"}
    assert short_names(["only-one"]) == {"only-one": "only-one"}
    assert plot_text("<b>$x$</b>") == "&lt;b&gt;&#36;x&#36;&lt;/b&gt;"


def test_interactive_figures_keep_one_colour_per_strategy(suite_frame):
    figures = interactive_figures(suite_frame)
    titles = [title for title, _ in figures]
    assert titles == ["Time against memory, 100x1000 float32",
                      "Time as a multiple of the in-RAM product (dense), best per strategy",
                      ("HDF5 chunk shape x chunk cache, shape=100x1000, dtype=float32, "
                      "strategy=hdf5-blocked, compression=none"),
                      "Bandwidth against the roofline, box"]
    colours: dict[str, set] = {}
    for _, figure in figures:
        for trace in figure.data:
            if trace.type not in ("scatter", "bar") or trace.name == "Pareto front":
                continue
            colour = trace.marker.color
            if colour:
                colours.setdefault(trace.name, set()).add(colour)
    assert set(colours) == {"dense", "memmap", "memmap-rows", "memmap-blocked", "hdf5-blocked"}
    assert all(len(c) == 1 for c in colours.values()), colours
    front = next(t for t in figures[0][1].data if t.name == "Pareto front")
    # MiB; memmap-rows's 1000 B sits on the axis's 1 KiB floor.
    assert list(front.x) == pytest.approx([1 / 1024, 1e5 / 2**20, 4e5 / 2**20])
    assert list(front.y) == pytest.approx([500.0, 30.0, 10.0])  # ms


def test_html_puts_the_answer_first_and_embeds_plotly_once(suite_frame):
    page = render(suite_frame, "html")
    answer, figures, details = (page.index(mark) for mark in (
        'id="answer"', 'id="figures"', 'id="details"'))
    assert answer < figures < details
    assert page.count('<table class="answer">') == 1
    assert page.count('data-harness="plotly"') == 1 and page.count('class="plot"') == 4
    assert page.count('data-harness="figure" type="application/json"') == 4
    assert 'src="http' not in page and "<link" not in page  # nothing to fetch
    assert 'id="results-table"' in page and 'data-sort="0.01"' in page
    assert 'download="results.csv" ' not in page and 'href="data:text/csv;base64,' in page
    without_plots = render(suite_frame, "html", plots=False)
    assert 'data-harness="plotly"' not in without_plots and '<img' not in without_plots


def test_skipped_and_failed_rows_are_counted_behind_a_fold(tmp_path):
    write_suite(tmp_path / "results", {"s.T.time_x": (["n"], [[1, 2, 3]], [0.1, None,
                                                                           float("nan")])})
    page = render(load(tmp_path / "results"), "html")
    assert "1 measured" in page and "2 skipped or failed" in page
    assert "<details><summary>2 skipped or failed</summary>" in page
    table = page[page.index('id="results-table"'):page.index("</table>",
                                                              page.index('id="results-table"'))]
    assert table.count("<tr>") == 2  # the header and the one measured row


def test_figure_data_cannot_close_its_script_element(tmp_path):
    evil = "</script><script>alert(1)</script>"
    suite = our_suite()
    for key in [k for k in suite if k.startswith("memmap.")]:
        names, values, result = suite[key]
        suite[key] = (names, [*values[:2], ["memmap", "memmap-rows", evil]], result)
    write_suite(tmp_path / "results", suite)
    page = render(load(tmp_path / "results"), "html")
    assert "<script" not in _without_own_scripts(page).lower()
    assert "</script><script>alert" not in page
    # In the figures' JSON: HTML-escaped for Plotly, then '&' as a JSON escape.
    assert "\\u0026lt;\\u002fscript\\u0026gt;" in page


def test_history_figure_appears_with_a_second_commit(tmp_path):
    write_suite(tmp_path / "results", our_suite())
    assert not any(t.startswith("History") for t, _ in interactive_figures(
        load(tmp_path / "results")))
    slower = our_suite()
    names, values, _ = slower["dense.DenseMatvec.time_matvec"]
    slower["dense.DenseMatvec.time_matvec"] = (names, values, [0.02])
    write_suite(tmp_path / "results", slower, commit="beef000011",
                date_ms=1704110400000 + 86_400_000)
    title, figure = interactive_figures(load(tmp_path / "results"))[-1]
    assert title == "History over commits (menu: which figure)"
    assert [b["label"] for b in figure.layout.updatemenus[0].buttons] == [
        "time_matvec", "track_peak_increment", "track_gbps"]
    dense = next(t for t in figure.data if t.name.startswith("dense.DenseMatvec.time_matvec"))
    assert list(dense.y) == pytest.approx([10.0, 20.0])  # ms, oldest commit first
    assert dense.visible and not figure.data[-1].visible  # time shown, GB/s behind the menu


def test_matrix_bytes_of_a_huge_or_unmakeable_dtype_and_shape():
    from harness.reporting.answer import matrix_bytes

    def row(shape, dtype):
        return pd.Series({"param_shape": shape, "param_dtype": dtype})

    assert matrix_bytes(row("1000x100000", "float32")) == 4e8
    assert matrix_bytes(row("1000x1000", "(99999999,99999999)f8")) is None
    # np.prod on int64 would wrap around to a small or negative number here.
    assert matrix_bytes(row("4294967296x4294967296", "float64")) == 8.0 * 2.0 ** 64


def test_report_refuses_to_replace_an_existing_fifo_or_directory(tmp_path):
    import os

    fifo = tmp_path / "report.md"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="give a regular file path"):
        write_atomically(fifo, "# report")
    directory = tmp_path / "out.md"
    directory.mkdir()
    with pytest.raises(ValueError, match="not a regular file"):
        write_atomically(directory, "# report")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.md", "report.md"]
    assert fifo.is_fifo() and directory.is_dir()


def test_cli_report_to_a_fifo_says_so_in_one_line(tmp_path, capsys):
    import os

    write_suite(tmp_path / "results", our_suite())
    fifo = tmp_path / "report.md"
    os.mkfifo(fifo)
    assert main(["report", str(tmp_path / "results"), "-o", str(fifo), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert f"error: refusing to write {str(fifo)!r}" in err and "give a regular file path" in err
    assert fifo.is_fifo()


def test_interactive_times_of_a_second_and_more_read_in_seconds(tmp_path):
    from harness.reporting.interactive import heatmap_figures, seconds_text

    assert seconds_text(1.0) == "1.00 s" and seconds_text(0.0153) == "15.3 ms" and seconds_text(float("nan")) == "-"
    suite = our_suite()
    names, values, _ = suite["hdf5.Hdf5Matvec.time_matvec"]
    suite["hdf5.Hdf5Matvec.time_matvec"] = (names, values, [0.05, 0.04, 1.0, 0.2])
    write_suite(tmp_path / "results", suite)
    (_, figure), = heatmap_figures(load(tmp_path / "results"))
    cells = [cell for row in figure.data[0].text for cell in row]
    assert "1.00 s" in cells and "50.0 ms" in cells
    assert not any("e+" in cell for cell in cells)


def test_history_json_is_strict_json_with_iso_dates(tmp_path, capsys):
    results = tmp_path / "results"
    write_suite(results, {"s.T.time_x": (["n"], [[1, 2]], [0.01, None])}, commit="aaaa0000")

    def no_constants(name):
        raise ValueError(f"not strict JSON: {name}")

    assert main(["history", str(results), "-f", "json"]) == 0
    records = json.loads(capsys.readouterr().out, parse_constant=no_constants)
    assert len(records) == 2
    assert [r["value"] for r in records if r["entry_name"] == "s.T.time_x(2)"] == [None]
    assert all(r["date"] == "2024-01-01T12:00:00+00:00" for r in records)


def test_the_report_says_which_time_to_believe_for_mapped_routes():
    import pandas as pd

    from harness.reporting.report import _first_product_note

    def frame(strategies, status="ok"):
        return pd.DataFrame({"benchmark": ["memmap.MemmapMatvec.time_matvec"] * len(strategies),
                             "status": [status] * len(strategies),
                             "param_strategy": strategies})

    note = _first_product_note(frame(["memmap-blocked", "dense", "zarr-mmap"]))
    assert note.startswith("time_matvec of memmap-blocked, zarr-mmap is the first product")
    assert "python -m harness measure" in note
    assert _first_product_note(frame(["dense", "hdf5-blocked"])) == ""
    assert _first_product_note(frame(["memmap"], status="failed")) == ""
