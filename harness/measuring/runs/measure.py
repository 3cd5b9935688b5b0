"""One measurement = one strategy + one dataset + one cache state -> figures.

Only ``matvec(x)`` is timed (``time.perf_counter``); opening the operand (file opening,
dataset lookup, buffers, pre-faulting) is not. Peak memory comes from
``harness.measuring.meters.memory.measure_peak`` in separate, untimed passes (its sampling thread would slow
the timed ones); the figures are the worst metered pass's. Cache states:

- ``"warm"``: the operand is opened once and kept, as a user or asv's ``setup`` keeps it; a
  first, untimed product (measured for memory together with the opening, so buffers and
  mapped pages count) brings the file into the page cache; a second, metered product in
  steady state; then ``repeat`` timed products.
- ``"cold"``: every pass evicts the file (``harness.measuring.meters.pagecache.evict``), opens, multiplies and
  closes; ``repeat`` timed passes, then one metered pass (on a virtual disk the host may still
  serve the reads from its own cache: this guest cannot tell).

``measure_in_process`` is what asv calls (asv gives each benchmark a fresh process);
``measure_in_subprocess`` runs it in a fresh interpreter (``python -m harness.measuring.runs.measure``):
glibc keeps memory an earlier measurement freed and reuses it, which would hide a later
measurement's allocations. ``harness.measuring.runs.plan`` measures every strategy on one matrix
that way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from harness.measuring.meters import memory
from harness.measuring.meters import pagecache
from harness.measuring.storage.datasets import (
    SPARSE_STORAGES,
    DatasetSpec,
    materialize,
    nbytes_in_memory,
    stored_nbytes,
    vector,
)
from harness.measuring.strategies import get

CACHE_STATES = ("warm", "cold")


class MeasurementError(RuntimeError):
    """A measurement subprocess failed; the message carries its stderr's tail."""


@dataclasses.dataclass(frozen=True)
class Measurement:
    """Figures of one strategy on one dataset in one cache state.

    Times in seconds (``seconds``: every timed pass), sizes in bytes. ``matrix_bytes``: the
    matrix in its storage's natural in-memory form (dense: rows * cols * itemsize; sparse: CSR
    arrays). ``*_increment_bytes``: the worst pass's peak over its start (``harness.measuring.meters.memory``);
    ``budget_bytes``: the strategy's declared extra anonymous memory. ``max_abs_error``:
    ``max |y - y_ref|`` against a float64 dense reference (None when not checked).
    ``resident_fraction_before``: largest page-cache fraction of the file just before a pass.
    ``cluster``: for a strategy on a dask cluster, every process's figures of the worst metered
    pass (``harness.measuring.meters.cluster_memory.ClusterPeak.to_dict``); the increments above are
    then the cluster's, summed.
    """

    strategy: str
    family: str
    storage: str
    cache: str
    seconds: tuple[float, ...]
    seconds_median: float
    seconds_min: float
    matrix_bytes: int
    increment_bytes: int
    anon_increment_bytes: int
    file_increment_bytes: int
    budget_bytes: int
    memory_method: str
    max_abs_error: float | None
    out_of_core: bool = False
    resident_fraction_before: float | None = None
    spec: dict = dataclasses.field(default_factory=dict)
    options: dict = dataclasses.field(default_factory=dict)
    cluster: dict | None = None
    #: Bytes a pass reads from storage (compressed chunks of a compressed dataset).
    stored_bytes: int | None = None
    #: Where the last timed pass spent its time, when the operand says (``operand.profile``).
    profile: dict | None = None

    @property
    def compression_ratio(self) -> float | None:
        """Matrix bytes / stored bytes (1: stored as it is in RAM)."""
        return self.matrix_bytes / self.stored_bytes if self.stored_bytes else None

    @property
    def stored_gbps(self) -> float | None:
        """Stored bytes read per second of the median pass, in GB/s."""
        if not self.stored_bytes or self.seconds_median <= 0:
            return None
        return self.stored_bytes / self.seconds_median / 1e9

    @property
    def gbps(self) -> float:
        """Matrix bytes per second of the median pass, in GB/s (1e9 bytes/s)."""
        return self.matrix_bytes / self.seconds_median / 1e9 if self.seconds_median > 0 else float("inf")

    def to_record(self) -> dict:
        """JSON-safe dict: ``seconds`` is the median, ``seconds_all`` every pass."""
        record = dataclasses.asdict(self)
        record["seconds_all"] = list(self.seconds)
        record["seconds"] = self.seconds_median
        record["gbps"] = self.gbps
        record["compression_ratio"] = self.compression_ratio
        record["stored_gbps"] = self.stored_gbps
        return record

    @classmethod
    def from_record(cls, record: dict) -> Measurement:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in record.items() if k in fields}
        values["seconds"] = tuple(record["seconds_all"])
        return cls(**values)


