"""harness.reporting.summary: the fastest strategy per family and problem, its memory, its
ratio to dense; and the GB/s formats of harness.units it prints."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from harness.reporting import summary
from harness.units import gbps_number, human_bytes, human_gbps


def _row(benchmark, value, status="ok", file="a.json", date=1, **params):
    return {"benchmark": benchmark, "value": value, "status": status, "params": params,
            "file": file, "date": pd.Timestamp(date, unit="s", tz="UTC"), "machine": "m",
            "commit": "abcdef12"}


def _frame():
    notebook = {"shape": "1000x100000", "dtype": "float32"}
    rows = [
        _row("dense.DenseMatvec.time_matvec", 0.015, strategy="dense", **notebook),
        _row("dense.DenseMatvec.track_peak_increment", 4096.0, strategy="dense", **notebook),
        _row("memmap.MemmapMatvec.time_matvec", 0.030, strategy="memmap", **notebook),
        _row("memmap.MemmapMatvec.time_matvec", 0.018, strategy="memmap-blocked", **notebook),
        _row("memmap.MemmapMatvec.time_matvec", None, status="skipped", strategy="memmap-rows",
             **notebook),
        _row("memmap.MemmapMatvec.track_peak_increment", 400e6, strategy="memmap", **notebook),
        _row("memmap.MemmapMatvec.track_peak_increment", 64e6, strategy="memmap-blocked",
             **notebook),
        _row("memmap.MemmapMatvec.track_anon_increment", 1e6, strategy="memmap-blocked",
             **notebook),
        _row("hdf5.Hdf5Matvec.time_matvec", 0.11, strategy="hdf5-blocked", chunks="rows",
             chunk_cache="8388608", compression="none", **notebook),
        _row("hdf5.Hdf5Matvec.time_matvec", None, status="failed", strategy="hdf5-rows",
             chunks="rows", chunk_cache="8388608", compression="none", **notebook),
        _row("sparse.SparseMatvec.time_matvec", 0.002, strategy="csr", density="0.01", **notebook),
        _row("sparse.SparseMatvec.time_matvec", 0.001, strategy="csc", density="0.001", **notebook),
        _row("machine.Roofline.track_memory_read_gbps", 28.0),
        _row("machine.Roofline.track_disk_read_gbps", 1.9),
    ]
    return pd.DataFrame(rows)


def test_fastest_strategy_wins_with_its_own_peak_increment():
    table = summary.summarize(_frame())
    memmap = table[table["family"] == "memmap"].iloc[0]
    assert memmap["strategy"] == "memmap-blocked"
    assert memmap["seconds"] == pytest.approx(0.018)
    assert memmap["peak_increment_bytes"] == pytest.approx(64e6)
    assert memmap["anon_increment_bytes"] == pytest.approx(1e6)


def test_ratio_is_against_dense_on_the_same_matrix():
    table = summary.summarize(_frame())
    memmap = table[table["family"] == "memmap"].iloc[0]
    assert memmap["ratio_to_dense"] == pytest.approx(0.018 / 0.015)
    assert table[table["family"] == "dense"].iloc[0]["ratio_to_dense"] == pytest.approx(1.0)


def test_each_sparse_density_is_its_own_problem():
    table = summary.summarize(_frame())
    sparse = table[table["family"] == "sparse"]
    assert sorted(sparse["density"]) == ["0.001", "0.01"]


def test_status_counts_include_skips_and_failures():
    table = summary.summarize(_frame()).set_index("family")
    assert (table.loc["memmap", "measured"], table.loc["memmap", "skipped"]) == (2, 1)
    assert table.loc["hdf5", "failed"] == 1


def test_hdf5_strategy_label_names_its_layout():
    table = summary.summarize(_frame())
    label = table[table["family"] == "hdf5"].iloc[0]["strategy"]
    assert label.startswith("hdf5-blocked") and "chunks=rows" in label and "8 MiB" in label


def test_roofline_is_read_from_the_same_run():
    assert summary.roofline(_frame()) == {"memory_read_gbps": 28.0, "disk_read_gbps": 1.9}


def test_latest_run_picks_the_newest_file():
    old = _frame()
    new = _frame().assign(file="b.json", date=pd.Timestamp(2, unit="s", tz="UTC"))
    assert set(summary.latest_run(pd.concat([old, new]))["file"]) == {"b.json"}


def test_unknown_commit_is_a_clear_error():
    with pytest.raises(ValueError, match="commits with results: abcdef12"):
        summary.latest_run(_frame(), commit="0000")


def test_text_table_has_one_line_per_problem_and_the_limits():
    text = summary.render_text(summary.summarize(_frame()), {"memory_read_gbps": 28.0,
                                                             "disk_read_gbps": 1.9}, "r.json")
    assert text.count("| sparse ") == 2
    assert "memory read 28.0 GB/s, cold disk read 1.9 GB/s" in text
    assert "full results: r.json" in text


@pytest.mark.parametrize("n, text", [(1536, "1.5 KiB"), (400e6, "381.5 MiB"), (None, "-"),
                                     (12, "12 B")])
def test_human_bytes(n, text):
    assert human_bytes(n) == text


def test_summary_command_on_an_empty_directory_says_what_to_run(tmp_path, capsys):
    from harness.cli import main

    assert main(["summary", str(tmp_path)]) == 2
    assert "run `make bench`" in capsys.readouterr().err


def test_summary_command_names_a_truncated_file_and_strict_stops(tmp_path, capsys):
    from harness.cli import main

    (tmp_path / "box").mkdir()
    (tmp_path / "box" / "deadbeef-env.json").write_text('{"version": 2, "res')
    assert main(["summary", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "warning: " in err and "deadbeef-env.json" in err and "Warning:" not in err
    assert main(["summary", str(tmp_path), "--strict"]) == 2
    assert "error: " in capsys.readouterr().err


def test_ambiguous_commit_prefix_is_refused():
    first = _frame()
    second = _frame().assign(commit="abcdef99" + "0" * 32, file="b.json")
    with pytest.raises(ValueError, match="ambiguous"):
        summary.latest_run(pd.concat([first, second]), commit="abcdef")


def test_summarize_latest_gives_the_table_its_limits_and_its_file():
    old = _frame()
    new = _frame().assign(file="b.json", date=pd.Timestamp(2, unit="s", tz="UTC"))
    latest = summary.summarize_latest(pd.concat([old, new]))
    assert latest.source == "b.json"
    assert latest.limits == {"memory_read_gbps": 28.0, "disk_read_gbps": 1.9}
    assert latest.to_text() == summary.render_text(latest.table, latest.limits, "b.json")
    document = json.loads(latest.to_json())
    assert document["file"] == "b.json" and document["roofline"] == latest.limits
    memmap = next(row for row in document["rows"] if row["family"] == "memmap")
    assert (memmap["strategy"], memmap["shape"], memmap["dtype"]) == (
        "memmap-blocked", "1000x100000", "float32")
    with pytest.raises(ValueError, match="no results for machine='elsewhere'"):
        summary.summarize_latest(old, machine="elsewhere")


def test_text_table_shows_a_missing_limit_as_a_dash():
    text = summary.render_text(summary.summarize(_frame()), {"memory_read_gbps": 28.04})
    assert "machine: memory read 28.0 GB/s, cold disk read -\n" in text
    assert "| 1000x100000 float32 d=0.001 |" in text


@pytest.mark.parametrize("gbps, decimals, number, text", [
    (12.345, None, "12.3", "12.3 GB/s"), (28.0, 1, "28.0", "28.0 GB/s"),
    (0.01234, None, "0.0123", "0.0123 GB/s"), (None, 1, "-", "-"), (math.nan, None, "-", "-")])
def test_gbps_with_and_without_the_unit(gbps, decimals, number, text):
    assert gbps_number(gbps, decimals) == number
    assert human_gbps(gbps, decimals) == text
