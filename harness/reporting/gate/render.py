"""The gate's verdicts as text: one summary line, and the rows of its table (asv compare's
columns with the gate's verdict and reason in place of compare's verdict)."""

from __future__ import annotations

import pandas as pd

from harness.reporting.compare import compare_headers, compare_rows, several_environments
from harness.reporting.gate.judge import DEFAULT_MEMORY_FLOOR, NOT_JUDGED, REGRESSION
from harness.units import binary_bytes

GATE_COLUMNS = ("Gate", "Why")  # in place of compare's "Verdict"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def summary(judged: pd.DataFrame, factor: float, memory_factor: float,
            memory_floor: float = DEFAULT_MEMORY_FLOOR) -> str:
    """One line: the verdict, the counts behind it and the factors used."""
    gates = judged["gate"]
    judged_rows = judged[gates != NOT_JUDGED]
    regressions = judged[gates == REGRESSION]
    is_new_failure = regressions["reason"].str.startswith("new failure")
    by_kind = regressions[~is_new_failure]["kind"]
    parts = [f"{(by_kind == 'time').sum()} time", f"{(by_kind == 'memory').sum()} memory",
             _plural(int(is_new_failure.sum()), "new failure")]
    not_judged = int((gates == NOT_JUDGED).sum())
    tail = (f"; {not_judged} not judged" if not_judged else "")
    factors = (f"(time factor {factor:g}, memory factor {memory_factor:g}, memory floor "
               f"{binary_bytes(memory_floor)})")
    if len(regressions):
        return (f"gate: FAIL: {_plural(len(regressions), 'regression')} ({', '.join(parts)}) "
                f"of {len(judged_rows)} judged{tail} {factors}")
    return f"gate: PASS: no regression in {len(judged_rows)} judged{tail} {factors}"


def table_rows(judged: pd.DataFrame, show_env: bool | None = None) -> tuple[list[str],
                                                                             list[list[str]]]:
    """Headers and rows for ``harness.reporting.report.format_table``: asv's change mark, both
    values in human units (asv's formatter), ratio, difference, gate and reason. The Before and
    After headers carry the commits (``Before [abcdef12]``); ``show_env`` (default: when the
    table holds several) adds [machine/env] to each benchmark."""
    if show_env is None:
        show_env = several_environments(judged)
    commits = [judged[c].dropna() for c in ("commit_before", "commit_after")]
    before, after = (f"{label} [{side.iloc[0][:8]}]" if len(side) else label
                     for label, side in zip(("Before", "After"), commits))
    headers = compare_headers(before, after, verdict=GATE_COLUMNS)
    rows = []
    for (_, row), cells in zip(judged.iterrows(), compare_rows(judged, show_env)):
        mark, before_text, after_text, ratio, difference, _verdict, name = cells
        # asv's marks assume lower is better; for a unit not judged ("GB/s") '-' would read
        # as an improvement where throughput fell, so such rows show no mark.
        if row["gate"] == NOT_JUDGED and mark in ("+", "-"):
            mark = " "
        rows.append([mark, before_text, after_text, ratio, difference, row["gate"],
                     row["reason"], name])
    return headers, rows
