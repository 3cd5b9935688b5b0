"""Build a throwaway git repository for the gate's end-to-end test: a tiny installable project
(``project/``: ``tinywork`` and its asv suite) committed three times.

- ``base``: the baseline.
- ``slow``: the next commit on ``main``; ``tinywork.work`` loops 5x longer and fills a buffer
  50 MB larger (the change is in the package, not in the benchmarks: asv 0.6 takes the
  benchmarks from the working tree and the package from the commit it builds).
- ``docs``: a branch from ``base`` that changes only README.md: the same code as ``base``.

Nothing is run here; the gate itself runs asv. ``env`` points HOME into the repository's
ignored ``home/`` so that asv's machine file (~/.asv-machine.json) never touches the real home.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from git_repo import commit_all, run_git

PROJECT_DIR = Path(__file__).resolve().parent / "project"
MACHINE = "gate-machine"

SLOWDOWN = 5
EXTRA_BYTES = 50_000_000


@dataclass(frozen=True)
class GateRepo:
    root: Path
    config: Path  # asv.conf.json
    commits: dict[str, str]  # "base", "slow", "docs" -> full hash
    env: dict[str, str]


def _write_knobs(root: Path, slowdown: int, extra_bytes: int) -> None:
    (root / "tinywork" / "_knobs.py").write_text(
        f"SLOWDOWN = {slowdown}\nEXTRA_BYTES = {extra_bytes}\n")


def build_gate_repo(root: Path) -> GateRepo:
    """Create the repository under ``root`` (which must not exist yet) and commit."""
    shutil.copytree(PROJECT_DIR, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".gitignore").write_text(".asv/\nhome/\n__pycache__/\n*.egg-info/\nbuild/\n")
    (root / "home").mkdir()
    env = dict(os.environ, HOME=str(root / "home"), GIT_AUTHOR_NAME="gate",
               GIT_AUTHOR_EMAIL="gate@example.invalid", GIT_COMMITTER_NAME="gate",
               GIT_COMMITTER_EMAIL="gate@example.invalid", GIT_CONFIG_NOSYSTEM="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    run_git(root, env, "init", "-q", "-b", "main")
    (root / "README.md").write_text("tinywork: a throwaway project.\n")
    _write_knobs(root, 1, 0)
    base = commit_all(root, env, "base")
    _write_knobs(root, SLOWDOWN, EXTRA_BYTES)
    slow = commit_all(root, env, "slower, allocates more")
    run_git(root, env, "checkout", "-q", "-b", "docs", base)
    (root / "README.md").write_text("tinywork: a throwaway project. Now documented.\n")
    docs = commit_all(root, env, "docs only")
    run_git(root, env, "checkout", "-q", "main")
    return GateRepo(root, root / "asv.conf.json", {"base": base, "slow": slow, "docs": docs},
                    env)
