"""A regression gate for pull requests: run asv on two commits, judge HEAD against BASE.

``python -m harness gate BASE HEAD`` (``harness.cli.gate_cmd``) is a thin shell around this
module:

1. ``resolve_commit``: BASE and HEAD -> full hashes in the asv project's repository.
2. ``run_missing``: ``asv run --skip-existing-successful`` on both commits in the environments
   of the asv configuration (real builds of each commit, not ``--python=same``).
3. ``load_pair``: both commits' results from the configuration's ``results_dir``, one machine.
4. ``judge``: ``harness.reporting.compare.compare`` (asv compare's statistics) with one factor for time
   figures and another for memory figures; a benchmark that fails on HEAD but did not on BASE
   is a regression too. Figures in other units (GB/s, counts) are shown, not judged.
5. ``summary`` and ``table_rows`` for the report; ``regressed`` decides the exit status.

Units: time figures are seconds, memory figures bytes (as asv records them); factors are
ratios HEAD / BASE (1.1 = 10% worse is the smallest change that counts, asv's default).

asv 0.6 takes the *benchmark code* from the working tree of the configuration's
``benchmark_dir`` for every commit and builds the *project* from each commit, so both sides are
measured by the same benchmarks.
"""

from __future__ import annotations

import collections
import math
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd

from harness.reporting import asvconfig
from harness.reporting.asvconfig import AsvProject
from harness.reporting.compare import compare, compare_rows, select_commit, select_machine
from harness.units import binary_bytes

TIME_UNITS = frozenset({"seconds"})
MEMORY_UNITS = frozenset({"bytes"})
# Memory changes up to this many bytes are noise, whatever their ratio: page-granular figures
# of identical code moved by one to sixteen 4 KiB pages between runs here (a +4.1k on a 9.9M
# peak is nothing, a +65.5k on a 100k anon increment is "1.6x").
DEFAULT_MEMORY_FLOOR = 1 << 20

# judge()'s "gate" column.
REGRESSION, OK, NOT_JUDGED = "regression", "ok", "not judged"

# asv run's exit status when every benchmark ran but some failed (asv.commands.run.Run.run
# returns 2 when any result has a non-zero errcode): the failures are in the results, and the
# gate judges them, so this is not an error of the run.
ASV_SOME_FAILED = 2
TAIL_LINES = 30


class GateError(Exception):
    """The gate cannot judge: the message names the problem and the fix (exit status 2)."""


def load_project(config_path: str | os.PathLike) -> AsvProject:
    """``harness.reporting.asvconfig.load_project``, with its error as the gate's (exit status 2)."""
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
                echo: Callable[[str], None] | None = None) -> tuple[str, int]:
    """Run asv on ``commits`` (full hashes) where this machine has no successful result yet.

    Registers the machine first (``asv machine --yes``: asv's defaults, host name, CPU, RAM)
    when asv's machine file has no entry for it. Then one ``asv run --skip-existing-successful
    --record-samples --interleave-rounds HASHFILE:...`` for all commits: one benchmark discovery; the samples let compare use asv's
    Mann-Whitney test; interleaving the rounds of the commits spreads slow phases of a busy
    machine over both sides instead of biasing one. ``bench``: asv ``--bench`` regular
    expressions. ``echo``: called with each line of asv's output as it comes (default: to
    stderr, so that stdout keeps only the gate's table).

    Returns (machine name, asv's exit status: 0, or 2 when some benchmarks failed). Raises
    GateError with the tail of asv's output when asv fails otherwise.
    """
    if echo is None:
        def echo(line: str) -> None:
            sys.stderr.write(line)
            sys.stderr.flush()

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
          show_stderr: bool = False, echo: Callable[[str], None] | None = None) -> int:
    """Measure the benchmark combinations ``entry_names`` (asv labels, ``name(params)``) again on
    ``commits``, in fresh processes, replacing their stored results. Returns asv's status."""
    if echo is None:
        def echo(line: str) -> None:
            sys.stderr.write(line)
            sys.stderr.flush()

    # asv run --bench matches a regular expression against "name(param reprs)": anchor and
    # escape each label so that exactly these combinations run.
    patterns = [f"^{re.escape(name)}$" for name in dict.fromkeys(entry_names)]
    return _run_commits(project, commits, machine, patterns, show_stderr, echo,
                        skip_existing=False)


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


