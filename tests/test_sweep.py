"""harness.measuring.runs.sweep and ``python -m harness sweep``: shapes from sizes, one roofline
for every size, labels a matrix that cannot be cached honestly, the figure, refusals."""

from __future__ import annotations

import json
import math
import re

import pytest

from harness.cli import main
from harness.measuring.meters.machine import Roofline
from harness.measuring.runs import compare as compare_module
from harness.measuring.runs.sweep import (
    NOT_IN_RAM,
    Sweep,
    cache_label,
    parse_sizes,
    plan_sweep,
    shape_for,
    sweep,
)
from harness.units import human_bytes, human_gbps

#: The roofs the tests put every size against, instead of a probe taking seconds.
MEMORY_GBPS, DISK_GBPS = 20.0, 2.0


def fake_roofline(root) -> Roofline:
    return Roofline(memory_read_gbps=MEMORY_GBPS, disk_read_gbps=DISK_GBPS,
                    memory_read_one_thread_gbps=10.0, memory_read_median_gbps=19.0,
                    memory_probe_bytes=2**20, disk_probe_bytes=2**20,
                    disk_resident_before_read=0.0, disk_read_seconds=(0.1,),
                    data_dir=str(root), probe_seconds=0.0)


@pytest.mark.parametrize(("size", "rows", "dtype"), [
    (4_000_000, 1000, "float32"), (4_000_001, 1000, "float32"), (64 * 1024, 1000, "float64"),
    (10**9, 7, "float64"), (4000, 1000, "float32")])
def test_shape_holds_the_size_in_the_fewest_whole_columns(size, rows, dtype):
    itemsize = {"float32": 4, "float64": 8}[dtype]
    columns = -(-size // (rows * itemsize))  # ceiling division, apart from the module's
    assert shape_for(size, rows, dtype) == (rows, columns)
    assert rows * columns * itemsize >= size > rows * (columns - 1) * itemsize


def test_known_shapes_of_the_default_sizes():
    assert [shape_for(s) for s in parse_sizes("4MB,40MB,400MB,4GB")] == [
        (1000, 1000), (1000, 10_000), (1000, 100_000), (1000, 1_000_000)]
    assert parse_sizes(" 64KB, 1MiB") == [64_000, 1_048_576]


def test_size_below_one_column_is_refused_naming_the_smallest_size():
    with pytest.raises(ValueError, match="less than one column.*at least 4000 bytes"):
        shape_for(3999, 1000, "float32")


def test_in_ram_product_is_skipped_where_it_does_not_fit(tmp_path):
    # 0.6 x 4 MB of available RAM holds a 64 KB matrix, not a 4 MB one.
    plans = plan_sweep([4_000_000, 64_000], names=["dense", "memmap-blocked"], root=tmp_path,
                       available_ram_bytes=4_000_000)
    assert [plan.size_bytes for plan in plans] == [64_000, 4_000_000]
    assert plans[0].names == ("dense", "memmap-blocked") and plans[0].skipped == ()
    reasons = dict(plans[1].skipped)
    assert reasons["dense"].startswith(NOT_IN_RAM)
    assert "dense" not in plans[1].names
    assert list(tmp_path.iterdir()) == []  # planning writes nothing


def test_warm_pass_of_an_uncached_file_is_labelled_second_pass():
    assert cache_label({"cache": "warm", "resident_fraction_before": 0.5}) == "2nd pass"
    assert cache_label({"cache": "warm", "resident_fraction_before": 0.95}) == "warm"
    assert cache_label({"cache": "cold", "resident_fraction_before": 0.0}) == "cold"
    record = {"strategy": "memmap-blocked", "cache": "warm", "seconds": 4.0, "gbps": 1.5,
              "resident_fraction_before": 0.4, "spec": {"shape": [1000, 3_000_000]},
              "size_bytes": 12 * 10**9}
    record["cache_label"] = cache_label(record)
    compare_module.add_derived_columns([record], fake_roofline("."), cache_bytes=0)
    assert record["roofline_bound"] == "disk"
    assert record["roofline_fraction"] == pytest.approx(1.5 / DISK_GBPS)
    cached = {**record, "strategy": "dense", "gbps": 30.0, "resident_fraction_before": 1.0}
    cached["cache_label"] = cache_label(cached)
    compare_module.add_derived_columns([cached], fake_roofline("."), cache_bytes=0)
    table = Sweep([record, cached], [], [], fake_roofline("."), 24 * 2**30).table()
    row = table.splitlines()[2]
    assert "2nd pass" in row and "warm" not in row and "75.0 disk" in row
    assert "a second pass from disk" in table
    # Faster than the probed memory roof: marked, and the table says the probe is no ceiling.
    assert "warm" in table.splitlines()[3] and "150.0! memory" in table.splitlines()[3]
    assert "! above 100 %: dense beat the probe" in table


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """A real sweep of 64 KB and 1 MB, dense and memmap-blocked, warm and cold, one pass each;
    (result, probe calls, data directory)."""
    root = tmp_path_factory.mktemp("sweep-data")
    calls = []

    def probe(directory):
        calls.append(directory)
        return fake_roofline(directory)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compare_module, "measure_roofline", probe)
        result = sweep(parse_sizes("64KB,1MB"), names=["dense", "memmap-blocked"], cache="both",
                       repeat=1, root=root)
    return result, calls, root


