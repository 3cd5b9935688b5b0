"""Environments compared at one commit, on real asv results: the fixture's last commit run in
two environments, the second with a 4x slower sleep (tests/asv_fixture)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from harness.reporting.environments import (
    HEADERS,
    against_baseline,
    compare_environments,
    environments,
    listing_table,
    newest_shared_commit,
    pick_environment,
    requirements_text,
)
from harness.reporting.results import load


@pytest.fixture(scope="module")
def two_envs(asv_project_two_envs):
    project, second = asv_project_two_envs
    return project, second, load(project.results_dir)


def test_environments_lists_both_with_their_counts(two_envs):
    _, second, frame = two_envs
    listing = environments(frame)
    assert len(listing) == 2
    row = listing.set_index("env_name").loc[second]
    assert row["commits"] == 1
    assert row["results"] == len(frame[frame["env_name"] == second])
    first = listing[listing["env_name"] != second].iloc[0]
    assert first["commits"] == 3


def test_second_environment_is_judged_slower_on_the_sleep_only(two_envs):
    project, second, frame = two_envs
    first = next(name for name in frame["env_name"].unique() if name != second)
    table = compare_environments(frame, baseline=first)

    assert set(table["env"]) == {second} and set(table["baseline_env"]) == {first}
    assert set(table["commit_after"]) == {project.commits[-1]}
    verdicts = dict(zip(table["entry_name"], table["verdict"]))
    assert verdicts["bench.Sleep.time_sleep(1, 'plain')"] == "regressed"
    ratio = table.set_index("entry_name").loc["bench.Sleep.time_sleep(1, 'plain')", "ratio"]
    assert 3.0 < ratio < 4.5  # 32 ms against 8 ms of sleep
    assert verdicts["bench.Steady.time_steady"] == "unchanged"
    assert verdicts["bench.Alloc.peakmem_buffer"] == "unchanged"


def test_the_default_commit_is_the_newest_with_two_environments(two_envs):
    project, _, frame = two_envs
    assert newest_shared_commit(frame) == project.commits[-1]
    with pytest.raises(ValueError, match="two environments.*asv.matrix.json"):
        newest_shared_commit(frame[frame["env_name"] == frame["env_name"].iloc[0]])


def test_a_commit_with_one_environment_is_refused_by_name(two_envs):
    project, _, frame = two_envs
    with pytest.raises(ValueError, match=f"{project.commits[0][:8]} has results from one "):
        compare_environments(frame, commit=project.commits[0][:8])


def test_environment_names_are_picked_by_unique_part():
    names = ["virtualenv-py3.11-h5py3.11.0", "virtualenv-py3.11-h5py3.12.1"]
    assert pick_environment(names, "h5py3.12") == names[1]
    with pytest.raises(ValueError, match="several"):
        pick_environment(names, "virtualenv")
    with pytest.raises(ValueError, match="no environment matches 'conda'"):
        pick_environment(names, "conda")


def test_requirements_text():
    assert requirements_text({"numpy": "", "h5py": "3.12.1"}) == "h5py==3.12.1 numpy"
    assert requirements_text({}) == "-"


def test_envs_command_prints_the_listing_and_the_verdicts(two_envs):
    project, second, frame = two_envs
    first = next(name for name in frame["env_name"].unique() if name != second)
    proc = subprocess.run([sys.executable, "-m", "harness", "envs", str(project.results_dir),
                           "--baseline", first, "--only-changed"],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"{second} against {first} at commit {project.commits[-1][:8]}:" in proc.stdout
    regressed = [line for line in proc.stdout.splitlines() if line.startswith("+ ")]
    assert any(line.endswith("bench.Sleep.time_sleep(1, 'plain')") for line in regressed)
    assert "bench.Steady.time_steady" not in proc.stdout  # unchanged: left out


def test_envs_command_without_a_second_environment_exits_2(asv_project):
    proc = subprocess.run([sys.executable, "-m", "harness", "envs", str(asv_project.results_dir)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 2
    assert "error: no commit has results from two environments" in proc.stderr


def test_matrix_example_expands_to_two_h5py_environments():
    """asv.matrix.json (the README's example) gives two environments differing by h5py."""
    from pathlib import Path

    from asv import environment
    from asv.config import Config

    config = Config.load(str(Path(__file__).resolve().parent.parent / "asv.matrix.json"))
    combos = list(environment.iter_matrix(config.environment_type, config.pythons, config))
    requirements = [{key[1]: value for key, value in combo.items() if key[0] == "req"}
                    for combo in combos]
    assert len(combos) == 2
    assert len({r["h5py"] for r in requirements}) == 2
    assert pd.Series([r.get("numpy") for r in requirements]).nunique() == 1
    # asv's default install command (--force-reinstall) would replace the pinned versions.
    assert config.install_command and not any("--force-reinstall" in command
                                               for command in config.install_command)


def test_the_machine_is_chosen_before_the_commit(two_envs):
    project, _, frame = two_envs
    # Another machine with two environments at a newer commit must not hide this one's.
    other = frame[frame["commit"] == project.commits[-1]].assign(
        machine="other-box", commit="f" * 40, date=frame["date"].max() + pd.Timedelta(days=1))
    both = pd.concat([frame, other], ignore_index=True)
    mine = compare_environments(both, machine=frame["machine"].iloc[0])
    assert set(mine["commit_after"]) == {project.commits[-1]}
    assert set(compare_environments(both, machine="other-box")["commit_after"]) == {"f" * 40}
    same_commit = pd.concat([frame, other.assign(commit=project.commits[-1])],
                            ignore_index=True)
    with pytest.raises(ValueError, match="several machines"):
        compare_environments(same_commit)


def test_listing_and_blocks_as_the_envs_command_prints_them(two_envs):
    project, second, frame = two_envs
    first = next(name for name in frame["env_name"].unique() if name != second)
    headers, rows = listing_table(frame)
    assert headers == ["machine", "environment", "python", "requirements", "commits", "results"]
    assert sorted(row[1] for row in rows) == sorted([first, second])
    assert {row[4] for row in rows} == {"1", "3"}  # text cells: commits per environment
    table = compare_environments(frame, baseline=first)
    (title, block), = against_baseline(table)
    assert title == f"{second} against {first} at commit {project.commits[-1][:8]}"
    assert len(block) == len(table)
    assert HEADERS[1:3] == ["Baseline", "Environment"]
    assert against_baseline(table.iloc[:0]) == []
