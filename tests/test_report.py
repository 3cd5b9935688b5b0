"""harness.reporting.report, harness.reporting.plots, harness.reporting.history and the
report/compare/history commands."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_fixture import our_suite, write_suite

from harness.cli import main
from harness.reporting import history
from harness.reporting.compare import regressions
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
    page = render(suite_frame, "html")
    assert page.count('<img alt="') == 3 and page.count('src="data:image/png;base64,') == 3


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
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    text = render(frame, "md")
    assert "<script" not in text.lower() and "a\\|b" in text
    assert markdown_cell("x|<b>*y*") == "x\\|&lt;b&gt;\\*y\\*"


@pytest.mark.slow
def test_report_of_real_results_escapes_and_has_no_suite_figures(asv_project):
    frame = load(asv_project.results_dir)
    page = render(frame, "html")
    assert "<script" not in page.lower() and "<img" not in page
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