def combine(measurements: list[Measurement]) -> Measurement:
    """Pool measurements of the same configuration (say, rounds run at different times):
    every timed pass is kept, medians recomputed; memory figures and errors are the worst."""
    if not measurements:
        raise ValueError("combine needs at least one measurement")
    first = measurements[0]
    keys = {(m.strategy, m.storage, m.cache, json.dumps(m.spec, sort_keys=True)) for m in measurements}
    if len(keys) > 1:
        raise ValueError(f"combine: measurements of different configurations {sorted(keys)}")
    seconds = tuple(t for m in measurements for t in m.seconds)
    errors = [m.max_abs_error for m in measurements if m.max_abs_error is not None]
    residency = [m.resident_fraction_before for m in measurements
                 if m.resident_fraction_before is not None]
    return dataclasses.replace(
        first,
        seconds=seconds,
        seconds_median=float(statistics.median(seconds)),
        seconds_min=float(min(seconds)),
        increment_bytes=max(m.increment_bytes for m in measurements),
        anon_increment_bytes=max(m.anon_increment_bytes for m in measurements),
        file_increment_bytes=max(m.file_increment_bytes for m in measurements),
        max_abs_error=max(errors) if errors else None,
        resident_fraction_before=max(residency) if residency else None,
    )


def warm_page_cache(path: Path) -> None:
    """Evict ``path`` and read it once, sequentially, with read(2).

    The state a file's pages are in matters, not only whether they are cached: copying a
    cached 400 MB file out of the page cache took 58-89 ms after the file had been written or
    memory-mapped, and 21 ms after an evict + sequential read (measured on Linux 6.18, ext4).
    Every warm measurement starts from this same, reproducible state.
    """
    pagecache.evict(path)
    pagecache.read_sequentially(path)


def reference_result(spec: DatasetSpec, x: np.ndarray, root=None) -> np.ndarray:
    """``A @ x`` in float64 (x cast to the matrix dtype first, as every strategy does),
    computed block by block so it needs no copy of the matrix."""
    x64 = np.asarray(x).astype(spec.dtype).astype(np.float64)
    if spec.storage in SPARSE_STORAGES:
        from harness.measuring.strategies.sparse import load_csr

        csr = load_csr(spec, materialize(spec, root))
        return csr.astype(np.float64) @ x64
    path = materialize(spec.with_storage("raw"), root)
    matrix = np.memmap(path, dtype=spec.dtype, mode="r", shape=spec.shape)
    y = np.empty(spec.shape[0])
    step = max(1, (16 * 1024 * 1024) // (spec.shape[1] * spec.itemsize))
    for r0 in range(0, spec.shape[0], step):
        y[r0:r0 + step] = matrix[r0:r0 + step].astype(np.float64) @ x64
    del matrix
    return y


def _check_cache_and_repeat(cache: str, repeat: int) -> None:
    if cache not in CACHE_STATES:
        raise ValueError(f"cache must be one of {CACHE_STATES}, got {cache!r}")
    if int(repeat) < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat!r}")


