"""The meter's asv plugin in a project that is not the harness (tests/meter_fixture): a real
``asv run`` in a virtualenv where asv installs the plugin from its environment matrix, the
figures it reports against known allocations and reads, and the harness's compare, gate,
summary and report on that project's results."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import MiB, requires_clear_refs

from harness.cli import main
from harness.reporting import report, results

pytestmark = [pytest.mark.slow, requires_clear_refs]

ALLOCATED = 64 * MiB  # tinymeter.allocate at the base commit
FILE_BYTES = 100_000_000  # benchmarks/bench.py: the mapped and read file
HELD_BYTES = 200_000_000  # benchmarks/bench.py: what SetupHolds.setup keeps


def tolerance_bytes(expected: int) -> float:
    """The accuracy asked of an exact figure: within max(1 MiB, 2 %) of the expected bytes."""
    return max(MiB, 0.02 * expected)


@pytest.fixture(scope="module")
def frame(meter_project) -> pd.DataFrame:
    return results.load(meter_project.results_dir)


@pytest.fixture(scope="module")
def base(frame, meter_project) -> dict[str, pd.Series]:
    """The base commit's rows, by benchmark name."""
    rows = frame[frame["commit"] == meter_project.commits["base"]]
    return {row["benchmark"]: row for _, row in rows.iterrows()}


def test_asv_installed_the_plugin_from_its_matrix_and_found_its_types(frame, meter_project):
    assert set(frame["env_name"]) == {"virtualenv-py3.11-asv_bench_harness"}
    assert frame["requirements"].iloc[0] == {"asv_bench_harness": ""}
    listed = json.loads((meter_project.results_dir / "benchmarks.json").read_text())
    assert listed["bench.Allocate.anonincrement_allocate"]["type"] == "anonincrement"
    assert listed["bench.Allocate.anonincrement_allocate"]["unit"] == "bytes"
    assert listed["bench.File.coldtime_read"]["unit"] == "seconds"
    kinds = frame.drop_duplicates("benchmark").set_index("benchmark")["type"]
    assert kinds["bench.File.storageread_read"] == "storageread"
    assert kinds["bench.Allocate.peakmem_allocate"] == "peakmem"


def test_known_allocation_in_the_call_is_reported_within_1_mib_or_2_percent(base):
    for name in ("peakincrement_allocate", "anonincrement_allocate"):
        value = base[f"bench.Allocate.{name}"]["value"]
        assert abs(value - ALLOCATED) <= tolerance_bytes(ALLOCATED), (name, value)
    assert base["bench.Allocate.fileincrement_allocate"]["value"] < MiB


def test_what_setup_holds_is_not_counted_but_asv_peakmem_counts_it(base):
    side_by_side = {name: base[f"bench.SetupHolds.{name}"]["value"]
                    for name in ("anonincrement_small", "peakincrement_small", "peakmem_small")}
    print(side_by_side)  # pytest -s shows the plugin's figures beside asv's
    assert side_by_side["anonincrement_small"] < MiB, side_by_side
    assert side_by_side["peakincrement_small"] < MiB, side_by_side
    assert side_by_side["peakmem_small"] > HELD_BYTES, side_by_side


def test_mapped_and_read_file_is_file_backed_not_anonymous(base):
    peak = base["bench.File.peakincrement_map"]["value"]
    file = base["bench.File.fileincrement_map"]["value"]
    anon = base["bench.File.anonincrement_map"]["value"]
    assert abs(peak - FILE_BYTES) <= tolerance_bytes(FILE_BYTES), peak  # exact: VmHWM
    assert anon < MiB, anon
    # Sampled, the last pages faulted before the map closed were missed (67 to 100 MB of
    # 100 MB); the anonymous part did not move, so the file-backed one is the exact increment.
    assert abs(file - FILE_BYTES) <= tolerance_bytes(FILE_BYTES), file


def test_bytes_read_of_a_cold_file_are_within_2_percent(base):
    for name in ("storageread_read", "readcalls_read"):
        value = base[f"bench.File.{name}"]["value"]
        assert abs(value - FILE_BYTES) <= 0.02 * FILE_BYTES, (name, value)


def test_cold_time_has_samples_and_a_benchmark_without_files_is_refused(base, meter_project):
    cold = base["bench.File.coldtime_read"]
    assert cold["status"] == "ok" and len(cold["samples"]) == 7
    assert 0 < cold["value"] < 60
    assert base["bench.coldtime_names_no_file"]["status"] == "failed"
    assert "bench.coldtime_names_no_file names no files to evict" in meter_project.output


def _hash(meter_project, name: str) -> str:
    return meter_project.commits[name][:8]


def test_compare_calls_the_doubled_allocation_a_regression_and_the_docs_commit_unchanged(
        meter_project, capsys):
    def compare(head: str) -> dict[str, str]:
        assert main(["compare", _hash(meter_project, "base"), _hash(meter_project, head),
                     "--results", str(meter_project.results_dir)]) == 0
        lines = capsys.readouterr().out.splitlines()
        return {line.split()[-1]: line for line in lines if "bench.Allocate." in line}

    doubled, docs = compare("doubled"), compare("docs")
    for name in ("anonincrement_allocate", "peakincrement_allocate"):
        assert " 2.00 " in doubled[f"bench.Allocate.{name}"]
        assert "regressed" in doubled[f"bench.Allocate.{name}"]
        assert "unchanged" in docs[f"bench.Allocate.{name}"]


def test_gate_without_running_fails_on_the_doubled_allocation_and_passes_the_docs_commit(
        meter_project, capsys):
    def gate(head: str) -> tuple[int, str]:
        status = main(["gate", meter_project.commits["base"], meter_project.commits[head],
                       "--config", str(meter_project.config), "--no-run", "-b", "Allocate"])
        return status, capsys.readouterr().out

    status, out = gate("doubled")
    assert status == 1, out
    assert "gate: FAIL: 3 regressions (0 time, 3 memory, 0 new failures) of 4 judged" in out
    assert "more memory: 2.00x > 1.1" in out
    status, out = gate("docs")
    assert status == 0, out
    assert "gate: PASS: no regression in 4 judged" in out


def test_summary_and_report_show_the_plugin_figures(meter_project, capsys):
    assert main(["summary", str(meter_project.results_dir), "--commit",
                 _hash(meter_project, "base")]) == 0
    out = capsys.readouterr().out
    assert "| bench.Allocate.anonincrement_allocate | anonincrement | 64.0 MiB" in out
    assert "| bench.SetupHolds.peakmem_small" in out
    markdown = report.render(results.load(meter_project.results_dir), "md", plots=False)
    for name in ("bench.File.storageread\\_read", "bench.Allocate.anonincrement\\_allocate"):
        assert name in markdown
