"""The harness suite's ci profile run through asv into a temporary directory, shared by the
end-to-end tests (tests/test_asv_suite.py) and the published-site tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness import names
from harness.measuring.runs import profiles

REPO = Path(__file__).resolve().parent.parent
#: Every family of the suite (from its naming contract, so a new family is checked too).
FAMILIES = tuple(dict.fromkeys(names.family(c) for c in names.MATVEC_CLASSES))


def asv_setup(tmp: Path) -> tuple[Path, dict]:
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


def asv(args: list[str], config: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asv", *args, "--config", str(config)],
                          check=False, cwd=config.parent, env=env, capture_output=True, text=True,
                          timeout=timeout)


def run_ci_profile(tmp: Path):
    """``asv run --python=same`` of the ci profile on HEAD; (results frame, asv output, tmp)."""
    from harness.reporting import results

    config, env = asv_setup(tmp)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.strip()
    machine = asv(["machine", "--yes", "--machine", "e2e"], config, env, timeout=60)
    assert machine.returncode == 0, machine.stdout + machine.stderr
    run = asv(["run", "--python=same", "--set-commit-hash", commit, "--machine", "e2e",
               "--show-stderr"], config, env, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    return results.load(tmp / "results"), output, tmp
