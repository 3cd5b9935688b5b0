"""GB/s against matrix size, from a few MB to past RAM: where the page cache stops helping
(what ``python -m harness sweep`` prints).

:func:`sweep` measures the same strategies on matrices of growing size: ``rows`` fixed, the
columns grown until the matrix holds the size asked (:func:`shape_for`). Each size is one
``compare.compare`` (every strategy in a fresh process, warm and cold), and every record of
every size is put against one roofline, probed once before the first size, so a change
between sizes is the matrix's and not the probe's. A warm pass of a file the page cache
could not hold is labelled "2nd pass" (``compare.uncached_warm``), never "warm", and put
against the disk roof::

    from harness.measuring.runs.sweep import sweep
    from harness.units import MB

    result = sweep([4 * MB, 400 * MB], names=["dense", "memmap-blocked"])
    print(result.table())          # or result.records, one dict per (size, strategy, cache)

Everything is refused before anything is written: a size too small for one column of
``rows``, and a sweep whose files do not fit on the free disk of the data directory (the files
of every size stay there, sealed, for the next run). A strategy that does not fit at one size
(RAM, time) is skipped at that size, with the reason ("does not fit in RAM" for the in-RAM
products past the RAM available now).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from harness import units
from harness.measuring import fit, strategies
from harness.measuring.matrix.spec import DTYPES, Problem
from harness.measuring.meters.machine import DISK_PROBE_BYTES
from harness.measuring.runs import compare as comparing
from harness.measuring.runs.plan import plan_for
from harness.measuring.runs.sources import Generated
from harness.measuring.storage import datasets

#: ``--sizes`` by default: 4 MB (in the CPU's caches or near them) to 4 GB.
DEFAULT_SIZES = (4 * units.MB, 40 * units.MB, 400 * units.MB, 4 * units.GB)
DEFAULT_ROWS = 1000
#: The in-RAM product and the out-of-core routes that read a raw file or HDF5 without a
#: cluster. Not ``memmap`` (``mm @ x``): past RAM one pass takes over 10 minutes cold.
DEFAULT_STRATEGIES = ("dense", "memmap-blocked", "hdf5-read", "hdf5-blocked")
#: What the table says of a strategy skipped because its pass would not fit in RAM.
NOT_IN_RAM = "does not fit in RAM"


def parse_sizes(text: str) -> list[int]:
    """'4MB,40MB,4GB' -> [4000000, 40000000, 4000000000] (bytes, units as ``units.parse_bytes``
    reads them); a ValueError naming the size that is wrong and the form to use."""
    sizes = []
    for part in str(text).split(","):
        try:
            size = units.parse_bytes(part)
        except ValueError:
            raise ValueError(f"--sizes: {part.strip()!r} is not a size in bytes; write "
                             "comma-separated sizes such as 4MB,40MB,400MB,4GB") from None
        if size < 1:
            raise ValueError(f"--sizes: {part.strip()!r} is an empty matrix; give sizes of at "
                             "least one column, such as 4MB")
        sizes.append(size)
    return sizes


def shape_for(size_bytes: int, rows: int = DEFAULT_ROWS, dtype: str = "float32"
              ) -> tuple[int, int]:
    """The (rows, columns) of a matrix of ``size_bytes`` bytes: ``rows`` rows and as many
    columns as hold the size, rounded up (so the matrix is never smaller than asked). A
    ValueError when the size is not even one column of ``rows``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if int(rows) < 1:
        raise ValueError(f"--rows must be at least 1, got {rows}")
    column_bytes = int(rows) * np.dtype(dtype).itemsize
    if int(size_bytes) < column_bytes:
        raise ValueError(f"--sizes: {units.human_bytes(size_bytes)} is less than one column of "
                         f"{rows} {dtype} rows ({units.human_bytes(column_bytes)}); give sizes "
                         f"of at least {column_bytes} bytes, or fewer --rows")
    return int(rows), math.ceil(int(size_bytes) / column_bytes)


@dataclasses.dataclass(frozen=True)
class SizePlan:
    """One size of a sweep: the size asked (bytes), its matrix, the strategies that run on it
    (plan order) and those skipped, (strategy, why)."""

    size_asked_bytes: int
    problem: Problem
    names: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]

    @property
    def size_bytes(self) -> int:
        """The matrix's bytes, rows x columns x itemsize (at least the size asked)."""
        rows, cols = self.problem.shape
        return rows * cols * np.dtype(self.problem.dtype).itemsize


