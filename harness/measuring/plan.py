"""Every strategy on one matrix, side by side (what ``python -m harness measure`` prints).

:func:`plan_for` says which strategy multiplies which dataset (each reads the matrix from a
storage of its own; ``dense`` is always added, as the reference) and which strategies cannot,
and why. :func:`compare_strategies` runs that plan, each (strategy, cache state) in a fresh
process (``measure.measure_in_subprocess``), pools interleaved rounds, and puts every record
against the ``dense`` strategy of the same run (``ratio_to_dense``) and against this machine's
roofline, measured in the same run (``roofline_fraction``: memory read bandwidth when warm, cold
disk read bandwidth when cold)::

    from harness.measuring import plan
    from harness.measuring.datasets import Problem

    comparison = plan.compare_strategies(Problem((1000, 100000)), cache="both")
    print(comparison.table())          # or comparison.records, one dict per figure set
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from harness import units
from harness.measuring import datasets, strategies
from harness.measuring.measure import (
    CACHE_STATES,
    MeasurementError,
    combine,
    measure_in_subprocess,
)
from harness.measuring.profiles import RAM_FRACTION
from harness.measuring.strategies.base import resolve_options

#: The strategy every ratio is taken against: the whole matrix in RAM.
REFERENCE_STRATEGY = "dense"
#: ``cache`` of :func:`compare_strategies`: one state, or both ("warm" first).
CACHE_CHOICES = (*CACHE_STATES, "both")


@dataclasses.dataclass(frozen=True)
class Plan:
    """``runs``: (strategy, the dataset it multiplies), the reference first; ``skipped``:
    (strategy, why it cannot multiply this matrix)."""

    runs: tuple[tuple[str, datasets.DatasetSpec], ...]
    skipped: tuple[tuple[str, str], ...]


def _as_problem(matrix: datasets.Problem | datasets.DatasetSpec) -> datasets.Problem:
    # A DatasetSpec stands for its matrix and HDF5 layout; each strategy picks its storage.
    return matrix.problem if isinstance(matrix, datasets.DatasetSpec) else matrix


def plan_for(matrix: datasets.Problem | datasets.DatasetSpec,
             names: Iterable[str] | None = None, *, options: dict | None = None,
             available_ram_bytes: int | None = None) -> Plan:
    """Which strategies run on ``matrix``, each on which dataset.

    ``names``: the strategies to compare (default: every one that can read the matrix); the
    reference is added when it fits in RAM, and left out with the reason when it does not
    (the ratios to it are then absent). A strategy whose pass needs more than ``RAM_FRACTION``
    of the available RAM (``available_ram_bytes``, default: psutil's figure) is left out the
    same way. A named strategy that cannot read the matrix or does not fit is a ValueError
    (with the sizes), an unknown name a KeyError. ``options``: strategy options (block rows,
    memory budget), which change what a pass needs.
    """
    problem = _as_problem(matrix)
    options = options or {}
    if available_ram_bytes is None:
        import psutil

        available_ram_bytes = psutil.virtual_memory().available
    requested = [name.strip() for name in names] if names else []
    runs, skipped = [], []
    for name in dict.fromkeys([REFERENCE_STRATEGY, *(requested or strategies.names())]):
        try:
            strategy = strategies.get(name)
            spec = strategy.dataset_for(problem)
            reason = _ram_refusal(strategy.needed_ram_bytes(spec, **options),
                                  available_ram_bytes)
        except strategies.CannotRead as exc:
            reason = exc.reason
        if reason is None:
            runs.append((name, spec))
            continue
        if name in requested:
            raise ValueError(f"strategy {name!r} cannot run on this matrix: {reason}") from None
        if name == REFERENCE_STRATEGY:
            reason += "; the ratios to it ('x dense') are left out"
        skipped.append((name, reason))
    return Plan(tuple(runs), tuple(skipped))


def _ram_refusal(needed: int, available: int) -> str | None:
    if needed <= RAM_FRACTION * available:
        return None
    return (f"a pass needs about {units.human_bytes(needed)} of RAM, more than "
            f"{RAM_FRACTION:.0%} of the {units.human_bytes(available)} available")


def check_disk(plan: Plan, root, free_disk_bytes: int | None = None) -> None:
    """Refuse (ValueError with the sizes) a plan whose missing data files do not fit on the
    disk of ``root``, before any of them is written."""
    missing = {datasets.dataset_path(spec, root): spec for _, spec in plan.runs}
    missing = {path: spec for path, spec in missing.items() if not path.exists()}
    needed = int(sum(datasets.expected_file_bytes(spec) for spec in missing.values()) * 1.1)
    if not needed:
        return
    if free_disk_bytes is None:
        probe = Path(root)
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free_disk_bytes = shutil.disk_usage(probe).free
    if needed > free_disk_bytes:
        raise ValueError(f"the {len(missing)} data file(s) this plan needs take about "
                         f"{units.human_bytes(needed)} (with 10% margin), and {root} has "
                         f"{units.human_bytes(free_disk_bytes)} free; choose fewer strategies, a "
                         "smaller shape, or set HARNESS_DATA_DIR to a larger disk")


@dataclasses.dataclass
class Comparison:
    """What :func:`compare_strategies` measured.

    ``records``: one dict per (strategy, cache state), cache state first then plan order:
    ``Measurement.to_record()`` plus ``ratio_to_dense``, ``roofline_gbps`` and
    ``roofline_fraction``. ``skipped``: (strategy, why); ``failures``: (strategy, cache state,
    message); ``roofline``: ``harness.measuring.machine.Roofline`` or None.
    """

    records: list[dict]
    skipped: list[tuple[str, str]]
    failures: list[tuple[str, str, str]]
    roofline: object | None = None

    def table(self) -> str:
        """The records as an aligned text table, then the roofline, skips and failures."""
        return format_table(self.records, self.roofline, self.skipped, self.failures)


def compare_strategies(
    matrix: datasets.Problem | datasets.DatasetSpec,
    names: Iterable[str] | None = None,
    *,
    cache: str = "warm",
    repeat: int = 5,
    rounds: int = 1,
    root=None,
    check: bool = True,
    roofline: bool = True,
    timeout_seconds: float = 600.0,
    progress: Callable[[str], None] | None = None,
    **options,
) -> Comparison:
    """Measure every strategy of :func:`plan_for` on ``matrix``, side by side.

    ``cache``: "warm", "cold" or "both"; ``repeat`` timed passes per measurement; ``rounds``:
    every strategy that many times, interleaved, each in a fresh process, passes pooled
    (evens out load that comes and goes). ``root``: the data directory (default
    ``datasets.default_root()``). ``check``: compare every result with a float64 reference.
    ``roofline``: probe this machine's bandwidths first (a few seconds). ``timeout_seconds``
    per measuring process. ``progress`` is called with a line before each measurement.
    ``options``: strategy options (``block_rows``, ``memory_budget``, ``chunk_cache_bytes``).

    Bad arguments raise before any file is written; every dataset is written before the
    first measurement (never inside a timed process). A failed measurement is listed in
    ``failures`` and that strategy is not run again in that cache state.
    """
    if cache not in CACHE_CHOICES:
        raise ValueError(f"cache must be one of {CACHE_CHOICES}, got {cache!r}")
    if int(rounds) < 1 or int(repeat) < 1:
        raise ValueError(f"rounds and repeat must be >= 1, got {rounds} and {repeat}")
    if not timeout_seconds > 0:
        raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
    options = {k: v for k, v in options.items() if v is not None}
    resolve_options(options)
    chosen = plan_for(matrix, names, options=options)
    root = root if root is not None else datasets.default_root()
    check_disk(chosen, root)
    for _, spec in chosen.runs:
        datasets.materialize(spec, root, verify_checksum=True)
    ceiling = None
    if roofline:
        from harness.measuring import machine

        ceiling = machine.roofline(data_dir=root)
    pooled: dict[tuple[str, str], list] = {}
    failures: list[tuple[str, str, str]] = []
    for state in CACHE_STATES if cache == "both" else (cache,):
        for round_index in range(int(rounds)):
            for name, spec in chosen.runs:
                if any(failure[:2] == (name, state) for failure in failures):
                    continue
                if progress is not None:
                    progress(f"measuring {name} ({state}, round {round_index + 1}/{rounds})...")
                try:
                    measurement = measure_in_subprocess(
                        name, spec, cache=state, repeat=repeat, root=root, check=check,
                        timeout_seconds=timeout_seconds, **options)
                except MeasurementError as exc:
                    failures.append((name, state, str(exc)))
                    continue
                pooled.setdefault((name, state), []).append(measurement)
    records = [combine(measurements).to_record() for measurements in pooled.values()]
    add_derived_columns(records, ceiling)
    return Comparison(records, list(chosen.skipped), failures, ceiling)


def add_derived_columns(records: list[dict], roofline) -> None:
    """``ratio_to_dense`` (same cache state, same run), ``roofline_gbps`` and
    ``roofline_fraction``, in place (None where there is no reference or no roofline)."""
    reference = {r["cache"]: r["seconds"] for r in records if r["strategy"] == REFERENCE_STRATEGY}
    for r in records:
        r["ratio_to_dense"] = r["seconds"] / reference[r["cache"]] if r["cache"] in reference else None
        if roofline is None:
            r["roofline_gbps"] = r["roofline_fraction"] = None
            continue
        # Warm reads come from RAM (or the page cache); cold file reads from the disk. The
        # reference's matrix is in RAM in both states.
        from_disk = r["cache"] == "cold" and r["strategy"] != REFERENCE_STRATEGY
        r["roofline_gbps"] = roofline.disk_read_gbps if from_disk else roofline.memory_read_gbps
        r["roofline_fraction"] = r["gbps"] / r["roofline_gbps"]


def _number(value, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else f"{scale * value:{spec}}"


#: Columns of the table: header, cell of a record, left-aligned.
_COLUMNS: tuple[tuple[str, Callable[[dict], str], bool], ...] = (
    ("strategy", lambda r: r["strategy"], True),
    ("storage", lambda r: r["storage"], True),
    ("cache", lambda r: r["cache"], True),
    ("median", lambda r: units.human_seconds(r["seconds"]), False),
    ("min", lambda r: units.human_seconds(r["seconds_min"]), False),
    ("x dense", lambda r: _number(r["ratio_to_dense"], ".2f"), False),
    ("read rate", lambda r: units.human_gbps(r["gbps"]), False),
    ("roof %", lambda r: _number(r["roofline_fraction"], ".1f", 100), False),
    ("peak incr", lambda r: units.human_bytes(r["increment_bytes"]), False),
    ("anon incr", lambda r: units.human_bytes(r["anon_increment_bytes"]), False),
    ("file incr", lambda r: units.human_bytes(r["file_increment_bytes"]), False),
    ("budget", lambda r: units.human_bytes(r["budget_bytes"]), False),
    ("max |err|", lambda r: _number(r["max_abs_error"], ".2g"), False),
)


def format_table(records: list[dict], roofline, skipped, failures) -> str:
    """Records (with derived columns) as an aligned table, then the roofline, the skipped
    strategies and the failures, one line each."""
    cells = [[header for header, _, _ in _COLUMNS]]
    cells += [[cell(r) for _, cell, _ in _COLUMNS] for r in records]
    widths = [max(len(row[i]) for row in cells) for i in range(len(_COLUMNS))]

    def line(row: list[str]) -> str:
        return " ".join(text.ljust(width) if left else text.rjust(width)
                        for text, width, (_, _, left) in zip(row, widths, _COLUMNS)).rstrip()

    lines = [line(cells[0]), "-" * len(line(cells[0])), *(line(row) for row in cells[1:])]
    if roofline is not None:
        lines.append(f"roofline: memory {units.human_gbps(roofline.memory_read_gbps)}, disk "
                     f"(cold) {units.human_gbps(roofline.disk_read_gbps)}; a 'cold' read on a "
                     "virtual disk may still hit the host's cache")
    lines += [f"skipped {name}: {reason}" for name, reason in skipped]
    lines += [f"FAILED {name} ({cache}): {message}" for name, cache, message in failures]
    return "\n".join(lines)
