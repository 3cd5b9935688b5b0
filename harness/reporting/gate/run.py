"""The gate's dealings with git and asv: resolve revisions, register the machine, run what is
missing, measure chosen benchmarks again.

asv 0.6 takes the *benchmark code* from the working tree of the configuration's
``benchmark_dir`` for every commit and builds the *project* from each commit (real builds in
the configuration's environments, not ``--python=same``), so both sides of a comparison are
measured by the same benchmarks. asv's output is passed on line by line to an ``echo``
callable (default: stderr, so that stdout keeps only the gate's table).
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from harness.reporting import asvconfig
from harness.reporting.asvconfig import AsvProject
from harness.reporting.gate.errors import GateError

# asv run's exit status when every benchmark ran but some failed (asv.commands.run.Run.run
# returns 2 when any result has a non-zero errcode): the failures are in the results, and the
# gate judges them, so this is not an error of the run.
ASV_SOME_FAILED = 2
TAIL_LINES = 30  # lines of asv's output quoted when it fails


def echo_to_stderr(line: str) -> None:
    """Pass one line of asv's output (newline included) to stderr as it comes."""
    sys.stderr.write(line)
    sys.stderr.flush()


def load_project(config_path: str | os.PathLike) -> AsvProject:
    """``harness.reporting.asvconfig.load_project``, with its error as the gate's."""
    try:
        return asvconfig.load_project(config_path)
    except asvconfig.AsvConfigError as exc:
        raise GateError(str(exc)) from None


def resolve_commit(repo_dir: str | os.PathLike, revision: str) -> str:
    """``revision`` (a branch, tag, hash prefix, ``HEAD~1``...) -> the commit's full hash."""
    if not revision or revision.startswith("-"):
        raise GateError(f"{revision!r} is not a revision; give a commit, branch or tag")
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"],
            cwd=repo_dir, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise GateError("git is not installed (or not on PATH); the gate needs it to resolve "
                        "BASE and HEAD") from None
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()
        hint = f" ({detail[-1]})" if detail else ""
        raise GateError(f"unknown revision {revision!r} in the git repository {repo_dir}{hint}; "
                        "give a commit, branch or tag of that repository (fetch it first if it "
                        "is a remote branch)")
    return proc.stdout.strip()


def asv_machine_name(requested: str | None = None) -> str | None:
    """The machine name asv would file results under, or None when its machine file
    (``~/.asv-machine.json``) has no entry for it yet (``asv run`` would then ask questions).

    asv's rule (asv.machine.MachineCollection.load): the requested name, else the host name,
    else the only entry of the machine file when it has exactly one.
    """
    from asv import util as asv_util
    from asv.machine import Machine, MachineCollection

    name = requested or Machine.get_unique_machine_name()
    try:
        return MachineCollection.load(name)["machine"]
    except (asv_util.UserError, KeyError, TypeError):
        return None


def environment_names(project: AsvProject) -> list[str]:
    """Names of the environments ``asv run`` builds for this configuration (as in the result
    files' ``env_name``); empty when asv cannot set any up here (say, no such Python)."""
    from asv import environment
    from asv import util as asv_util

    try:
        return [env.name for env in environment.get_environments(project.config, None,
                                                                  verbose=False)]
    except (asv_util.UserError, ValueError, environment.EnvironmentUnavailable):
        return []  # a bad matrix: the run itself has reported the cause


def run_missing(project: AsvProject, commits: Sequence[str], machine: str | None = None,
                bench: Iterable[str] = (), show_stderr: bool = False,
                echo: Callable[[str], None] = echo_to_stderr) -> tuple[str, int]:
    """Run asv on ``commits`` (full hashes) where this machine has no successful result yet.

    Registers the machine first (``asv machine --yes``: asv's defaults, host name, CPU, RAM)
    when asv's machine file has no entry for it. Then one ``asv run --skip-existing-successful
    --record-samples --interleave-rounds HASHFILE:...`` for all commits: one benchmark
    discovery; the samples let compare use asv's Mann-Whitney test; interleaving the rounds of
    the commits spreads slow phases of a busy machine over both sides instead of biasing one.
    ``bench``: asv ``--bench`` regular expressions. ``echo``: called with each line of asv's
    output as it comes.

    Returns (machine name, asv's exit status: 0, or 2 when some benchmarks failed). Raises
    GateError with the tail of asv's output when asv fails otherwise.
    """
    name = asv_machine_name(machine)
    if name is None:
        command = ["machine", "--yes"] + (["--machine", machine] if machine else [])
        # Its output is the questionnaire answered with defaults: shown only if it fails.
        status, tail = _asv(project, command, lambda line: None)
        name = asv_machine_name(machine)
        if status != 0 or name is None:
            raise GateError(_asv_failure("asv machine --yes", status, tail))
    return name, _run_commits(project, commits, name, bench, show_stderr, echo,
                              skip_existing=True)


