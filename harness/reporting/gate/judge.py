"""The gate's verdicts: HEAD judged against BASE, figure by figure.

``judge`` runs ``harness.reporting.compare.compare`` (asv compare's statistics) with one factor
for time figures and another for memory figures; a benchmark that fails on HEAD but did not on
BASE is a regression too. Figures in other units (GB/s, counts) are shown, not judged. The rest
serves the re-measuring around it: which stored results have too few samples for asv's test
(``too_few_samples``), which regressions a confirmation run measures again
(``time_regressions``) and how its verdicts merge with the first ones (``merge_confirmation``).

Units: time figures are seconds, memory figures bytes (as asv records them); factors are ratios
HEAD / BASE (1.1 = 10% worse is the smallest change that counts, asv's default).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from asv_bench_harness.figures import COLD_TIME, READ_CALLS, STORAGE_READ

from harness.reporting.compare import KEY, compare
from harness.units import MiB, binary_bytes

TIME_UNITS = frozenset({"seconds"})
# Types whose results hold timing samples: asv's time_ and the meter plugin's coldtime_.
SAMPLED_TYPES = frozenset({"time", COLD_TIME.type})
# Figures in bytes that count bytes read, not memory (judged alike, named apart).
READ_TYPES = frozenset({STORAGE_READ.type, READ_CALLS.type})
MEMORY_UNITS = frozenset({"bytes"})
# Memory changes up to this many bytes are noise, whatever their ratio: page-granular figures
# of identical code moved by one to sixteen 4 KiB pages between runs here (a +4.1k on a 9.9M
# peak is nothing, a +65.5k on a 100k anon increment is "1.6x").
DEFAULT_MEMORY_FLOOR = MiB

# judge()'s "gate" column.
REGRESSION, OK, NOT_JUDGED = "regression", "ok", "not judged"
# The verdict on the whole table (``verdict``).
PASS, FAIL, CANNOT_JUDGE = "pass", "fail", "cannot judge"


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
    """``harness.reporting.compare.compare`` of BASE (``before``) and HEAD (``after``) with the
    gate's verdict per row.

    Time figures (unit seconds: ``time_`` benchmarks, ``track_`` ones with unit seconds) are
    judged with ``factor``, memory figures (unit bytes: ``peakmem_``, ``mem_``, ``track_`` ones
    with unit bytes, the meter plugin's ``peakincrement_``, ``anonincrement_``...) with
    ``memory_factor``; each is the smallest ratio HEAD / BASE that counts,
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
    if row.kind == "time":
        worse, better = "slower", "faster"
    elif row.type in READ_TYPES:
        worse, better = "more bytes read", "fewer bytes read"
    else:
        worse, better = "more memory", "less memory"
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
    """asv labels of the time benchmarks (``time_``, and the meter plugin's ``coldtime_``)
    with results on both sides whose recorded samples are too few for asv's test
    (``asv_test_can_separate``): results of a run without --record-samples have none, an
    interrupted interleaved run has one round's worth."""
    def counts(frame: pd.DataFrame) -> dict[str, int]:
        ok = frame[frame["type"].isin(SAMPLED_TYPES) & (frame["status"] == "ok")]
        return {name: len(samples) if isinstance(samples, (list, np.ndarray)) else 0
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
    first_ratio = first.set_index(KEY)["ratio_text"]
    merged = again.copy()
    for index, row in merged.iterrows():
        if row["entry_name"] not in names:
            continue
        before = first_ratio.get(tuple(row[k] for k in KEY), "n/a")
        if row["gate"] == REGRESSION:
            merged.at[index, "reason"] = f"{row['reason']}; {before}x in the earlier run too"
        elif row["gate"] == OK:
            merged.at[index, "reason"] = (f"not confirmed: {before}x in the earlier run, "
                                          f"{row['ratio_text']}x measured again")
    return merged


def regressed(judged: pd.DataFrame) -> bool:
    """True when any row of a ``judge`` table is a regression (the gate fails)."""
    return bool((judged["gate"] == REGRESSION).any())


def verdict(judged: pd.DataFrame) -> str:
    """The verdict on a whole ``judge`` table: FAIL when any row is a regression, CANNOT_JUDGE
    when no row could be judged (no time or memory figure with results on both sides), else
    PASS."""
    if regressed(judged):
        return FAIL
    if not (judged["gate"] != NOT_JUDGED).any():
        return CANNOT_JUDGE
    return PASS
