"""harness.measuring.runs.measure and ``python -m harness measure``: figures, cache states, records."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from harness.cli import main
from harness.measuring import strategies
from harness.measuring.matrix.generate import nbytes_in_memory
from harness.measuring.matrix.spec import DatasetSpec, Problem
from harness.measuring.meters import cpu_cache
from harness.measuring.runs import compare as compare_module
from harness.measuring.runs.child import measure_in_subprocess
from harness.measuring.runs.compare import add_derived_columns, format_table
from harness.measuring.runs.compare import compare as compare_strategies
from harness.measuring.runs.measure import (
    Measurement,
    MeasurementError,
    combine,
    measure_in_process,
)
from harness.measuring.runs.plan import plan_for


def _pairs(plan) -> list:
    """(strategy, spec) of every run of a plan."""
    return [(run.strategy, run.spec) for run in plan.runs]
from harness.units import parse_bytes

REQUIRED_KEYS = {"strategy", "family", "storage", "cache", "seconds", "seconds_min",
                 "ratio_to_dense", "gbps", "roofline_fraction", "increment_bytes",
                 "anon_increment_bytes", "file_increment_bytes", "budget_bytes", "max_abs_error"}


def test_warm_measurement_has_every_pass_and_a_small_error(tmp_path):
    spec = DatasetSpec((200, 3000), "float32", storage="hdf5", chunks=(7, 3000))
    m = measure_in_process("hdf5-blocked", spec, repeat=4, root=tmp_path, memory_budget=2**20)
    assert len(m.seconds) == 4 and m.seconds_min <= m.seconds_median
    assert m.cache == "warm" and m.resident_fraction_before > 0.99
    assert m.matrix_bytes == nbytes_in_memory(spec) == 200 * 3000 * 4
    assert m.budget_bytes == strategies.get("hdf5-blocked").extra_memory_bytes(spec, memory_budget=2**20)
    assert m.max_abs_error < 1e-5 * 3000
    assert m.gbps == pytest.approx(m.matrix_bytes / m.seconds_median / 1e9)


def test_cold_measurement_evicts_the_file_before_every_pass(tmp_path):
    spec = DatasetSpec((500, 5000), "float32", storage="raw")  # 10 MB
    m = measure_in_process("memmap-blocked", spec, cache="cold", repeat=2, root=tmp_path)
    assert m.resident_fraction_before < 0.05
    assert m.anon_increment_bytes <= m.budget_bytes + 8 * 2**20


def test_spec_in_another_storage_moves_to_the_strategy_storage(tmp_path):
    m = measure_in_process("hdf5-mmap", DatasetSpec((30, 40)), repeat=1, root=tmp_path)
    assert m.storage == "hdf5" and m.max_abs_error < 1e-4


def test_record_round_trips_through_json(tmp_path):
    m = measure_in_process("dense", DatasetSpec((10, 20)), repeat=2, root=tmp_path)
    record = json.loads(json.dumps(m.to_record()))
    assert record["seconds"] == m.seconds_median and record["seconds_all"] == list(m.seconds)
    assert Measurement.from_record(record) == m


def test_bad_cache_and_repeat_are_refused(tmp_path):
    with pytest.raises(ValueError, match="cache"):
        measure_in_process("dense", DatasetSpec((3, 3)), cache="tepid", root=tmp_path)
    with pytest.raises(ValueError, match="repeat"):
        measure_in_process("dense", DatasetSpec((3, 3)), repeat=0, root=tmp_path)


@pytest.mark.slow
def test_subprocess_measurement_matches_the_in_process_fields(tmp_path):
    spec = DatasetSpec((100, 1000), density=0.1, storage="npz")
    m = measure_in_subprocess("csr", spec, repeat=2, root=tmp_path)
    assert (m.strategy, m.family, m.storage, len(m.seconds)) == ("csr", "sparse", "npz", 2)
    assert m.memory_method and m.max_abs_error < 1e-4


@pytest.mark.slow
def test_failing_subprocess_raises_with_its_error(tmp_path):
    with pytest.raises(MeasurementError, match="storage"):
        measure_in_subprocess("csr", DatasetSpec((10, 10)), root=tmp_path)  # dense: no csr


@pytest.mark.slow
def test_cli_json_has_every_column_and_dense_is_the_unit(tmp_path, capsys):
    status = main(["measure", "--shape", "40x300", "--density", "0.05", "--strategies",
                   "memmap-blocked,csr", "--cache", "both", "--repeat", "1", "--data-dir",
                   str(tmp_path), "--no-roofline", "--format", "json"])
    assert status == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["strategy"], r["cache"]) for r in records] == [
        ("dense", "warm"), ("memmap-blocked", "warm"), ("csr", "warm"),
        ("dense", "cold"), ("memmap-blocked", "cold"), ("csr", "cold")]
    assert all(REQUIRED_KEYS <= set(r) for r in records)
    assert [r["ratio_to_dense"] for r in records if r["strategy"] == "dense"] == [1.0, 1.0]


def test_cli_refuses_a_strategy_that_cannot_read_the_matrix(tmp_path, capsys):
    status = main(["measure", "--shape", "4x4", "--strategies", "csr", "--data-dir", str(tmp_path),
                   "--no-roofline"])
    assert status == 2
    assert "csr" in capsys.readouterr().err


def test_roofline_fraction_uses_disk_when_cold_and_memory_when_warm():
    records = [
        {"strategy": "dense", "cache": "cold", "seconds": 0.1, "gbps": 4.0},
        {"strategy": "memmap", "cache": "cold", "seconds": 0.4, "gbps": 1.0},
        {"strategy": "memmap", "cache": "warm", "seconds": 0.2, "gbps": 2.0},
    ]
    add_derived_columns(records, SimpleNamespace(memory_read_gbps=20.0, disk_read_gbps=2.0))
    assert [r["roofline_fraction"] for r in records] == [0.2, 0.5, 0.1]
    assert records[1]["ratio_to_dense"] == pytest.approx(4.0)
    assert records[2]["ratio_to_dense"] is None  # no warm dense in this run


def test_each_row_is_put_against_the_least_of_its_limits():
    roof = SimpleNamespace(memory_read_gbps=20.0, disk_read_gbps=2.0)
    blosc, gzip = {"compression": "blosc-lz4"}, {"compression": "gzip-1-shuffle"}
    records = [
        # Cold, ratio 1.5: disk x ratio (3 GB/s) under decode x 2 cores (8) and memory (20).
        {"strategy": "zarr-direct", "cache": "cold", "seconds": 0.2, "gbps": 1.5,
         "compression_ratio": 1.5, "spec": blosc},
        # Warm: no disk term; decode x 2 cores (8 GB/s) under memory.
        {"strategy": "zarr-direct", "cache": "warm", "seconds": 0.1, "gbps": 4.0,
         "compression_ratio": 1.5, "spec": blosc},
        # gzip decodes at 0.5 GB/s a core: 1 GB/s on 2 cores, under the disk's 2 x 1.7.
        {"strategy": "hdf5-direct", "cache": "cold", "seconds": 0.5, "gbps": 0.8,
         "compression_ratio": 1.7, "spec": gzip},
        # Uncompressed: its roof, as roof % says.
        {"strategy": "memmap", "cache": "cold", "seconds": 0.4, "gbps": 1.0, "spec": {}},
        # A codec without a measured rate: memory and disk only.
        {"strategy": "hdf5-blocked", "cache": "cold", "seconds": 0.4, "gbps": 1.0,
         "compression_ratio": 4.0, "spec": {"compression": "lzf"}},
    ]
    add_derived_columns(records, roof, {"blosc-lz4": 4.0, "gzip-1-shuffle": 0.5, "lzf": None},
                        cores=2)
    assert [r["limit_bound"] for r in records] == ["disk", "decode", "decode", "disk", "disk"]
    assert [r["limit_gbps"] for r in records] == pytest.approx([3.0, 8.0, 1.0, 2.0, 8.0])
    assert [r["limit_fraction"] for r in records] == pytest.approx([0.5, 0.5, 0.8, 0.5, 0.125])
    # The table's cell: the percentage, then which limit (m, d, or c for the codec's decoders).
    assert [compare_module._limit_cell(r) for r in records[:3]] == ["50.0d", "50.0c", "80.0c"]


def test_a_pass_that_fits_the_cpu_cache_is_put_against_no_roof():
    roof = SimpleNamespace(memory_read_gbps=20.0, disk_read_gbps=2.0)
    records = [  # 30 GB/s for 1 ms: 30 MB read, under a 32 MiB cache
        {"strategy": "dense", "cache": "cold", "seconds": 0.001, "gbps": 30.0},
        {"strategy": "memmap", "cache": "warm", "seconds": 0.001, "gbps": 30.0},
        # Cold from the disk: the disk roof applies, however small the matrix.
        {"strategy": "memmap", "cache": "cold", "seconds": 0.03, "gbps": 1.0},
        # 40 MB: more than the cache holds.
        {"strategy": "memmap-blocked", "cache": "warm", "seconds": 0.004, "gbps": 10.0},
    ]
    add_derived_columns(records, roof, cache_bytes=32 * 2**20)
    assert [r["roofline_bound"] for r in records] == ["cache", "cache", "disk", "memory"]
    assert [r["roofline_fraction"] for r in records] == [None, None, 0.5, 0.5]
    assert [compare_module._roof_cell(r) for r in records] == ["in cache", "in cache", "50.0d",
                                                                "50.0m"]
    rows = [dict(r, storage="raw", seconds_min=r["seconds"], ratio_to_dense=1.0,
                 increment_bytes=0, anon_increment_bytes=0, file_increment_bytes=0,
                 budget_bytes=0, max_abs_error=None) for r in records]
    legend = format_table(rows, roof, [], []).splitlines()
    assert "in cache: dense, memmap read no more than the CPU's last-level cache holds" in \
        "\n".join(legend)
    assert not any("above 100 %" in line for line in legend)


def test_a_warm_row_of_a_file_the_page_cache_cannot_hold_is_called_a_second_pass():
    roof = SimpleNamespace(memory_read_gbps=20.0, disk_read_gbps=2.0)
    base = {"storage": "raw", "seconds": 19.0, "seconds_min": 19.0, "gbps": 1.7,
            "ratio_to_dense": None, "increment_bytes": 0, "anon_increment_bytes": 0,
            "file_increment_bytes": 0, "budget_bytes": 0, "max_abs_error": None}
    rows = [dict(base, strategy="memmap-blocked", cache="warm", resident_fraction_before=0.62),
            dict(base, strategy="memmap-blocked", cache="cold", resident_fraction_before=0.0),
            dict(base, strategy="memmap", cache="warm", resident_fraction_before=1.0)]
    add_derived_columns(rows, roof, cache_bytes=32 * 2**20)
    table = format_table(rows, roof, [], []).splitlines()
    assert [line.split()[2] for line in table[2:5]] == ["2nd", "cold", "warm"]
    # A second pass from disk is put against the disk, like a cold one: 1.7 of 2.0 GB/s.
    assert [r["roofline_bound"] for r in rows] == ["disk", "disk", "memory"]
    assert rows[0]["roofline_fraction"] == pytest.approx(0.85)
    assert ("2nd pass: warm was asked, but no more than 62 % of the file was in the page cache "
            "before a pass") in "\n".join(table)
    rows[0]["resident_fraction_before"] = 0.95
    assert not any("2nd pass" in line for line in format_table(rows, roof, [], []).splitlines())


def test_the_last_level_cache_is_the_highest_level_sysfs_lists(tmp_path):
    for index, (level, size) in enumerate([(1, "32K"), (2, "512K"), (3, "32768K"), (1, "32K")]):
        (tmp_path / f"index{index}").mkdir()
        (tmp_path / f"index{index}" / "level").write_text(f"{level}\n")
        (tmp_path / f"index{index}" / "size").write_text(f"{size}\n")
    assert cpu_cache.last_level_cache_bytes(tmp_path) == 32 * 2**20
    assert cpu_cache.last_level_cache_bytes(tmp_path / "none") is None
    assert [cpu_cache.parse_size(t) for t in ("8M", "512K", "1024", "big", "")] == \
        [8 * 2**20, 512 * 1024, 1024, None, None]


def test_cli_sizes_parse_in_binary_and_plain_bytes():
    assert parse_bytes("64MiB") == 64 * 2**20 and parse_bytes("8388608") == 8388608


def test_plan_puts_dense_first_and_says_why_the_others_cannot_run():
    plan = plan_for(Problem((4, 4)))
    assert [name for name, _ in _pairs(plan)][:2] == ["dense", "memmap"]
    assert dict(_pairs(plan))["dense"].storage == "ram"
    assert dict(_pairs(plan))["hdf5-blocked"] == DatasetSpec((4, 4), storage="hdf5")
    skipped = dict(plan.skipped)
    assert skipped["csr"] == "needs storage ['npz', 'csr-hdf5'] with a density"
    assert skipped["hdf5-chunked"] == strategies.get("hdf5-chunked").refusal
    assert set(skipped) | set(dict(_pairs(plan))) == set(strategies.names())


def test_plan_of_named_strategies_adds_the_reference_and_refuses_what_cannot_run():
    spec = DatasetSpec((4, 4), density=0.5, storage="hdf5", chunks=(2, 2))
    plan = plan_for(spec, ["csr-hdf5-blocked", " hdf5-chunked"])
    assert [(name, s.storage) for name, s in _pairs(plan)] == [
        ("dense", "ram"), ("csr-hdf5-blocked", "csr-hdf5"), ("hdf5-chunked", "hdf5")]
    assert dict(_pairs(plan))["hdf5-chunked"].chunks == (2, 2) and plan.skipped == ()
    with pytest.raises(ValueError, match="'csr' cannot run on this matrix: needs storage"):
        plan_for(Problem((4, 4)), ["csr"])
    with pytest.raises(KeyError, match="known strategies"):
        plan_for(Problem((4, 4)), ["gpu"])


def test_comparison_refuses_bad_arguments_before_writing_anything(tmp_path):
    for kwargs in ({"cache": "tepid"}, {"repeat": 0}, {"rounds": 0}, {"timeout_seconds": 0},
                   {"block_rows": 0}):
        with pytest.raises(ValueError):
            compare_strategies(Problem((4, 4)), root=tmp_path / "data", roofline=False, **kwargs)
    assert not (tmp_path / "data").exists()


def test_table_shows_times_and_sizes_in_their_units():
    record = {"strategy": "memmap", "storage": "raw", "cache": "warm", "seconds": 0.0153,
              "seconds_min": 9e-5, "ratio_to_dense": 1.07, "gbps": 12.345,
              "roofline_fraction": 0.5, "increment_bytes": 1536, "anon_increment_bytes": 2**20,
              "file_increment_bytes": 0, "budget_bytes": 64 * 2**20, "max_abs_error": None}
    table = format_table([record], SimpleNamespace(memory_read_gbps=20.0, disk_read_gbps=2.0),
                         [("csr", "needs a density")], [("dok", "cold", "boom")])
    header, rule, row, roof, legend, limit_legend, skipped, failed = table.splitlines()
    # No stored bytes in the record: no compression ratio, no stored rate; "m": the fraction
    # is of the memory bandwidth.
    assert row.split() == ["memmap", "raw", "warm", "15.3", "ms", "90", "us", "1.07", "12.3",
                           "GB/s", "-", "-", "50.0m", "-", "1.5", "KiB", "1.0", "MiB", "0", "B",
                           "64.0", "MiB", "-"]
    assert legend.startswith("roof %: m = decoded bytes against the memory bandwidth")
    assert limit_legend.startswith("limit %: the read rate against the row's limit")
    assert len(header) == len(rule) == len(row.rstrip())
    assert roof.startswith("roofline: memory 20 GB/s, disk (cold) 2 GB/s")
    assert (skipped, failed) == ("skipped csr: needs a density", "FAILED dok (cold): boom")


def test_combine_pools_passes_and_keeps_the_worst_memory(tmp_path):
    spec = DatasetSpec((10, 20))
    a = measure_in_process("dense", spec, repeat=2, root=tmp_path)
    b = measure_in_process("dense", spec, repeat=3, root=tmp_path)
    both = combine([a, b])
    assert both.seconds == a.seconds + b.seconds
    assert both.seconds_min == min(a.seconds_min, b.seconds_min)
    assert both.anon_increment_bytes == max(a.anon_increment_bytes, b.anon_increment_bytes)
    other = measure_in_process("memmap", spec, repeat=1, root=tmp_path)
    with pytest.raises(ValueError, match="different configurations"):
        combine([a, other])


@pytest.mark.parametrize("flags, fragment", [
    (["--block-rows", "0"], "block_rows"),
    (["--timeout", "0"], "--timeout"),
    (["--repeat", "0"], "--repeat"),
])
def test_cli_refuses_bad_numbers_before_generating_anything(tmp_path, capsys, flags, fragment):
    data_dir = tmp_path / "data"
    status = main(["measure", "--shape", "4x4", "--data-dir", str(data_dir), "--no-roofline",
                   *flags])
    assert status == 2
    assert fragment in capsys.readouterr().err
    assert not data_dir.exists()


def test_cli_unwritable_data_dir_is_an_error_not_a_traceback(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    status = main(["measure", "--shape", "4x4", "--strategies", "dense", "--data-dir",
                   str(blocker / "sub"), "--no-roofline"])
    assert status == 2
    assert "cannot create the data directory" in capsys.readouterr().err


def test_cli_strategy_names_with_spaces_are_still_checked(tmp_path, capsys):
    status = main(["measure", "--shape", "4x4", "--strategies", "dense, csr", "--data-dir",
                   str(tmp_path), "--no-roofline"])
    assert status == 2
    assert "'csr' cannot run" in capsys.readouterr().err


def test_dense_is_left_out_with_the_reason_when_it_cannot_fit_in_ram():
    big = Problem((80_000, 100_000), "float32")  # 32 GB in RAM
    plan = plan_for(big, ["memmap"], available_ram_bytes=8 << 30)
    assert [name for name, _ in _pairs(plan)] == ["memmap"]
    reasons = dict(plan.skipped)
    assert "RAM" in reasons["dense"] and "GiB" in reasons["dense"]
    assert "x dense" in reasons["dense"]


def test_a_named_strategy_that_cannot_fit_in_ram_is_refused_with_the_sizes():
    with pytest.raises(ValueError, match=r"'dense'.*RAM.*GiB"):
        plan_for(Problem((80_000, 100_000), "float32"), ["dense"], available_ram_bytes=8 << 30)


def test_measure_refuses_a_plan_that_cannot_fit_on_disk_before_writing(tmp_path, monkeypatch):
    from harness.measuring import fit

    real_usage = fit.shutil.disk_usage
    monkeypatch.setattr(fit.shutil, "disk_usage",
                        lambda path: real_usage(path)._replace(free=1_000_000))
    with pytest.raises(ValueError, match=r"data file.*free"):
        compare_strategies(Problem((2000, 1000), "float64"), ["memmap"], root=tmp_path,
                           roofline=False)
    assert list(tmp_path.iterdir()) == []


def test_mm_at_x_past_ram_gets_a_note_saying_why_it_crawls(monkeypatch):
    from types import SimpleNamespace

    from harness.measuring.runs import compare as compare_module
    from harness.measuring.strategies import memmap

    source = SimpleNamespace(shape=(8000, 1_000_000), dtype="float32")
    runs = [SimpleNamespace(strategy="memmap-blocked"), SimpleNamespace(strategy="memmap")]
    seen = []
    monkeypatch.setattr(memmap, "cannot_be_cached", lambda nbytes: seen.append(nbytes) or True)
    notes = compare_module.past_ram_notes(source, runs)
    assert seen == [8000 * 1_000_000 * 4]
    assert len(notes) == 1 and notes[0].startswith("memmap (mm @ x) on a matrix larger than RAM")
    assert compare_module.past_ram_notes(source, runs[:1]) == []  # no mm @ x in the run
    monkeypatch.setattr(memmap, "cannot_be_cached", lambda nbytes: False)
    assert compare_module.past_ram_notes(source, runs) == []