def plan_sweep(sizes: Iterable[int], rows: int = DEFAULT_ROWS, dtype: str = "float32",
               names: Iterable[str] | None = None, *, options: dict | None = None,
               repeat: int = 3, timeout_seconds: float = 600.0, root=None,
               available_ram_bytes: int | None = None) -> list[SizePlan]:
    """What runs at each size, smallest first (each size once): the strategies ``names``
    (default ``DEFAULT_STRATEGIES``) that fit this machine at that size (``plan.plan_for``:
    RAM available now, or ``available_ram_bytes``, and the timeout; files already in the data
    directory ``root`` are asked too), the rest skipped with the reason. A ValueError for a
    bad size or a strategy that runs at no size; a KeyError for an unknown name. Writes
    nothing."""
    names = list(dict.fromkeys(n.strip() for n in (names or DEFAULT_STRATEGIES) if n.strip()))
    if not names:
        raise ValueError("--strategies names none; give comma-separated names, e.g. "
                         + ",".join(DEFAULT_STRATEGIES))
    for name in names:
        strategies.get(name)  # an unknown name: KeyError listing the known ones
    sizes = sorted(dict.fromkeys(int(s) for s in sizes))
    if not sizes:
        raise ValueError("--sizes names none; give comma-separated sizes such as 4MB,40MB")
    if available_ram_bytes is None:
        available_ram_bytes = fit.available_ram_bytes()
    plans = []
    for size in sizes:
        problem = Problem(shape_for(size, rows, dtype), dtype)
        if any(plan.problem == problem for plan in plans):
            continue  # two sizes within one column of each other: one matrix
        source = Generated.of(problem, root)
        refusals = {name: _refusal(source, name, options or {}, available_ram_bytes, repeat,
                                   timeout_seconds) for name in names}
        plans.append(SizePlan(size, problem,
                              tuple(name for name in names if refusals[name] is None),
                              tuple((name, why) for name, why in refusals.items() if why)))
    for name in names:
        if not any(name in plan.names for plan in plans):
            raise ValueError(f"strategy {name!r} runs at none of these sizes: "
                             f"{dict(plans[0].skipped)[name]}")
    return plans


def _refusal(source: Generated, name: str, options: dict, available_ram_bytes: int,
             repeat: int, timeout_seconds: float) -> str | None:
    """Why strategy ``name`` does not run on ``source`` here (the one fit policy, through
    ``plan_for``), or None; a pass too large for RAM says so first."""
    try:
        plan_for(source, [name], options=options, available_ram_bytes=available_ram_bytes,
                 repeat=repeat, timeout_seconds=timeout_seconds)
    except ValueError as exc:
        strategy = strategies.get(name)
        try:
            stores = source.stores_for(strategy)
        except strategies.CannotRead:
            stores = []
        ram = [fit.ram_refusal(strategy.needed_ram_bytes(store.spec, **options),
                               available_ram_bytes) for store in stores]
        if ram and all(ram):
            return f"{NOT_IN_RAM} ({ram[0]})"
        return str(exc.args[0] if exc.args else exc)
    return None


def check_sweep_disk(plans: list[SizePlan], root, *, options: dict | None = None,
                     repeat: int = 3, timeout_seconds: float = 600.0,
                     free_disk_bytes: int | None = None) -> None:
    """Refuse (ValueError with the sizes) a sweep whose missing data files, every size's, and
    the roofline's scratch file do not fit on the disk of the data directory ``root``; before
    anything is written. The files of every size stay in the data directory for the next run,
    so they add up."""
    root = Path(root)
    missing = 0
    for plan in plans:
        if not plan.names:
            continue
        source = Generated.of(plan.problem, root)
        chosen = plan_for(source, plan.names, options=options, repeat=repeat,
                          timeout_seconds=timeout_seconds)
        stores = list({run.store.location.path: run.store for run in chosen.runs}.values())
        missing += source.missing_bytes(stores)
    needed = fit.with_disk_margin(missing + DISK_PROBE_BYTES)
    free = fit.free_disk_bytes(root) if free_disk_bytes is None else free_disk_bytes
    if needed > free:
        raise ValueError(f"the sweep's data files take about {units.human_bytes(needed)} (every "
                         f"size's files, the roofline probe's and 10% margin) and {root} has "
                         f"{units.human_bytes(free)} free; drop the largest --sizes, choose fewer "
                         "--strategies, or give a --data-dir on a larger disk")


