"""Build real asv results for the reporter's tests: a tiny project, three commits, asv run.

Commit 1 is the baseline; commit 2 puts in a deliberate slowdown (Sleep x8: far past the
wake-up noise of sleeps on a busy 2-core machine), a deliberate extra
allocation (+60 MB in peakmem_buffer), a worse tracked figure and a new failure; commit 3
keeps the slowdown and the allocation (a lasting step for asv's step detection), improves the
tracked figure below its first value and fixes the failure. Each commit is run with
``asv run --python=same --set-commit-hash`` (asv then imports the checked-out benchmarks), with
HOME pointed into the project so that asv's machine file never touches the real home.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FIXTURE_DIR = Path(__file__).resolve().parent
MACHINE = "fixture-machine"

# asv 0.6's result_columns (api version 2), for tests that write result files by hand.
RESULT_COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a",
                  "stats_ci_99_b", "stats_q_25", "stats_q_75", "stats_number", "stats_repeat",
                  "samples", "profile"]

# What each commit writes into benchmarks/_knobs.py.
COMMIT_KNOBS = [
    {"SLOWDOWN": 1, "EXTRA_BYTES": 0, "TRACKED_ITEMS": 10, "BREAK": False},
    {"SLOWDOWN": 8, "EXTRA_BYTES": 60_000_000, "TRACKED_ITEMS": 30, "BREAK": True},
    {"SLOWDOWN": 8, "EXTRA_BYTES": 60_000_000, "TRACKED_ITEMS": 5, "BREAK": False},
]


@dataclass(frozen=True)
class AsvProject:
    root: Path
    results_dir: Path
    html_dir: Path
    commits: list[str]  # full hashes, oldest first
    env: dict[str, str]

    def asv(self, *args: str, ok_codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
        """Run the asv command line in the project; raise with its output if it fails."""
        proc = subprocess.run(
            [sys.executable, "-m", "asv", *args],
            check=False,
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode not in ok_codes:
            raise RuntimeError(f"asv {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc


def _git(root: Path, env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def _write_knobs(root: Path, knobs: dict) -> None:
    lines = [f"{name} = {value!r}" for name, value in knobs.items()]
    (root / "benchmarks" / "_knobs.py").write_text("\n".join(lines) + "\n")


def build_asv_project(root: Path) -> AsvProject:
    """Create the project under ``root``, commit three times, run asv on each commit."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURE_DIR / "asv.conf.json", root / "asv.conf.json")
    shutil.copytree(FIXTURE_DIR / "benchmarks", root / "benchmarks",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".gitignore").write_text("results/\nhtml/\n.asv/\nhome/\n__pycache__/\n")
    home = root / "home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(home), GIT_AUTHOR_NAME="fixture",
               GIT_AUTHOR_EMAIL="fixture@example.invalid", GIT_COMMITTER_NAME="fixture",
               GIT_COMMITTER_EMAIL="fixture@example.invalid")
    _git(root, env, "init", "-q", "-b", "main")
    commits = []
    for number, knobs in enumerate(COMMIT_KNOBS):
        _write_knobs(root, knobs)
        # Increasing commit dates one day apart: the results' "date" orders the history.
        date = f"2024-01-0{number + 1}T12:00:00+00:00"
        commit_env = dict(env, GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
        _git(root, commit_env, "add", "-A")
        _git(root, commit_env, "commit", "-q", "--allow-empty", "-m", f"commit {number + 1}")
        commits.append(_git(root, env, "rev-parse", "HEAD"))
    project = AsvProject(root, root / "results", root / "html", commits, env)
    project.asv("machine", "--yes", "--machine", MACHINE)
    for commit in commits:
        _git(root, env, "checkout", "-q", commit)
        project.asv("run", "--python=same", "--set-commit-hash", commit, "--record-samples",
                    "--machine", MACHINE, "--launch-method", "spawn",
                    ok_codes=(0, 2))  # 2: some benchmark failed, which commit 2 does on purpose
    _git(root, env, "checkout", "-q", "main")
    (root / "built.json").write_text(json.dumps({"commits": commits}))
    return project


def cached_asv_project(root: Path) -> AsvProject:
    """The project under ``root``, built on first use and reused by later test modules."""
    marker = root / "built.json"
    if not marker.exists():
        if root.exists():
            shutil.rmtree(root)  # a half-built project from an interrupted run
        return build_asv_project(root)
    commits = json.loads(marker.read_text())["commits"]
    env = dict(os.environ, HOME=str(root / "home"))
    return AsvProject(root, root / "results", root / "html", commits, env)


# The second environment's knobs: the last commit's, with a 4x slower sleep (SLOWDOWN 8 -> 32).
SECOND_ENV_KNOBS = dict(COMMIT_KNOBS[-1], SLOWDOWN=32)


def build_second_environment(project: AsvProject, root: Path) -> tuple[AsvProject, str]:
    """A copy of ``project`` whose last commit is also run in a second environment.

    The second environment is a venv of its own (another interpreter path, so asv gives it
    another name) that sees this venv's packages through a .pth file; the working tree's
    ``_knobs.py`` makes its sleep 4x slower, as a slower dependency version would. Returns the
    copy and the second environment's asv name.
    """
    import sysconfig

    shutil.copytree(project.root, root, symlinks=True)
    env = dict(project.env, HOME=str(root / "home"))
    venv = root / "second-env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    purelib.mkdir(parents=True, exist_ok=True)
    (purelib / "parent-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    copy = AsvProject(root, root / "results", root / "html", project.commits, env)
    _write_knobs(root, SECOND_ENV_KNOBS)
    before = {p.name for p in (root / "results" / MACHINE).iterdir()}
    copy.asv("run", "--environment", f"existing:{venv / 'bin' / 'python'}", "--set-commit-hash",
             project.commits[-1], "--record-samples", "--machine", MACHINE,
             "--launch-method", "spawn")
    _write_knobs(root, COMMIT_KNOBS[-1])
    added = sorted({p.name for p in (root / "results" / MACHINE).iterdir()} - before)
    assert len(added) == 1, added
    env_name = json.loads((root / "results" / MACHINE / added[0]).read_text())["env_name"]
    return copy, env_name


def parse_asv_compare_marks(output: str) -> dict[str, str]:
    """``asv compare`` (github table) output -> {benchmark label: change mark}."""
    marks = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        # Skip the header and the |----| rule (a lone '-' is the "improved" mark).
        if len(cells) < 7 or cells[1] == "Change" or len(cells[1]) > 1:
            continue
        marks[cells[5]] = cells[1] or " "
    return marks
