"""Build and run the meter plugin's end-to-end project: a tiny package that is not the harness
(``project/``: ``tinymeter`` and its asv suite), committed three times and run with the real
``asv run`` in a virtualenv where asv installs the plugin from its environment matrix.

- ``base``: ``tinymeter.allocate`` writes 64 MiB.
- ``doubled``: the next commit on ``main``; it writes twice as much (the change is in the
  package: asv takes the benchmarks from the working tree and the package from each commit).
- ``docs``: a branch from ``base`` that changes only README.md: the same code as ``base``.

The plugin reaches asv's virtualenv as it reaches any project's: the matrix's
``"asv_bench_harness": [""]`` makes asv run ``pip install asv_bench_harness``, and pip finds the
wheel built here from ``plugins/asv_bench_harness`` through ``PIP_FIND_LINKS``. ``base`` runs
the whole suite; ``doubled`` and ``docs`` only the allocations (``Allocate``) the compare and
gate tests judge. ``env`` points HOME into the project so that asv's machine file never
touches the real home; every file asv and the benchmarks write stays under ``root``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from git_repo import commit_all, run_git

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "plugins" / "asv_bench_harness"
PROJECT_DIR = Path(__file__).resolve().parent / "project"
MACHINE = "meter-machine"
#: The benchmarks run on the later commits.
ALLOCATIONS = r"^bench\.Allocate\."


@dataclass(frozen=True)
class MeterProject:
    root: Path
    config: Path  # asv.conf.json
    results_dir: Path
    commits: dict[str, str]  # "base", "doubled", "docs" -> full hash
    output: str  # asv run's output (stdout and stderr) on base
    env: dict[str, str]


def _asv(root: Path, env: dict[str, str], *args: str) -> str:
    """Run asv in the project; its output. asv's status 2 (some benchmark failed) is expected:
    one benchmark is refused on purpose."""
    proc = subprocess.run([sys.executable, "-m", "asv", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    output = proc.stdout + proc.stderr
    if proc.returncode not in (0, 2):
        raise RuntimeError(f"asv {' '.join(args)} failed ({proc.returncode}):\n{output[-5000:]}")
    return output


def build_plugin_wheel(wheelhouse: Path) -> Path:
    """The plugin's wheel, built from this repository into ``wheelhouse``."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "--quiet", "-w", str(wheelhouse), str(PLUGIN_DIR)], check=True,
                   capture_output=True, text=True, timeout=300)
    (wheel,) = wheelhouse.glob("asv_bench_harness-*.whl")
    return wheel


def build_meter_project(root: Path) -> MeterProject:
    """Create the repository under ``root`` (which must not exist yet), commit, run asv."""
    shutil.copytree(PROJECT_DIR, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".gitignore").write_text(".asv/\nhome/\nwheels/\n__pycache__/\n*.egg-info/\nbuild/\n")
    (root / "home").mkdir()
    build_plugin_wheel(root / "wheels")
    env = dict(os.environ, HOME=str(root / "home"), GIT_AUTHOR_NAME="meter",
               GIT_AUTHOR_EMAIL="meter@example.invalid", GIT_COMMITTER_NAME="meter",
               GIT_COMMITTER_EMAIL="meter@example.invalid", GIT_CONFIG_NOSYSTEM="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_FIND_LINKS=str(root / "wheels"))
    run_git(root, env, "init", "-q", "-b", "main")
    (root / "README.md").write_text("tinymeter: a throwaway project.\n")
    base = commit_all(root, env, "base")
    (root / "tinymeter" / "_knobs.py").write_text("ALLOCATION_FACTOR = 2\n")
    doubled = commit_all(root, env, "allocate twice as much")
    run_git(root, env, "checkout", "-q", "-b", "docs", base)
    (root / "README.md").write_text("tinymeter: a throwaway project. Now documented.\n")
    docs = commit_all(root, env, "docs only")
    run_git(root, env, "checkout", "-q", "main")

    _asv(root, env, "machine", "--yes", "--machine", MACHINE)
    common = ["--machine", MACHINE, "--record-samples", "--show-stderr"]
    output = _asv(root, env, "run", *common, f"{base}^!")
    hashes = root / "home" / "later-commits.txt"
    hashes.write_text(f"{doubled}\n{docs}\n")
    _asv(root, env, "run", *common, "--bench", ALLOCATIONS, f"HASHFILE:{hashes}")
    commits = {"base": base, "doubled": doubled, "docs": docs}
    (root / "built.json").write_text(json.dumps({"commits": commits, "output": output}))
    return MeterProject(root, root / "asv.conf.json", root / ".asv" / "results", commits, output,
                        env)
