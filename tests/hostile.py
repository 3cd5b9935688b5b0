"""Helpers for the tests of hostile input and faults: hand-written asv result documents, and
the command line run in this process with its output captured."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
from pathlib import Path

from asv_fixture.make_asv_results import RESULT_COLUMNS

from harness.cli import main as cli_main

REPO = Path(__file__).resolve().parent.parent


def document(results: dict, commit: str = "abcdef0123456789", date: float = 1704110400000,
             **overrides) -> dict:
    """A minimal api-version-2 results document."""
    data = {"commit_hash": commit, "env_name": "env-a", "date": date,
            "params": {"machine": "box", "python": "3.11"}, "python": "3.11",
            "requirements": {}, "env_vars": {}, "result_columns": RESULT_COLUMNS,
            "results": results, "durations": {}, "version": 2}
    data.update(overrides)
    return data


def write(directory: Path, name: str, content) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


GOOD_ROW = {"suite.T.time_a": [[0.5], [], "v1", None, None, None, None, None, None, None, None,
                               [[0.5, 0.5, 0.51, 0.49]]]}


def good_file(directory: Path, commit: str = "12345678aaaa", date: float = 1704000000000
              ) -> Path:
    return write(directory, f"{commit[:8]}-env-a.json", document(GOOD_ROW, commit=commit,
                                                                 date=date))


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``python -m harness ARGV`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli_main(list(argv))
        except SystemExit as exc:  # argparse
            status = exc.code if isinstance(exc.code, int) else 2
    return status, out.getvalue(), err.getvalue()


def results_project(root: Path, commits: int = 2) -> Path:
    """An asv configuration at ``root`` with ``commits`` good result files; its path."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "asv.conf.json"
    config.write_text(json.dumps({"version": 1, "project": "p", "project_url": "", "repo": ".",
                                  "environment_type": "virtualenv", "results_dir": "results",
                                  "html_dir": "html"}))
    for k in range(commits):
        good_file(root / "results" / "box", commit=f"{k + 1:x}" * 12,
                  date=1704000000000 + k * 86400000)
    return config


def fake_asv_steps(command: list[str], what: str) -> None:
    """Stands in for ``harness.reporting.publish._run``: asv publish writes a tiny site (an
    index.html and index.json) where it is told; the UI install does nothing."""
    if what == "asv publish":
        site = Path(command[command.index("--html-dir") + 1])
        site.mkdir(parents=True)
        (site / "index.html").write_text("<html><body>graphs</body></html>")
        (site / "index.json").write_text(json.dumps({"revision_to_hash": {}}))


def git_project(root: Path) -> tuple[Path, list[str]]:
    """A git repository of two commits with an asv configuration (results in ``results``,
    none yet); (its root, the two full hashes, oldest first)."""
    root.mkdir(parents=True)
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True, env=env)
    hashes = []
    for k in range(2):
        (root / "f").write_text(str(k))
        subprocess.run(["git", "add", "f"], cwd=root, check=True, env=env)
        subprocess.run(["git", "commit", "-q", "-m", f"c{k}"], cwd=root, check=True, env=env)
        hashes.append(subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, check=True,
                                     capture_output=True, text=True).stdout.strip())
    (root / "asv.conf.json").write_text(json.dumps({
        "version": 1, "project": "p", "project_url": "", "repo": ".",
        "environment_type": "virtualenv", "results_dir": "results", "html_dir": "html"}))
    return root, hashes


def gate_results(root: Path, hashes: list[str], slowdown: float = 1.0) -> None:
    """Results of both commits of ``git_project`` (HEAD ``slowdown`` times slower)."""
    for k, commit in enumerate(hashes):
        value = 0.5 * (slowdown if k else 1.0)
        samples = [value * (1 + 0.01 * (j % 3)) for j in range(8)]
        write(root / "results" / "box", f"{commit[:8]}-env-a.json", document(
            {"suite.T.time_a": [[value], [], "v1", None, None, None, None, None, None, None,
                                None, [samples]]}, commit=commit,
            date=1704000000000 + k * 86400000))
