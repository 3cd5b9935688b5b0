"""A regression gate for pull requests: run asv on two commits, judge HEAD against BASE.

``run_gate(config, BASE, HEAD)`` does what ``python -m harness gate BASE HEAD`` does and
returns a ``GateResult`` (the judged table and the verdict); the command line only parses,
prints and turns the verdict into an exit status. The steps, one module each:

1. ``run``: BASE and HEAD -> full hashes with git (``resolve_commit``); ``asv run
   --skip-existing-successful`` on both commits in the configuration's environments
   (``run_missing``); measuring chosen benchmarks again (``rerun``).
2. ``load``: both commits' results from the configuration's ``results_dir``, one machine
   (``load_pair``), narrowed by regular expression (``select_benchmarks``).
3. ``judge``: asv compare's statistics with one factor for time figures and another for
   memory figures, new failures as regressions (``judge``); the samples a verdict needs
   (``too_few_samples``); confirmation runs (``time_regressions``, ``merge_confirmation``).
4. ``render``: the summary line and the table's rows.

Units: time figures are seconds, memory figures bytes (as asv records them); factors are ratios
HEAD / BASE; the memory floor is bytes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from harness.reporting.gate.errors import GateError
from harness.reporting.gate.judge import (
    CANNOT_JUDGE,
    DEFAULT_MEMORY_FLOOR,
    FAIL,
    MEMORY_UNITS,
    NOT_JUDGED,
    OK,
    PASS,
    REGRESSION,
    TIME_UNITS,
    asv_test_can_separate,
    figure_kind,
    judge,
    merge_confirmation,
    regressed,
    time_regressions,
    too_few_samples,
    verdict,
)
from harness.reporting.gate.load import load_pair, load_selected, select_benchmarks
from harness.reporting.gate.render import summary, table_rows
from harness.reporting.gate.run import (
    ASV_SOME_FAILED,
    AsvRunner,
    asv_machine_name,
    environment_names,
    load_project,
    rerun,
    resolve_commit,
    run_missing,
)
from harness.reporting.results import compile_patterns, forwarded_warnings

__all__ = [
    "ASV_SOME_FAILED", "CANNOT_JUDGE", "DEFAULT_MEMORY_FLOOR", "FAIL", "MEMORY_UNITS",
    "NOTHING_JUDGED", "NOT_JUDGED", "OK", "PASS", "REGRESSION", "TIME_UNITS", "AsvRunner",
    "GateError", "GateResult", "Runner", "asv_machine_name", "asv_test_can_separate",
    "environment_names", "figure_kind", "judge", "load_pair", "load_project", "load_selected",
    "merge_confirmation", "progress_to_stderr", "regressed", "rerun", "resolve_commit",
    "run_gate", "run_missing", "select_benchmarks", "summary", "table_rows", "time_regressions",
    "too_few_samples", "verdict",
]

NOTHING_JUDGED = ("nothing could be judged (no time or memory figure with results on both "
                  "commits); check --bench and that both commits ran")


class Runner(Protocol):
    """What ``run_gate`` asks of asv (``AsvRunner`` is the real one)."""

    def run_missing(self, commits: Sequence[str], machine: str | None,
                    bench: Sequence[str]) -> tuple[str, int]:
        """Run what is missing; (the machine name results are filed under, asv's status)."""

    def rerun(self, commits: Sequence[str], machine: str, entry_names: Sequence[str]) -> int:
        """Measure these asv labels again on ``commits``, replacing their results."""

    def environment_names(self) -> list[str]:
        """The environments the runs use (the result files' ``env_name``)."""


@dataclass(frozen=True)
class GateResult:
    """What ``run_gate`` found: the ``judge`` table (after any confirmation runs) and its
    verdict (PASS, FAIL or CANNOT_JUDGE), with what it was judged with."""

    judged: pd.DataFrame
    verdict: str
    base: str  # full hashes
    head: str
    machine: str | None  # None: the only machine with results (with run=False)
    factor: float
    memory_factor: float
    memory_floor: float  # bytes

    @property
    def problem(self) -> str | None:
        """Why the gate cannot judge (CANNOT_JUDGE), else None."""
        return NOTHING_JUDGED if self.verdict == CANNOT_JUDGE else None

    def summary(self) -> str:
        """One line: the verdict, the counts behind it and the factors used."""
        return summary(self.judged, self.factor, self.memory_factor, self.memory_floor)

    def table_rows(self) -> tuple[list[str], list[list[str]]]:
        """Headers and rows for ``harness.reporting.report.format_table``."""
        return table_rows(self.judged)


def progress_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_gate(config: str | os.PathLike, base: str, head: str, *, factor: float = 1.1,
             memory_factor: float = 1.1, memory_floor: float = DEFAULT_MEMORY_FLOOR,
             confirm: int = 1, bench: Sequence[str] = (), run: bool = True,
             machine: str | None = None, show_stderr: bool = False,
             progress: Callable[[str], None] = progress_to_stderr,
             runner: Runner | None = None) -> GateResult:
    """Judge commit ``head`` against ``base`` (revisions git resolves in the asv project of
    ``config``), running asv where results are missing.

    With ``run`` (the default): asv runs both commits where this machine has no successful
    result (``run_missing``), in the configuration's environments; time benchmarks whose
    stored samples are too few for asv's test are measured again first; then, up to
    ``confirm`` times, the time figures judged regressions are measured again on both commits
    and stay regressions only if the new results show them too (one asv round is one process,
    and one slow process on a busy machine can make unchanged code look slower). Without
    ``run``: the stored results are judged as they are.

    ``factor`` / ``memory_factor``: smallest ratio HEAD / BASE that counts for time / memory
    figures; ``memory_floor``: bytes of growth that are noise whatever their ratio. ``bench``:
    regular expressions on asv labels (asv run --bench). ``machine``: asv's machine name
    (default: asv's, the host name). ``progress``: called with each message, and each line of
    asv's output (default: stderr). ``runner``: the object that runs asv (default
    ``AsvRunner``).

    Raises GateError (or ValueError, or a results file error) when the gate cannot judge at
    all: bad patterns, unknown revisions, asv failing, no results.
    """
    try:
        compile_patterns(bench)
    except ValueError as exc:
        raise GateError(str(exc)) from None
    project = load_project(config)
    base = resolve_commit(project.repo_dir, base)
    head = resolve_commit(project.repo_dir, head)
    environments = None
    if run:
        if runner is None:
            runner = AsvRunner(project, show_stderr=show_stderr,
                               echo=lambda line: progress(line.rstrip("\n")))
        machine, status = runner.run_missing([base, head], machine, bench)
        if status == ASV_SOME_FAILED:
            progress("note: asv reports failed benchmarks (exit status 2); they are judged "
                     "below (--show-stderr shows their errors)")
        environments = runner.environment_names() or None

    def load_stored() -> tuple[pd.DataFrame, pd.DataFrame]:
        with forwarded_warnings(lambda message: progress(f"warning: {message}")):
            return load_selected(project.results_dir, base, head, machine=machine,
                                 environments=environments, bench=bench)

    def judge_stored(stored: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> pd.DataFrame:
        return judge(*(stored if stored is not None else load_stored()), factor=factor,
                     memory_factor=memory_factor, memory_floor=memory_floor)

    stored = load_stored()
    if run:
        thin = too_few_samples(*stored)
        if thin:
            progress(f"measuring {len(thin)} time benchmark(s) again: their stored results "
                     "have too few samples for asv's test (a run without --record-samples, "
                     "or an interrupted one)")
            runner.rerun([base, head], machine, thin)
            stored = load_stored()  # the rerun wrote new results
    judged = judge_stored(stored)
    for attempt in range(confirm if run else 0):
        flagged = time_regressions(judged)
        if not flagged:
            break
        progress(f"confirming {len(flagged)} time regression(s): measuring them again on both "
                 f"commits ({attempt + 1}/{confirm})")
        runner.rerun([base, head], machine, flagged)
        judged = merge_confirmation(judged, judge_stored(), flagged)
    return GateResult(judged, verdict(judged), base, head, machine, factor, memory_factor,
                      memory_floor)