def measure_in_process(
    strategy: str,
    spec: DatasetSpec,
    *,
    cache: str = "warm",
    repeat: int = 3,
    root=None,
    check: bool = True,
    **options,
) -> Measurement:
    """Measure ``strategy`` on ``spec`` in this process (``repeat`` timed passes).

    ``spec`` in a storage the strategy does not read is moved to a storage it reads (same
    values, ``Strategy.dataset_for``). ``options``: the strategy options (block_rows,
    memory_budget, chunk_cache_bytes).
    """
    _check_cache_and_repeat(cache, repeat)
    strat = get(strategy)
    spec = strat.dataset_for(spec.problem, prefer=spec.storage)
    path = materialize(spec, root)
    return measure_opened(
        strat, spec, path, lambda: strat.open_at(spec, path, **options),
        (lambda x: reference_result(spec, x, root)) if check else None,
        cache=cache, repeat=repeat, options=options)


def measure_opened(strat, spec: DatasetSpec, path, open_operand, reference, *,
                   cache: str = "warm", repeat: int = 3, options: dict | None = None
                   ) -> Measurement:
    """Measure strategy ``strat`` on the matrix ``spec`` describes, wherever it is.

    ``path``: the file (or directory) whose page cache is warmed or evicted; ``open_operand()``:
    a context manager yielding the operand (opening is not timed); ``reference(x)``: the float64
    ``A @ x`` to check against, or None to skip the check. ``options``: the strategy options.
    """
    options = dict(options or {})
    _check_cache_and_repeat(cache, repeat)
    if spec.storage in ("hdf5", "csr-hdf5"):
        # Importing h5py and hdf5plugin (about 3.5 MiB here) is a cost of the process, not of
        # the product: done before anything is metered.
        from harness.measuring.storage.codecs import register_hdf5_filters

        register_hdf5_filters()
    if spec.storage == "zarr":
        from harness.measuring.storage.zarr import zarr_module

        zarr_module()  # the same for zarr and its codecs (about 10 MiB)
    for module in strat.imports:
        importlib.import_module(module)
    budget = strat.extra_memory_bytes(spec, **options)
    x = vector(spec.shape[1], spec.dtype)

    profile = {}

    def timed(operand) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        y = operand.matvec(x)
        elapsed = time.perf_counter() - started
        profile.update(getattr(operand, "profile", None) or {})
        return y, elapsed

    def open_and_time() -> tuple[np.ndarray, float]:
        with open_operand() as operand:
            return timed(operand)

    seconds, peaks, residency, cluster_peaks = [], [], [], []
    y = None

    def metered(operand, fn, *args):
        # An operand on a dask cluster meters every process of it (its own measure_peak).
        result, peak = getattr(operand, "measure_peak", memory.measure_peak)(fn, *args)
        if getattr(operand, "last_cluster_peak", None) is not None:
            cluster_peaks.append(operand.last_cluster_peak)
        return result, peak

    # The meter's sampling thread (and the short GIL switch interval it sets) would slow the
    # product it watches, so memory passes and timed passes are separate passes.
    if cache == "warm":
        warm_page_cache(path)
        # One operand for every pass, as a user (or asv's setup) keeps it. The first product
        # brings the file into the page cache and the process's mappings; it is metered with
        # the opening (so buffers and mapped pages count), then once more in steady state.
        with contextlib.ExitStack() as stack:
            gc.collect()
            if strat.spans_processes:  # a cluster: the client's meter alone says little
                operand = stack.enter_context(open_operand())
                first_peak = metered(operand, operand.matvec, x)[1]
            else:
                (operand, _), first_peak = memory.measure_peak(
                    lambda: (op := stack.enter_context(open_operand()),
                             op.matvec(x)))
            _, steady_peak = metered(operand, operand.matvec, x)
            peaks += [first_peak, steady_peak]
            for _ in range(int(repeat)):
                y = None
                residency.append(pagecache.resident_fraction(path))
                y, elapsed = timed(operand)
                seconds.append(elapsed)
    else:
        # Cold: evict, then open, multiply and close, every pass (a live map pins the pages);
        # the last pass is metered, not timed.
        for index in range(int(repeat) + 1):
            y = None
            gc.collect()
            pagecache.evict(path)
            residency.append(pagecache.resident_fraction(path))
            if index < int(repeat):
                y, elapsed = open_and_time()
                seconds.append(elapsed)
            elif strat.spans_processes:  # a cluster: its operand meters every process
                with open_operand() as operand:
                    (y, _), peak = metered(operand, timed, operand)
                peaks.append(peak)
            else:
                (y, _), peak = memory.measure_peak(open_and_time)
                peaks.append(peak)
    error = None
    if reference is not None:
        expected = reference(x)
        error = float(np.max(np.abs(y.astype(np.float64) - expected))) if y.size else 0.0
    return Measurement(
        strategy=strat.name,
        family=strat.family,
        storage=spec.storage,
        cache=cache,
        seconds=tuple(seconds),
        seconds_median=float(statistics.median(seconds)),
        seconds_min=float(min(seconds)),
        matrix_bytes=nbytes_in_memory(spec),
        increment_bytes=max(p.increment for p in peaks),
        anon_increment_bytes=max(p.anon_increment for p in peaks),
        file_increment_bytes=max(p.file_increment for p in peaks),
        budget_bytes=budget,
        memory_method=peaks[0].method,
        max_abs_error=error,
        out_of_core=strat.out_of_core,
        resident_fraction_before=max(residency),
        spec=spec.to_dict(),
        options={k: v for k, v in options.items() if v is not None},
        cluster=max(cluster_peaks, key=lambda c: c.increment).to_dict() if cluster_peaks else None,
        stored_bytes=stored_nbytes(spec, path),
        profile=profile or None,
    )


