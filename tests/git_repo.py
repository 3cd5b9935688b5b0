"""git in the throwaway repositories the fixtures build (the gate's and the meter's)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run_git(root: Path, env: dict[str, str], *args: str) -> str:
    """``git ARGS`` in ``root``; its standard output, stripped."""
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def commit_all(root: Path, env: dict[str, str], message: str) -> str:
    """Commit every change in ``root``; the new commit's full hash."""
    run_git(root, env, "add", "-A")
    run_git(root, env, "commit", "-q", "-m", message)
    return run_git(root, env, "rev-parse", "HEAD")
