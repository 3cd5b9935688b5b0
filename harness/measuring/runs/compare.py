"""Every strategy on one matrix, side by side (what ``python -m harness measure`` prints).

:func:`compare` takes a matrix from any source (``runs.sources``), plans it (``runs.plan``),
writes what it needs, runs each (strategy, store, cache state) in a fresh process
(``runs.child``), pools interleaved rounds, and puts every record against the ``dense``
strategy of the same run (``ratio_to_dense``) and against this machine's roofline, measured in
the same run (``roofline_fraction``: decoded bytes against the memory read bandwidth when warm;
cold, the larger of stored bytes against the disk read bandwidth and decoded bytes against the
memory bandwidth, ``roofline_bound`` saying which)::

    from harness.measuring.matrix.spec import Problem
    from harness.measuring.runs.compare import compare

    comparison = compare(Problem((1000, 100000)), cache="both")
    print(comparison.table())          # or comparison.records, one dict per figure set
    comparison = compare("data.h5:/X")  # a user's file, read in place
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from harness import units
from harness.measuring.meters import cpu_cache, decode_rates, machine
from harness.measuring.runs import child
from harness.measuring.runs.measure import CACHE_STATES, MeasurementError, combine
from harness.measuring.runs.plan import Run, check_disk, plan_for
from harness.measuring.runs.sources import REFERENCE_STRATEGY, as_source
from harness.measuring.storage import datasets
from harness.measuring.strategies import get
from harness.measuring.strategies.base import resolve_options
from harness.measuring.strategies.products import (
    PRODUCT_KINDS,
    check_product,
    product_input,
    product_label,
)

#: ``cache`` of :func:`compare`: one state, or both ("warm" first).
CACHE_CHOICES = (*CACHE_STATES, "both")


@dataclasses.dataclass
class Comparison:
    """What :func:`compare_strategies` measured.

    ``records``: one dict per (strategy, cache state), cache state first then plan order:
    ``Measurement.to_record()`` plus ``ratio_to_dense``, ``roofline_gbps`` and
    ``roofline_fraction``. ``skipped``: (strategy, why); ``failures``: (strategy, cache state,
    message); ``roofline``: ``harness.measuring.meters.machine.Roofline`` or None.
    """

    records: list[dict]
    skipped: list[tuple[str, str]]
    failures: list[tuple[str, str, str]]
    roofline: object | None = None
    #: What the figures stand for beyond the table (a file of other values converted), one
    #: sentence each.
    notes: list[str] = dataclasses.field(default_factory=list)

    def table(self) -> str:
        """The records as an aligned text table, then the roofline, skips, failures, notes."""
        return "\n".join([format_table(self.records, self.roofline, self.skipped, self.failures),
                          *self.notes])


def compare(
    matrix,
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
    also_as: Iterable[str] = (),
    chunks=None,
    compression=None,
    products: Iterable[tuple[str, int]] = (("matvec", 1),),
    as_dtype: str | None = None,
    **options,
) -> Comparison:
    """Measure every strategy of ``plan.plan_for`` on ``matrix``, side by side.

    ``matrix``: a ``Problem`` or ``DatasetSpec`` (generated into the data directory ``root``,
    default ``datasets.default_root()``), a user's ``UserMatrix``, or a path in ``measure
    --file``'s syntax (``"file.h5:/group/dataset"``); ``also_as``: for a user's matrix,
    storages to copy it into first (``chunks`` and ``compression`` for the HDF5 and zarr
    copies). ``cache``: "warm", "cold" or "both"; ``repeat`` timed passes per measurement;
    ``rounds``: every strategy that many times, interleaved, each in a fresh process, passes
    pooled (evens out load that comes and goes). ``check``: compare every result with the
    source's float64 reference. ``roofline``: probe this machine's bandwidths first (a few
    seconds). ``timeout_seconds`` per measuring process. ``progress`` is called with a line
    before each measurement. ``options``: strategy options (``block_rows``, ``memory_budget``,
    ``chunk_cache_bytes``, and a dask cluster's ``scheduler``, ``workers``,
    ``threads_per_worker``, ``worker_memory_limit``). ``products``: the (product, columns)
    pairs every strategy is measured on, side by side (``strategies.PRODUCTS``: ``matvec``,
    ``rmatvec``, ``matmat``, ``rmatmat``; a strategy that lacks one is listed as skipped).

    Bad arguments raise before any file is written; every file is written before the first
    measurement (never inside a timed process). A failed measurement is listed in
    ``failures`` and that run is not repeated in that cache state. Each record's ``storage``
    names the store it read.
    """
    options = check_run_arguments(cache, rounds, repeat, timeout_seconds, options)
    products = list(dict.fromkeys((p, int(k)) for p, k in products))
    for product, columns in products:
        check_product(product, columns)
    source = as_source(matrix, root=root, also_as=tuple(also_as), chunks=chunks,
                       compression=compression, as_dtype=as_dtype)
    chosen = plan_for(source, names, options=options, repeat=repeat,
                      timeout_seconds=timeout_seconds)
    check_disk(chosen, source)  # before anything is written
    for run in chosen.runs:
        source.prepare(run.store, verify_checksum=True)
    ceiling = measure_roofline(root if root is not None else datasets.default_root()) \
        if roofline else None

    with tempfile.TemporaryDirectory(prefix="harness-reference-") as scratch:
        # The reference once per product, before any strategy: a damaged file stops the run
        # here, with its reader's one line, and no child recomputes it.
        reference_paths = {}
        if check and chosen.runs:
            if progress is not None:
                progress("computing the float64 reference...")
            for product, columns in products:
                reference_paths[product, columns] = Path(scratch) / f"{product}-{columns}.npy"
                v = product_input(source.shape, source.dtype, product, columns)
                np.save(reference_paths[product, columns],
                        source.reference(v, PRODUCT_KINDS[product][0]))

        def measurer(run: Run, product: str, columns: int, key: str):
            return lambda state: child.measure(run.strategy, run.store, source, cache=state,
                                               repeat=repeat, check=check,
                                               timeout_seconds=timeout_seconds,
                                               label=f"{key} ({state})",
                                               reference_path=reference_paths.get(
                                                   (product, columns)),
                                               product=product, columns=columns, **options)

        runs, skipped = [], list(chosen.skipped)
        labels = {}
        for run in chosen.runs:
            for product, columns in products:
                if not get(run.strategy).offers(product):
                    skipped.append((run.strategy, f"it does not compute {product}"))
                    continue
                key = run.key if products == [("matvec", 1)] else \
                    f"{run.key} {product_label(product, columns)}"
                labels[key] = run.store.label
                runs.append((key, measurer(run, product, columns, key)))
        labelled, failures = run_interleaved(runs, cache, rounds, progress)
    records = []
    for key, record in labelled:
        record["storage"] = labels[key]
        records.append(record)
    rates = None
    if ceiling is not None:  # probed after every child has finished: it disturbs no timing
        found = {(r.get("spec") or {}).get("compression") for r in records}
        rates = {codec: decode_rates.decode_rate_gbps(codec, source.dtype) for codec in found}
    add_derived_columns(records, ceiling, rates)
    return Comparison(records, list(dict.fromkeys(skipped)), failures, ceiling,
                      layout_notes(source) + past_ram_notes(source, chosen.runs))


def past_ram_notes(source, runs) -> list[str]:
    """Why plain ``mm @ x`` crawls on a matrix larger than RAM, when it was run on one."""
    from harness.measuring.strategies.memmap import cannot_be_cached

    nbytes = math.prod(source.shape) * np.dtype(source.dtype).itemsize
    if not any(run.strategy == "memmap" for run in runs) or not cannot_be_cached(nbytes):
        return []
    return [("memmap (mm @ x) on a matrix larger than RAM: BLAS's threads fault the map in "
            "where their loops go, and the kernel reads a readahead window around each fault; "
            "past RAM those windows are evicted before the product comes back to them. On the "
            "8000 x 1000000 float32 matrix (32 GB, 24 GiB of RAM) the disk read 0.9-2.2 GB/s "
            "while the product mapped 20 MB/s of it, with up to 550,000 pages a second read "
            "again after eviction: a pass would take about 27 minutes. memmap-blocked reads "
            "the same file in order, a block ahead, and drops it behind (10.4 s cold there); "
            "docs/findings-storage.md")]


def layout_notes(source) -> list[str]:
    """Sentences on how a user's file is read when it is not stored as multiplied: other
    values (converted block by block, inside every figure), column-major order."""
    spec = getattr(getattr(source, "user", None), "spec", None)
    if spec is None:
        return []
    notes = []
    if spec.converts:
        stored = spec.file_dtype
        what = f"{stored.name} ({'big' if stored.byteorder == '>' else 'little'}-endian)" \
            if stored.byteorder in "<>" and stored.itemsize > 1 and not stored.isnative \
            else stored.name
        packed = (f", unpacked as stored x {spec.packing[0]:g} + {spec.packing[1]:g} (CF "
                  "scale_factor, add_offset)") if spec.packing else ""
        notes.append(f"your file stores {what} values: every strategy converts each block to "
                     f"{spec.dtype}{packed} as it reads it, and each figure includes that "
                     f"(a copy made with --also-as raw,hdf5 --as-dtype {spec.dtype} shows what "
                     "skipping it buys)")
    if spec.order == "F":
        notes.append("your matrix is stored column-major (a Fortran-order .npy, or MATLAB v7.3, "
                     "which stores the transpose of what MATLAB shows): it is measured as you "
                     "see it, memmap-blocked reads it by column blocks (A @ x as a sum over "
                     "them), and the row readers skip it (--also-as makes a row-major copy)")
    return notes


def check_run_arguments(cache: str, rounds: int, repeat: int, timeout_seconds: float,
                        options: dict) -> dict:
    """Refuse bad arguments of a comparison before anything is written; return the strategy
    options that were given (None values dropped), checked."""
    if cache not in CACHE_CHOICES:
        raise ValueError(f"cache must be one of {CACHE_CHOICES}, got {cache!r}")
    if int(rounds) < 1 or int(repeat) < 1:
        raise ValueError(f"rounds and repeat must be >= 1, got {rounds} and {repeat}")
    if not (math.isfinite(timeout_seconds) and timeout_seconds > 0):
        raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
    options = {k: v for k, v in options.items() if v is not None}
    resolve_options(options)
    return options


def measure_roofline(root):
    """This machine's memory and cold-disk read bandwidths (``machine.Roofline``), probed with a
    scratch file in the data directory ``root``."""
    return machine.roofline(data_dir=root)


def run_interleaved(runs: list[tuple[str, Callable[[str], object]]], cache: str, rounds: int,
                    progress: Callable[[str], None] | None = None
                    ) -> tuple[list[tuple[str, dict]], list[tuple[str, str, str]]]:
    """Run every ``(label, measure)`` of ``runs`` (``measure(cache_state)`` returns a
    ``Measurement``) ``rounds`` times, interleaved, in each cache state of ``cache``; pool each
    run's passes. Returns ``[(label, record)]`` (cache state first, then run order) and the
    failures ``[(label, cache state, message)]``; a run that failed is not run again in that
    state."""
    pooled: dict[tuple[str, str], list] = {}
    failures: list[tuple[str, str, str]] = []
    for state in CACHE_STATES if cache == "both" else (cache,):
        for round_index in range(int(rounds)):
            for label, measure in runs:
                if any(failure[:2] == (label, state) for failure in failures):
                    continue
                if progress is not None:
                    progress(f"measuring {label} ({state}, round {round_index + 1}/{rounds})...")
                try:
                    measurement = measure(state)
                except MeasurementError as exc:
                    failures.append((label, state, str(exc)))
                    continue
                pooled.setdefault((label, state), []).append(measurement)
    labelled = [(label, combine(measurements).to_record())
                for (label, _), measurements in pooled.items()]
    return labelled, failures


def add_derived_columns(records: list[dict], roofline, codec_rates: dict | None = None,
                        cores: int | None = None, cache_bytes: int | None = -1) -> None:
    """``ratio_to_dense`` (same cache state, same run), ``roofline_gbps``,
    ``roofline_fraction`` and ``roofline_bound`` ("memory" or "disk"), and ``limit_gbps``,
    ``limit_fraction`` and ``limit_bound``, in place (None where there is no reference or no
    roofline).

    Warm reads come from RAM (or the page cache): decoded bytes against the memory bandwidth.
    Cold file reads come from the disk: the stored (compressed) bytes against the disk
    bandwidth, or the decoded bytes against the memory bandwidth, whichever is nearer its
    ceiling. The reference's matrix is in RAM in both states.

    The limit of a row: for compressed data, the decoded rate no pass can beat, the least of
    the memory bandwidth, the disk bandwidth x the compression ratio (cold) and the codec's
    single-core decode rate (``codec_rates``: codec name -> GB/s) x ``cores`` (default: the
    usable cores), ``limit_bound`` "memory", "disk" or "decode"; for uncompressed data, its
    roof.

    A pass from memory (warm, or the in-RAM reference) that reads no more than the CPU's
    last-level cache holds (``cache_bytes``; default: this machine's, ``cpu_cache``) is put
    against no roof: its bound is "cache" and its fractions None.
    """
    cores = cores or _usable_cores()
    if cache_bytes == -1:
        cache_bytes = cpu_cache.last_level_cache_bytes()
    def same(r: dict) -> tuple:  # the same cache state and product
        return r["cache"], r.get("product", "matvec"), r.get("columns", 1)

    reference = {same(r): r["seconds"] for r in records if r["strategy"] == REFERENCE_STRATEGY}
    for r in records:
        r["ratio_to_dense"] = r["seconds"] / reference[same(r)] if same(r) in reference else None
        if roofline is None:
            r["roofline_gbps"] = r["roofline_fraction"] = r["roofline_bound"] = None
            continue
        from_memory = r["cache"] == "warm" or r["strategy"] == REFERENCE_STRATEGY
        if from_memory and cache_bytes and r["gbps"] * 1e9 * r["seconds"] <= cache_bytes:
            r["roofline_bound"] = r["limit_bound"] = "cache"
            r["roofline_gbps"] = r["roofline_fraction"] = None
            r["limit_gbps"] = r["limit_fraction"] = None
            continue
        bounds = {"memory": (r["gbps"], roofline.memory_read_gbps)}
        # A second pass of a file the page cache cannot hold reads the disk too.
        if (r["cache"] == "cold" or uncached_warm(r)) and r["strategy"] != REFERENCE_STRATEGY:
            bounds["disk"] = (r.get("stored_gbps") or r["gbps"], roofline.disk_read_gbps)
        bound = max(bounds, key=lambda name: bounds[name][0] / bounds[name][1])
        rate, r["roofline_gbps"] = bounds[bound]
        r["roofline_bound"] = bound
        r["roofline_fraction"] = rate / r["roofline_gbps"]
        _add_limit(r, roofline, codec_rates or {}, cores)


def _add_limit(r: dict, roofline, codec_rates: dict, cores: int) -> None:
    codec = (r.get("spec") or {}).get("compression")
    ratio = r.get("compression_ratio")
    if codec in (None, "none") or not ratio:
        r["limit_gbps"], r["limit_fraction"] = r["roofline_gbps"], r["roofline_fraction"]
        r["limit_bound"] = r["roofline_bound"]
        return
    limits = {"memory": roofline.memory_read_gbps}
    if r["cache"] == "cold" or uncached_warm(r):
        limits["disk"] = roofline.disk_read_gbps * ratio
    if codec_rates.get(codec):
        limits["decode"] = codec_rates[codec] * cores
    r["limit_bound"] = min(limits, key=limits.get)
    r["limit_gbps"] = limits[r["limit_bound"]]
    r["limit_fraction"] = r["gbps"] / r["limit_gbps"]


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _number(value, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else f"{scale * value:{spec}}"


#: A warm row whose file never had this share of its pages in the page cache before a pass
#: (the matrix does not fit it) is a second pass from disk, not a cached one.
CACHED_FRACTION = 0.9
SECOND_PASS = "2nd pass"


def uncached_warm(record: dict) -> bool:
    """True for a 'warm' record whose file did not stay in the page cache between passes."""
    fraction = record.get("resident_fraction_before")
    return record["cache"] == "warm" and fraction is not None and fraction < CACHED_FRACTION


def _cache_cell(record: dict) -> str:
    return SECOND_PASS if uncached_warm(record) else record["cache"]


#: Columns of the table: header, cell of a record, left-aligned.
_COLUMNS: tuple[tuple[str, Callable[[dict], str], bool], ...] = (
    ("strategy", lambda r: r["strategy"], True),
    ("storage", lambda r: r["storage"], True),
    ("cache", _cache_cell, True),
    ("median", lambda r: units.human_seconds(r["seconds"]), False),
    ("min", lambda r: units.human_seconds(r["seconds_min"]), False),
    ("x dense", lambda r: _number(r["ratio_to_dense"], ".2f"), False),
    ("read rate", lambda r: units.human_gbps(r["gbps"]), False),
    ("compr", lambda r: _number(r.get("compression_ratio"), ".2f"), False),
    ("stored rate", lambda r: units.human_gbps(r["stored_gbps"]) if r.get("stored_gbps")
     else "-", False),
    ("roof %", lambda r: _roof_cell(r), False),
    ("limit %", lambda r: _limit_cell(r), False),
    ("peak incr", lambda r: units.human_bytes(r["increment_bytes"]), False),
    ("anon incr", lambda r: units.human_bytes(r["anon_increment_bytes"]), False),
    ("file incr", lambda r: units.human_bytes(r["file_increment_bytes"]), False),
    ("budget", lambda r: units.human_bytes(r["budget_bytes"]), False),
    ("max |err|", lambda r: _number(r["max_abs_error"], ".2g"), False),
)


#: Marks a roofline fraction above 100 %: the pass beat the probe measured as its ceiling.
PROBE_BEATEN_MARK = "!"


#: The roof cells of a pass that fits the CPU's last-level cache: no roof applies.
IN_CACHE = "in cache"


def _roof_cell(record: dict) -> str:
    if record.get("roofline_bound") == "cache":
        return IN_CACHE
    fraction = record.get("roofline_fraction")
    if fraction is None:
        return "-"
    bound = (record.get("roofline_bound") or "memory")[0]  # m(emory) or d(isk)
    mark = PROBE_BEATEN_MARK if fraction > 1 else ""
    return f"{100 * fraction:.1f}{bound}{mark}"


def _limit_cell(record: dict) -> str:
    if record.get("limit_bound") == "cache":
        return IN_CACHE
    fraction = record.get("limit_fraction")
    if fraction is None:
        return "-"
    bound = {"memory": "m", "disk": "d", "decode": "c"}[record.get("limit_bound") or "memory"]
    return f"{100 * fraction:.1f}{bound}"


#: Columns added after "cache" and "min" when a table holds other products than ``A @ x``.
_PRODUCT_COLUMN = ("product", lambda r: product_label(r.get("product", "matvec"),
                                                     r.get("columns", 1)), True)
_PER_COLUMN = ("per col", lambda r: units.human_seconds(r["seconds_per_column"]), False)


def _columns_for(records: list[dict]) -> list:
    columns = list(_COLUMNS)
    if any((r.get("product", "matvec"), r.get("columns", 1)) != ("matvec", 1) for r in records):
        columns.insert(3, _PRODUCT_COLUMN)
        columns.insert(6, _PER_COLUMN)
    return columns


def format_table(records: list[dict], roofline, skipped, failures) -> str:
    """Records (with derived columns) as an aligned table, then the roofline, the skipped
    strategies and the failures, one line each."""
    columns = _columns_for(records)
    cells = [[header for header, _, _ in columns]]
    cells += [[cell(r) for _, cell, _ in columns] for r in records]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]

    def line(row: list[str]) -> str:
        return " ".join(text.ljust(width) if left else text.rjust(width)
                        for text, width, (_, _, left) in zip(row, widths, columns)).rstrip()

    lines = [line(cells[0]), "-" * len(line(cells[0])), *(line(row) for row in cells[1:])]
    if roofline is not None:
        lines.append(f"roofline: memory {units.human_gbps(roofline.memory_read_gbps)}, disk "
                     f"(cold) {units.human_gbps(roofline.disk_read_gbps)}; a 'cold' read on a "
                     "virtual disk may still hit the host's cache")
        lines.append("roof %: m = decoded bytes against the memory bandwidth, d = stored "
                     "(compressed) bytes against the disk bandwidth; compr = decoded / stored "
                     "bytes; for compressed data the read rate is the decode throughput")
        lines.append("limit %: the read rate against the row's limit: uncompressed, its roof; "
                     "compressed, the least of memory (m), disk x compr when cold (d) and the "
                     "codec's single-core decode rate x cores (c), measured after the run")
        cached = [r for r in records if r.get("roofline_bound") == "cache"]
        if cached:
            lines.append(f"{IN_CACHE}: {', '.join(sorted({r['strategy'] for r in cached}))} read "
                         "no more than the CPU's last-level cache holds: no memory roof applies")
        beaten = [r for r in records if (r.get("roofline_fraction") or 0) > 1]
        if beaten:
            lines.append(
                f"{PROBE_BEATEN_MARK} above 100 %: {', '.join(sorted({r['strategy'] for r in beaten}))} "
                "beat the probe measured as the ceiling, so the probe is not a true ceiling here "
                "(the host's cache, or a read pattern faster than the probe's)")
    uncached = [r for r in records if uncached_warm(r)]
    if uncached:
        most = max(r["resident_fraction_before"] for r in uncached)
        lines.append(f"{SECOND_PASS}: warm was asked, but no more than {100 * most:.0f} % of the "
                     "file was in the page cache before a pass (the matrix does not fit it): "
                     "these rows are a second pass from disk, not a cached one")
    lines += [profile_line(r) for r in records if r.get("profile")]
    lines += [f"skipped {name}: {reason}" for name, reason in skipped]
    lines += [f"FAILED {name} ({cache}): {message}" for name, cache, message in failures]
    return "\n".join(lines)


def profile_line(record: dict) -> str:
    """Where a pass of ``record`` spent its time, from the operand's own ``profile``: worker
    seconds (summed over the workers) reading, decoding and multiplying, the main thread's
    seconds waiting and adding, and the decode throughput of one worker."""
    p = record["profile"]
    seconds = units.human_seconds
    decode_rate = (units.human_gbps(p["decoded_bytes"] / p["decode_seconds"] / 1e9)
                   if p.get("decode_seconds") else "-")
    return (f"profile {record['strategy']} ({record['cache']}, last pass, {p.get('workers')} "
            f"workers): read {seconds(p['read_seconds'])}, decode {seconds(p['decode_seconds'])} "
            f"({decode_rate} per worker), multiply {seconds(p['multiply_seconds'])}; worker CPU "
            f"{seconds(p['worker_cpu_seconds']) if 'worker_cpu_seconds' in p else '-'}; main thread "
            f"waits {seconds(p['wait_seconds'])}, adds {seconds(p['add_seconds'])}")