def load_pair(results_dir: str | os.PathLike, base: str, head: str, machine: str | None = None,
              environments: Iterable[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The results of commits ``base`` and ``head`` (full hashes) on one machine.

    Reads only the two commits' files (``<machine>/<hash[:8]>-<env>.json``, asv's names) with
    ``harness.reporting.results.load``. ``machine``: None takes the only machine that has results for
    either commit. ``environments``: keep only these env names (the ones the gate ran); None
    keeps all, and ``compare`` matches them by name.
    """
    from harness.reporting.results import load

    results = Path(results_dir)
    if not results.is_dir():
        raise GateError(f"no asv results directory {results}; run without --no-run, or check "
                        "results_dir in the asv configuration")
    files = sorted({path for commit in (base, head)
                    for path in results.glob(f"*/{commit[:8]}-*.json")})
    frame = load(*files) if files else pd.DataFrame(columns=["commit", "machine", "env_name"])
    if environments is not None:
        frame = frame[frame["env_name"].isin(list(environments))]
    if machine is not None or frame["machine"].nunique() > 1:
        try:
            frame = select_machine(frame, machine)
        except ValueError as exc:
            raise GateError(str(exc)) from None
    sides = []
    for label, commit in (("BASE", base), ("HEAD", head)):
        rows = frame[frame["commit"] == commit]
        if rows.empty:
            where = f" on machine {machine!r}" if machine else ""
            raise GateError(f"no results for {label} {commit[:8]}{where} in {results}; run the "
                            "gate without --no-run (or asv run) for that commit")
        sides.append(select_commit(rows, commit))
    return sides[0], sides[1]


def select_benchmarks(frame: pd.DataFrame, patterns: Iterable[str]) -> pd.DataFrame:
    """Rows whose asv label (``name(param, ...)``) matches any of the regular expressions, as
    ``asv run --bench`` selects them (``re.search``); all rows when there are none."""
    compiled = [re.compile(p) for p in patterns]
    if not compiled:
        return frame
    keep = frame["entry_name"].map(lambda label: any(p.search(label) for p in compiled))
    return frame[keep.astype(bool)]


def figure_kind(unit: object) -> str | None:
    """'time' for seconds, 'memory' for bytes, None for a unit the gate does not judge."""
    if unit in TIME_UNITS:
        return "time"
    if unit in MEMORY_UNITS:
        return "memory"
    return None


def judge(before: pd.DataFrame, after: pd.DataFrame, factor: float = 1.1,
          memory_factor: float = 1.1, use_stats: bool = True,
          memory_floor: float = DEFAULT_MEMORY_FLOOR) -> pd.DataFrame:
    """``harness.reporting.compare.compare`` of BASE (``before``) and HEAD (``after``) with the gate's
    verdict per row.

    Time figures (unit seconds: ``time_`` benchmarks, ``track_`` ones with unit seconds) are
    judged with ``factor``, memory figures (unit bytes: ``peakmem_``, ``mem_``, ``track_`` ones
    with unit bytes) with ``memory_factor``; each is the smallest ratio HEAD / BASE that counts,
    and asv's significance test applies where there are samples or intervals (peak memory and
    tracked figures have none: the factor alone decides). A memory figure must also grow by
    more than ``memory_floor`` bytes. ``track_`` figures in seconds are not judged: asv keeps
    one value of them per run, with no samples to tell noise from change (cold-cache seconds of
    identical code differed by up to 2.3x between runs here).

    Added columns: ``kind`` ("time", "memory" or None), ``factor`` (the one applied; NaN when
    not judged), ``gate`` ("regression", "ok", "not judged") and ``reason`` (why, in words).

    - regression: a judged figure asv marks worse ('+'), or a benchmark of any unit that fails
      on HEAD and did not fail on BASE (ok, skipped or no result there): a crash is not a
      matter of units.
    - ok: a judged figure unchanged (within the factor, or past it but not significant: asv's
      '~') or improved, or a failure on BASE that HEAD fixed.
    - not judged: other units; ``track_`` seconds; failed on both sides; no result on one
      side; skipped; benchmark code version changed (asv's 'x').
    """
    for name, value in (("factor", factor), ("memory_factor", memory_factor)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number such as 1.1, got {value!r}")
    if not (isinstance(memory_floor, (int, float)) and memory_floor >= 0):
        raise ValueError(f"memory_floor must be a number of bytes >= 0, got {memory_floor!r}")
    # Memory figures with their own factor, everything else with the time factor: one
    # compare per group, so asv's test runs once per row.
    is_memory = [side["unit"].isin(MEMORY_UNITS) for side in (before, after)]
    tables = [compare(before[~is_memory[0]], after[~is_memory[1]], factor=factor,
                      use_stats=use_stats),
              compare(before[is_memory[0]], after[is_memory[1]], factor=memory_factor,
                      use_stats=use_stats)]
    table = pd.concat([t for t in tables if not t.empty], ignore_index=True)
    table = table.sort_values(["benchmark", "entry_name"], kind="stable").reset_index(drop=True)
    kinds = table["unit"].map(figure_kind)
    table["kind"] = kinds
    table["factor"] = kinds.map({"time": factor, "memory": memory_factor}).astype(float)
    decided = [_gate(row, memory_floor) for row in table.itertuples(index=False)]
    table["gate"] = [gate for gate, _ in decided]
    table["reason"] = [reason for _, reason in decided]
    return table


def _gate(row, memory_floor: float) -> tuple[str, str]:
    before, after = row.status_before, row.status_after
    if after == "failed":
        if before == "failed":
            return NOT_JUDGED, "failed on BASE and HEAD"
        was = {"ok": "ok", "skipped": "skipped", "missing": "no result"}.get(before, before)
        return REGRESSION, f"new failure ({was} on BASE)"
    if before == "failed" and after == "ok":
        return OK, "failure fixed"
    if row.verdict == "incomparable":
        return NOT_JUDGED, "benchmark code changed between the results"
    if after == "missing":
        return NOT_JUDGED, "no result on HEAD"
    if before == "missing":
        return NOT_JUDGED, "no result on BASE"
    if "skipped" in (before, after):
        return NOT_JUDGED, "skipped"
    if not isinstance(row.kind, str):
        return NOT_JUDGED, f"unit {row.unit}: not judged"
    if row.kind == "time" and row.type == "track":
        return NOT_JUDGED, "track_ seconds: one value per run, no samples"
    if (row.kind == "memory" and row.verdict == "regressed"
            and row.difference <= memory_floor):
        return OK, (f"+{binary_bytes(row.difference, 1)}: within the "
                    f"{binary_bytes(memory_floor)} floor")
    worse, better = ("slower", "faster") if row.kind == "time" else ("more memory",
                                                                    "less memory")
    if row.verdict == "regressed":
        return REGRESSION, f"{worse}: {row.ratio_text}x > {row.factor:g}"
    if row.verdict == "improved":
        return OK, f"{better}: {row.ratio_text}x"
    if row.ratio_text.startswith("~"):
        return OK, f"{row.ratio_text[1:]}x, past {row.factor:g} but not significant"
    return OK, f"within {row.factor:g}x"


def asv_test_can_separate(n_before: int, n_after: int, p_threshold: float = 0.002) -> bool:
    """Whether asv's Mann-Whitney test (``asv._stats.is_different``, p < 0.002) can find any
    difference between samples of these sizes: even a complete separation only reaches the
    two-sided p = 2 / C(n_a + n_b, n_a) (7 against 7 samples: 0.0006; 6 against 6: 0.0022).
    Below that asv compares 99% confidence intervals, which rarely separate."""
    if n_before < 1 or n_after < 1:
        return False
    return 2 / math.comb(n_before + n_after, n_before) < p_threshold


def too_few_samples(before: pd.DataFrame, after: pd.DataFrame) -> list[str]:
    """asv labels of the time benchmarks (``time_``) with results on both sides whose recorded
    samples are too few for asv's test (``asv_test_can_separate``): results of a run without
    --record-samples have none, an interrupted interleaved run has one round's worth."""
    def counts(frame: pd.DataFrame) -> dict[str, int]:
        ok = frame[(frame["type"] == "time") & (frame["status"] == "ok")]
        return {name: len(samples) if isinstance(samples, list) else 0
                for name, samples in zip(ok["entry_name"], ok["samples"])}

    n_before, n_after = counts(before), counts(after)
    return [name for name in n_after if name in n_before
            and not asv_test_can_separate(n_before[name], n_after[name])]


def time_regressions(judged: pd.DataFrame) -> list[str]:
    """asv labels of the time figures a ``judge`` table calls regressions on the figures alone
    (not new failures): the ones a confirmation run measures again."""
    rows = judged[(judged["gate"] == REGRESSION) & (judged["kind"] == "time")
                  & (judged["status_after"] == "ok")]
    return list(dict.fromkeys(rows["entry_name"]))


def merge_confirmation(first: pd.DataFrame, again: pd.DataFrame,
                       entry_names: Iterable[str]) -> pd.DataFrame:
    """The verdicts after a confirmation run: ``again`` (``judge`` on the results after the
    re-run), where each of ``entry_names`` (time regressions of ``first``, re-measured) stays a
    regression only if ``again`` finds it again.

    Why: the samples of one asv round come from one process and move together; on a shared
    machine one slow process made unchanged benchmarks "significantly" slower (2 to 8 of the
    47 time_matvec combinations of identical code, never the same ones twice), while a
    real 2x slowdown was flagged every time.
    """
    names = set(entry_names)
    key = ["entry_name", "machine", "env_name"]
    first_ratio = first.set_index(key)["ratio_text"]
    merged = again.copy()
    for index, row in merged.iterrows():
        if row["entry_name"] not in names:
            continue
        before = first_ratio.get(tuple(row[k] for k in key), "n/a")
        if row["gate"] == REGRESSION:
            merged.at[index, "reason"] = f"{row['reason']}; {before}x in the earlier run too"
        elif row["gate"] == OK:
            merged.at[index, "reason"] = (f"not confirmed: {before}x in the earlier run, "
                                          f"{row['ratio_text']}x measured again")
    return merged


def regressed(judged: pd.DataFrame) -> bool:
    """True when any row of a ``judge`` table is a regression (the gate fails)."""
    return bool((judged["gate"] == REGRESSION).any())


def summary(judged: pd.DataFrame, factor: float, memory_factor: float,
            memory_floor: float = DEFAULT_MEMORY_FLOOR) -> str:
    """One line: the verdict, the counts behind it and the factors used."""
    gates = judged["gate"]
    judged_rows = judged[gates != NOT_JUDGED]
    regressions = judged[gates == REGRESSION]
    new_failures = regressions["reason"].str.startswith("new failure").sum()
    by_kind = regressions[~regressions["reason"].str.startswith("new failure")]["kind"]
    parts = [f"{(by_kind == 'time').sum()} time", f"{(by_kind == 'memory').sum()} memory",
             f"{new_failures} new failure{'s' if new_failures != 1 else ''}"]
    not_judged = int((gates == NOT_JUDGED).sum())
    tail = (f"; {not_judged} not judged" if not_judged else "")
    factors = (f"(time factor {factor:g}, memory factor {memory_factor:g}, memory floor "
               f"{binary_bytes(memory_floor)})")
    if len(regressions):
        return (f"gate: FAIL: {len(regressions)} regression{'s' if len(regressions) != 1 else ''}"
                f" ({', '.join(parts)}) of {len(judged_rows)} judged{tail} {factors}")
    return f"gate: PASS: no regression in {len(judged_rows)} judged{tail} {factors}"


TABLE_HEADERS = ("Change", "Before", "After", "Ratio", "Difference", "Gate", "Why",
                 "Benchmark (Parameter)")


def table_rows(judged: pd.DataFrame, show_env: bool | None = None) -> tuple[list[str],
                                                                             list[list[str]]]:
    """Headers and rows for ``harness.reporting.report.markdown_table`` / ``text_table``: asv's change
    mark, both values in human units (asv's formatter), ratio, difference, gate and reason."""
    if show_env is None:
        show_env = judged[["machine", "env_name"]].drop_duplicates().shape[0] > 1
    commits = [judged[c].dropna() for c in ("commit_before", "commit_after")]
    headers = list(TABLE_HEADERS)
    for position, side in ((1, commits[0]), (2, commits[1])):
        if len(side):
            headers[position] += f" [{side.iloc[0][:8]}]"
    rows = []
    for (_, row), cells in zip(judged.iterrows(), compare_rows(judged, show_env)):
        mark, before, after, ratio, difference, _verdict, name = cells
        # asv's marks assume lower is better; for a unit not judged ("GB/s") '-' would read
        # as an improvement where throughput fell, so such rows show no mark.
        if row["gate"] == NOT_JUDGED and mark in ("+", "-"):
            mark = " "
        rows.append([mark, before, after, ratio, difference, row["gate"], row["reason"], name])
    return headers, rows