def rerun(project: AsvProject, commits: Sequence[str], machine: str, entry_names: Iterable[str],
          show_stderr: bool = False, echo: Callable[[str], None] = echo_to_stderr) -> int:
    """Measure the benchmark combinations ``entry_names`` (asv labels, ``name(params)``) again on
    ``commits``, in fresh processes, replacing their stored results. Returns asv's status."""
    # asv run --bench matches a regular expression against "name(param reprs)": anchor and
    # escape each label so that exactly these combinations run.
    patterns = [f"^{re.escape(name)}$" for name in dict.fromkeys(entry_names)]
    return _run_commits(project, commits, machine, patterns, show_stderr, echo,
                        skip_existing=False)


class AsvRunner:
    """The asv runs of one gate: ``run_missing``, ``rerun`` and ``environment_names`` bound to
    a project, asv's --show-stderr choice and an ``echo`` for asv's output.

    ``harness.reporting.gate.run_gate`` drives any object with these three methods; a test can
    hand it one that writes result files instead of running asv.
    """

    def __init__(self, project: AsvProject, show_stderr: bool = False,
                 echo: Callable[[str], None] = echo_to_stderr):
        self.project, self.show_stderr, self.echo = project, show_stderr, echo

    def run_missing(self, commits: Sequence[str], machine: str | None,
                    bench: Iterable[str]) -> tuple[str, int]:
        return run_missing(self.project, commits, machine=machine, bench=bench,
                           show_stderr=self.show_stderr, echo=self.echo)

    def rerun(self, commits: Sequence[str], machine: str, entry_names: Iterable[str]) -> int:
        return rerun(self.project, commits, machine, entry_names, show_stderr=self.show_stderr,
                     echo=self.echo)

    def environment_names(self) -> list[str]:
        return environment_names(self.project)


def _run_commits(project: AsvProject, commits: Sequence[str], machine: str,
                 bench: Iterable[str], show_stderr: bool, echo: Callable[[str], None],
                 skip_existing: bool) -> int:
    unique = list(dict.fromkeys(commits))
    with tempfile.TemporaryDirectory(prefix="harness-gate-") as scratch:
        hashfile = Path(scratch) / "commits.txt"
        hashfile.write_text("".join(f"{commit}\n" for commit in unique))
        command = ["run", "--machine", machine, "--record-samples"]
        if skip_existing:
            command.append("--skip-existing-successful")
        if len(unique) > 1:
            command.append("--interleave-rounds")
        for pattern in bench:
            command += ["--bench", pattern]
        if show_stderr:
            command.append("--show-stderr")
        command.append(f"HASHFILE:{hashfile}")
        status, tail = _asv(project, command, echo)
    if status not in (0, ASV_SOME_FAILED):
        shown = command[:-1] + [f"HASHFILE:<{' '.join(c[:8] for c in unique)}>"]
        raise GateError(_asv_failure("asv " + " ".join(shown), status, tail))
    return status


def _asv(project: AsvProject, args: list[str], echo: Callable[[str], None]
         ) -> tuple[int, list[str]]:
    """Run ``python -m asv ARGS --config CONFIG``, echoing its output; (status, last lines)."""
    command = [sys.executable, "-m", "asv", *args, "--config", str(project.config_path)]
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    with subprocess.Popen(command, cwd=project.config_path.parent, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            echo(line)
            tail.append(line.rstrip("\n"))
    return proc.returncode, list(tail)


def _asv_failure(what: str, status: int, tail: list[str]) -> str:
    shown = "\n".join("    " + line for line in tail) or "    (no output)"
    return (f"{what} failed with exit status {status}; the last lines of its output:\n{shown}\n"
            "Fix the cause above (or run asv by hand, then rerun the gate with --no-run).")