def measure_in_subprocess(
    strategy: str,
    spec: DatasetSpec,
    *,
    cache: str = "warm",
    repeat: int = 3,
    root=None,
    check: bool = True,
    timeout_seconds: float | None = None,
    **options,
) -> Measurement:
    """``measure_in_process`` in a fresh interpreter (``python -m harness.measuring.runs.measure``).

    Raises :class:`MeasurementError` (with the child's stderr) when the child fails or runs
    longer than ``timeout_seconds``.
    """
    request = {
        "strategy": strategy, "spec": spec.to_dict(), "cache": cache, "repeat": int(repeat),
        "root": os.fspath(root) if root is not None else None, "check": bool(check),
        "options": options,
    }
    return run_child("harness.measuring.runs.measure", request, f"{strategy} on {spec} ({cache})",
                     timeout_seconds)


def run_child(module: str, request: dict, label: str, timeout_seconds: float | None
              ) -> Measurement:
    """Run ``python -m <module> '<json request>'`` in a fresh interpreter and return the
    :class:`Measurement` its last JSON line holds; ``label`` names the work in errors."""
    command = [sys.executable, "-m", module, json.dumps(request)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_seconds,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise MeasurementError(
            f"{label} took longer than {timeout_seconds} s; "
            "raise the timeout or measure a smaller matrix"
        ) from exc
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-6:])
        raise MeasurementError(f"{label} failed (exit {done.returncode}):\n{tail}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise MeasurementError(f"{label} printed no record")
    return Measurement.from_record(json.loads(lines[-1]))


def _child_main(argv: list[str]) -> int:
    """Entry point of the measuring subprocess: one JSON request in, one JSON record out."""
    if len(argv) != 1:
        print("usage: python -m harness.measuring.runs.measure '<json request>'", file=sys.stderr)
        return 2
    request = json.loads(argv[0])
    result = measure_in_process(
        request["strategy"], DatasetSpec.from_dict(request["spec"]), cache=request["cache"],
        repeat=request["repeat"], root=Path(request["root"]) if request["root"] else None,
        check=request["check"], **request["options"],
    )
    print(json.dumps(result.to_record()))
    return 0


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
