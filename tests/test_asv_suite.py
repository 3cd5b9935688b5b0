"""End to end: the ci profile through `asv run --python=same` into a temporary results directory.

Checks what `make bench` relies on: every family produces time, peakmem and track results
without failures, skips are declared (NaN, not null), HARNESS_PROFILE reaches asv's benchmark
processes, and `asv check` accepts the suite.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from suite_asv import FAMILIES, REPO, asv, asv_setup

from harness.measuring.runs import profiles

METHODS = ("time_matvec", "peakmem_matvec", "track_peak_increment", "track_anon_increment",
           "track_file_increment", "track_cold_seconds", "track_gbps")

pytestmark = pytest.mark.skipif(
    not (REPO / ".git").exists(), reason="needs the git checkout (asv reads the commit)")


@pytest.mark.slow
def test_every_family_has_time_peakmem_and_track_results(suite_ci_run):
    frame, output, _ = suite_ci_run
    for family in FAMILIES:
        for method in METHODS:
            rows = frame[frame["benchmark"].str.startswith(f"{family}.")
                         & frame["benchmark"].str.endswith(f".{method}")]
            assert (rows["status"] == "ok").sum() >= 1, f"{family} {method}: no result\n{output[-3000:]}"


@pytest.mark.slow
def test_no_combination_failed(suite_ci_run):
    frame, output, _ = suite_ci_run
    failed = frame[frame["status"] == "failed"]
    assert failed.empty, f"failed: {failed[['benchmark', 'params']].to_string()}\n{output[-3000:]}"


@pytest.mark.slow
def test_skips_are_declared_with_a_reason(suite_ci_run):
    frame, output, _ = suite_ci_run
    assert (frame["status"] == "skipped").sum() >= 1
    assert "asv: skipped: Skip(" in output


@pytest.mark.slow
def test_profile_variable_reaches_the_benchmark_processes(suite_ci_run):
    frame, _, _ = suite_ci_run
    ok = frame[(frame["status"] == "ok") & frame["benchmark"].str.startswith("dense.")]
    shapes = {p["shape"] for p in ok["params"]}
    assert shapes == {s for s, _ in profiles.get("ci").problems["dense"]}


@pytest.mark.slow
def test_track_figures_are_plausible(suite_ci_run):
    frame, _, _ = suite_ci_run
    ok = frame[frame["status"] == "ok"]

    def values(method, family="memmap"):
        rows = ok[ok["benchmark"].str.startswith(family + ".") & ok["benchmark"].str.endswith(method)]
        assert len(rows) > 0, f"no {family} {method} results"
        return rows["value"]

    assert (values("track_gbps") > 0).all()
    assert (values("track_cold_seconds") > 0).all()
    # Memory maps allocate no heap: their declared budget is 0, and the rule allows 8 MiB.
    assert (values("track_anon_increment").between(0, 8 * 2**20)).all()
    roofline = ok[ok["benchmark"].str.startswith("machine.Roofline.")]
    assert len(roofline) == 2 and (roofline["value"] > 0).all()


@pytest.mark.slow
def test_summary_command_reads_the_run(suite_ci_run):
    _, _, tmp = suite_ci_run
    out = subprocess.run([sys.executable, "-m", "harness", "summary", str(tmp / "results")],
                         check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for family in FAMILIES:
        assert f"| {family} " in out.stdout


@pytest.mark.slow
def test_asv_check_accepts_the_suite(tmp_path):
    config, env = asv_setup(tmp_path)
    check = asv(["check", "--python=same"], config, env, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