def cache_label(record: dict) -> str:
    """"warm", "cold", or "2nd pass" for a warm record of a file the page cache did not hold
    (``compare.uncached_warm``): a matrix that cannot be cached is never called warm."""
    return comparing.SECOND_PASS if comparing.uncached_warm(record) else record["cache"]


@dataclasses.dataclass
class Sweep:
    """What :func:`sweep` measured.

    ``records``: one dict per (size, strategy, cache state), by size then as ``compare``
    orders them: a ``compare`` record (``gbps``: matrix bytes per second of the median pass,
    GB/s; ``roofline_fraction`` and ``roofline_bound`` against ``roofline``) plus
    ``size_bytes`` (the matrix's bytes), ``size_asked_bytes`` and ``cache_label``.
    ``skipped``: (size in bytes, strategy, why); ``failures``: (size in bytes, strategy, cache
    state, message); ``roofline``: ``machine.Roofline``, probed once; ``ram_bytes``: this
    machine's total RAM.
    """

    records: list[dict]
    skipped: list[tuple[int, str, str]]
    failures: list[tuple[int, str, str, str]]
    roofline: object
    ram_bytes: int

    def table(self) -> str:
        """One aligned line per record, then the roofs, what the labels mean, the skips and
        the failures, one line each."""
        return format_sweep(self)

    def to_dict(self) -> dict:
        """JSON-safe: ``records``, ``skipped``, ``failures``, ``roofline``, ``ram_bytes``."""
        return {"records": self.records,
                "skipped": [{"size_bytes": size, "strategy": name, "reason": why}
                            for size, name, why in self.skipped],
                "failures": [{"size_bytes": size, "strategy": name, "cache": state,
                              "message": message}
                             for size, name, state, message in self.failures],
                "roofline": self.roofline.to_dict() if self.roofline is not None else None,
                "ram_bytes": self.ram_bytes}


def sweep(
    sizes: Iterable[int],
    rows: int = DEFAULT_ROWS,
    dtype: str = "float32",
    names: Iterable[str] | None = None,
    cache: str = "both",
    repeat: int = 3,
    rounds: int = 1,
    root=None,
    progress: Callable[[str], None] | None = None,
    timeout_seconds: float = 600.0,
    **options,
) -> Sweep:
    """Measure the strategies ``names`` (default ``DEFAULT_STRATEGIES``; ``dense``, the
    reference, runs wherever it fits, as in ``compare``) on a matrix of each size in
    ``sizes`` (bytes; ``rows`` x as many columns as hold it, ``dtype``), in the data directory
    ``root`` (default ``datasets.default_root()``).

    ``cache``, ``repeat``, ``rounds``, ``timeout_seconds`` and ``options`` (strategy options)
    are ``compare``'s, for every size. ``progress`` is called with a line before each step.
    The roofline is probed once, before the first size. Bad arguments, and files that would
    not fit on the disk, raise ValueError before anything is written. A size whose planning
    fails when its turn comes (the RAM or the disk changed since) is skipped with the reason.
    """
    options = comparing.check_run_arguments(cache, rounds, repeat, timeout_seconds, options)
    root = Path(root) if root is not None else datasets.default_root()
    plans = plan_sweep(sizes, rows, dtype, names, options=options, repeat=repeat,
                       timeout_seconds=timeout_seconds, root=root)
    check_sweep_disk(plans, root, options=options, repeat=repeat, timeout_seconds=timeout_seconds)

    def say(line: str) -> None:
        if progress is not None:
            progress(line)

    say("probing the roofline (memory and cold-disk read bandwidth, a few seconds)...")
    roofline = comparing.measure_roofline(root)
    records: list[dict] = []
    skipped = [(plan.size_bytes, name, why) for plan in plans for name, why in plan.skipped]
    failures: list[tuple[int, str, str, str]] = []
    for plan in plans:
        if not plan.names:
            continue
        size = units.human_bytes(plan.size_bytes)
        shape = "x".join(map(str, plan.problem.shape))
        say(f"size {size} ({shape} {dtype}): {', '.join(plan.names)}; writing any missing "
            "file first")
        try:
            comparison = comparing.compare(
                plan.problem, plan.names, cache=cache, repeat=repeat, rounds=rounds, root=root,
                roofline=False, timeout_seconds=timeout_seconds,
                progress=(lambda line, size=size: say(f"[{size}] {line}")), **options)
        except ValueError as exc:
            skipped += [(plan.size_bytes, name, str(exc)) for name in plan.names]
            continue
        for record in comparison.records:
            record["size_bytes"] = plan.size_bytes
            record["size_asked_bytes"] = plan.size_asked_bytes
            record["cache_label"] = cache_label(record)
        # Against the sweep's one roofline (compare ran without probing its own).
        comparing.add_derived_columns(comparison.records, roofline)
        records += comparison.records
        known = {name for size_bytes, name, _ in skipped if size_bytes == plan.size_bytes}
        skipped += [(plan.size_bytes, name, why) for name, why in comparison.skipped
                    if name not in known]
        failures += [(plan.size_bytes, name, state, message)
                     for name, state, message in comparison.failures]
    return Sweep(records, skipped, failures, roofline, _total_ram_bytes())