@pytest.mark.slow
def test_every_size_has_both_strategies_in_both_cache_states(tiny_sweep):
    result, _, _ = tiny_sweep
    assert not result.failures and not result.skipped
    found = {(r["size_bytes"], r["spec"]["shape"][1], r["strategy"], r["cache"])
             for r in result.records}
    assert found == {(size, size // 4000, strategy, state) for size in (64_000, 1_000_000)
                     for strategy in ("dense", "memmap-blocked") for state in ("warm", "cold")}
    assert all(r["gbps"] > 0 and r["max_abs_error"] < 1e-3 for r in result.records)
    # Files this small stay in the page cache between warm passes.
    assert {r["cache_label"] for r in result.records} == {"warm", "cold"}


@pytest.mark.slow
def test_roofline_is_probed_once_and_every_size_is_put_against_it(tiny_sweep):
    result, calls, root = tiny_sweep
    assert calls == [root]
    cold_reads = [r for r in result.records
                  if (r["strategy"], r["cache"]) == ("memmap-blocked", "cold")]
    assert len(cold_reads) == 2
    for r in cold_reads:
        assert r["roofline_bound"] == "disk" and r["roofline_gbps"] == DISK_GBPS
        assert r["roofline_fraction"] == pytest.approx(r["gbps"] / DISK_GBPS)
    assert result.to_dict()["roofline"]["memory_read_gbps"] == MEMORY_GBPS


@pytest.mark.slow
def test_plot_is_one_offline_page_written_atomically(tiny_sweep, tmp_path):
    from plotly.offline import get_plotlyjs

    from harness.reporting.sweep_plot import sweep_figure, write_sweep_plot

    result, _, _ = tiny_sweep
    data = result.to_dict()
    labels = {f"memory roof {human_gbps(MEMORY_GBPS)}", f"disk roof {human_gbps(DISK_GBPS)}",
              f"RAM {human_bytes(result.ram_bytes)}"}
    annotations = {a.text: a for a in sweep_figure(data).layout.annotations}
    assert set(annotations) == labels
    # A log axis places annotations at log10 of the value: the labels sit on their lines.
    assert annotations[f"disk roof {human_gbps(DISK_GBPS)}"].y == pytest.approx(
        math.log10(DISK_GBPS))
    assert annotations[f"RAM {human_bytes(result.ram_bytes)}"].x == pytest.approx(
        math.log10(result.ram_bytes))
    assert {t.name for t in sweep_figure(data).data} == {
        f"{s}, {c}" for s in ("dense", "memmap-blocked") for c in ("warm", "cold")}
    path = write_sweep_plot(tmp_path / "sweep.html", data)
    page = path.read_text().replace("\\u002f", "/")  # plotly's JSON escapes every '/'
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.html"]  # no temporary file left
    assert all(label in page for label in labels) and "memmap-blocked, cold" in page
    assert get_plotlyjs()[:200] in page  # plotly.js itself, embedded
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)


@pytest.mark.slow
def test_cli_json_holds_size_bytes_and_writes_the_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(compare_module, "measure_roofline", fake_roofline)
    plot = tmp_path / "out" / "fig.html"
    plot.parent.mkdir()
    status = main(["sweep", "--sizes", "64KB", "--strategies", "memmap-blocked", "--cache",
                   "warm", "--repeat", "1", "--data-dir", str(tmp_path / "data"), "--format",
                   "json", "--plot", str(plot)])
    assert status == 0
    data = json.loads(capsys.readouterr().out)
    assert {(r["strategy"], r["size_bytes"]) for r in data["records"]} == {
        ("dense", 64_000), ("memmap-blocked", 64_000)}
    assert data["roofline"]["disk_read_gbps"] == DISK_GBPS and data["ram_bytes"] > 0
    assert plot.is_file() and [p.name for p in plot.parent.iterdir()] == ["fig.html"]


def _no_probe(root):
    raise AssertionError("a refused sweep must not probe the roofline")


@pytest.mark.parametrize(("arguments", "message"), [
    (["--sizes", "0"], "'0' is an empty matrix"),
    (["--sizes", "4MB,4XB"], "'4XB' is not a size in bytes"),
    (["--sizes", "3kB", "--rows", "1000"], "less than one column of 1000 float32 rows"),
    (["--sizes", "64KB", "--plot", "{tmp}/missing/fig.html"], "does not exist"),
    (["--sizes", "64KB", "--plot", "{tmp}/fig.png"], "ending in .html"),
    (["--sizes", "64KB", "--strategies", "nonesuch"], "unknown strategy 'nonesuch'"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(arguments, message, tmp_path,
                                                            monkeypatch, capsys):
    monkeypatch.setattr(compare_module, "measure_roofline", _no_probe)
    data = tmp_path / "data"
    status = main(["sweep", *(a.format(tmp=tmp_path) for a in arguments),
                   "--data-dir", str(data)])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and message in captured.err
    assert list(tmp_path.iterdir()) == []


def test_sweep_whose_files_do_not_fit_on_the_disk_is_refused_up_front(tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.setattr(compare_module, "measure_roofline", _no_probe)
    monkeypatch.setattr("harness.measuring.fit.free_disk_bytes", lambda directory: 10**9)
    # 1 GB of raw file and 1 GB of HDF5, with the roofline probe's scratch file: over 1 GB.
    status = main(["sweep", "--sizes", "4MB,1GB", "--strategies", "memmap-blocked,hdf5-blocked",
                   "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "free" in err and "drop the largest --sizes" in err
    assert list(tmp_path.iterdir()) == []

