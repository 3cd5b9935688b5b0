"""End to end: the ci profile through `asv run --python=same` into a temporary results directory.

Checks what `make bench` relies on: every family produces time, peakmem and track results
without failures, skips are declared (NaN, not null), HARNESS_PROFILE reaches asv's benchmark
processes, and `asv check` accepts the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import profiles

REPO = Path(__file__).resolve().parent.parent
FAMILIES = ("dense", "memmap", "hdf5", "sparse")
METHODS = ("time_matvec", "peakmem_matvec", "track_peak_increment", "track_anon_increment",
           "track_file_increment", "track_cold_seconds", "track_gbps")

pytestmark = pytest.mark.skipif(
    not (REPO / ".git").exists(), reason="needs the git checkout (asv reads the commit)")


def _asv_setup(tmp: Path) -> tuple[Path, dict]:
    """A config like the repository's, with every output under ``tmp``."""
    config = json.loads(_strip_comments((REPO / "asv.conf.json").read_text()))
    config.update({
        "repo": str(REPO),
        "benchmark_dir": str(REPO / "benchmarks"),
        "results_dir": str(tmp / "results"),
        "html_dir": str(tmp / "html"),
        "env_dir": str(tmp / "env"),
    })
    path = tmp / "asv.conf.json"
    path.write_text(json.dumps(config))
    env = dict(os.environ)
    env.update({
        profiles.PROFILE_ENV_VAR: "ci",
        "HARNESS_DATA_DIR": str(tmp / "data"),
        "HOME": str(tmp / "home"),  # asv keeps its machine file there: leave the user's alone
    })
    (tmp / "home").mkdir()
    return path, env


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.strip().startswith("//"))


def _asv(args: list[str], config: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asv", *args, "--config", str(config)],
                          check=False, cwd=config.parent, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    """Run the ci profile once; yield (results frame, asv output)."""
    from harness import results

    tmp = tmp_path_factory.mktemp("asv_e2e")
    config, env = _asv_setup(tmp)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.strip()
    machine = _asv(["machine", "--yes", "--machine", "e2e"], config, env, timeout=60)
    assert machine.returncode == 0, machine.stdout + machine.stderr
    run = _asv(["run", "--python=same", "--set-commit-hash", commit, "--machine", "e2e",
                "--show-stderr"], config, env, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    return results.load(tmp / "results"), output, tmp


@pytest.mark.slow
def test_every_family_has_time_peakmem_and_track_results(ci_run):
    frame, output, _ = ci_run
    for family in FAMILIES:
        for method in METHODS:
            rows = frame[frame["benchmark"].str.startswith(f"{family}.")
                         & frame["benchmark"].str.endswith(f".{method}")]
            assert (rows["status"] == "ok").sum() >= 1, f"{family} {method}: no result\n{output[-3000:]}"


@pytest.mark.slow
def test_no_combination_failed(ci_run):
    frame, output, _ = ci_run
    failed = frame[frame["status"] == "failed"]
    assert failed.empty, f"failed: {failed[['benchmark', 'params']].to_string()}\n{output[-3000:]}"


@pytest.mark.slow
def test_skips_are_declared_with_a_reason(ci_run):
    frame, output, _ = ci_run
    assert (frame["status"] == "skipped").sum() >= 1
    assert "asv: skipped: Skip(" in output


@pytest.mark.slow
def test_profile_variable_reaches_the_benchmark_processes(ci_run):
    frame, _, _ = ci_run
    ok = frame[(frame["status"] == "ok") & frame["benchmark"].str.startswith("dense.")]
    shapes = {p["shape"] for p in ok["params"]}
    assert shapes == {s for s, _ in profiles.get("ci").problems["dense"]}


@pytest.mark.slow
def test_track_figures_are_plausible(ci_run):
    frame, _, _ = ci_run
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
def test_summary_command_reads_the_run(ci_run):
    _, _, tmp = ci_run
    out = subprocess.run([sys.executable, "-m", "harness", "summary", str(tmp / "results")],
                         check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for family in FAMILIES:
        assert f"| {family} " in out.stdout


@pytest.mark.slow
def test_asv_check_accepts_the_suite(tmp_path):
    config, env = _asv_setup(tmp_path)
    check = _asv(["check", "--python=same"], config, env, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