def _total_ram_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def _roof_cells(record: dict) -> tuple[str, str]:
    """(% of the roof, which roof) of a record: 'in cache' when no roof applies."""
    if record.get("roofline_bound") == "cache":
        return comparing.IN_CACHE, "-"
    fraction = record.get("roofline_fraction")
    if fraction is None:
        return "-", "-"
    mark = comparing.PROBE_BEATEN_MARK if fraction > 1 else ""
    return f"{100 * fraction:.1f}{mark}", record["roofline_bound"]


#: Columns of the sweep's table: header, cell of a record, left-aligned.
_COLUMNS: tuple[tuple[str, Callable[[dict], str], bool], ...] = (
    ("size", lambda r: units.human_bytes(r["size_bytes"]), False),
    ("shape", lambda r: "x".join(map(str, r["spec"]["shape"])), True),
    ("strategy", lambda r: r["strategy"], True),
    ("cache", lambda r: r["cache_label"], True),
    ("median", lambda r: units.human_seconds(r["seconds"]), False),
    ("GB/s", lambda r: units.gbps_number(r["gbps"]), False),
    ("roof %", lambda r: _roof_cells(r)[0], False),
    ("roof", lambda r: _roof_cells(r)[1], True),
)


def format_sweep(result: Sweep) -> str:
    """The sweep as an aligned text table, then the roofs and the notes, one line each."""
    cells = [[header for header, _, _ in _COLUMNS]]
    cells += [[cell(r) for _, cell, _ in _COLUMNS] for r in result.records]
    widths = [max(len(row[i]) for row in cells) for i in range(len(_COLUMNS))]

    def line(row: list[str]) -> str:
        return " ".join(text.ljust(width) if left else text.rjust(width)
                        for text, width, (_, _, left) in zip(row, widths, _COLUMNS)).rstrip()

    lines = [line(cells[0]), "-" * len(line(cells[0])), *(line(row) for row in cells[1:])]
    if result.roofline is not None:
        lines.append(f"roofs, probed once before the first size: memory "
                     f"{units.human_gbps(result.roofline.memory_read_gbps)}, disk (cold) "
                     f"{units.human_gbps(result.roofline.disk_read_gbps)}; this machine's RAM: "
                     f"{units.human_bytes(result.ram_bytes)}; a 'cold' read on a virtual disk "
                     "may still hit the host's cache")
    lines.append("roof %: GB/s against the memory roof when warm and for dense (its matrix is "
                 "in RAM), against the disk roof when cold or a 2nd pass; in cache: the pass "
                 "read no more than the CPU's last-level cache holds, no roof applies")
    beaten = sorted({r["strategy"] for r in result.records
                     if (r.get("roofline_fraction") or 0) > 1})
    if beaten:
        lines.append(f"{comparing.PROBE_BEATEN_MARK} above 100 %: {', '.join(beaten)} beat the "
                     "probe measured as the ceiling, so the probe is not a true ceiling here (a "
                     "matrix partly in the CPU's caches, the host's cache, or a read pattern "
                     "faster than the probe's)")
    uncached = [r for r in result.records if r["cache_label"] == comparing.SECOND_PASS]
    if uncached:
        most = max(r["resident_fraction_before"] for r in uncached)
        lines.append(f"{comparing.SECOND_PASS}: warm was asked, but no more than {100 * most:.0f} "
                     "% of the file was in the page cache before a pass (the matrix does not "
                     "fit it): a second pass from disk, not a cached one")
    lines += [f"{units.human_bytes(size)}: skipped {name}: {why}"
              for size, name, why in result.skipped]
    lines += [f"{units.human_bytes(size)}: FAILED {name} ({state}): {message}"
              for size, name, state, message in result.failures]
    return "\n".join(lines)
