"""One measurement = one strategy + one dataset + one cache state -> figures.

Only the product is timed (``matvec(x)``, or with ``product`` ``rmatvec``, ``matmat`` or
``rmatmat`` and ``columns`` k: ``Aᵀy``, ``A @ X``, ``AᵀY``) (``time.perf_counter``); opening the operand (file opening,
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

``measure_opened`` measures one strategy on a matrix wherever it is (any source,
``runs.sources``). ``measure_in_process`` is what asv calls for a generated matrix (asv gives
each benchmark a fresh process); ``runs.child.measure_in_subprocess`` runs a measurement in a fresh
interpreter (the one child entry point): glibc keeps memory an earlier
measurement freed and reuses it, which would hide a later measurement's allocations.
``runs.compare`` measures every strategy on one matrix that way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import importlib
import json
import statistics
import time
from pathlib import Path

import numpy as np

from harness.measuring.matrix.generate import nbytes_in_memory
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.meters import memory, pagecache
from harness.measuring.runs.sources import Generated
from harness.measuring.storage import codecs
from harness.measuring.storage import zarr as zarr_store
from harness.measuring.storage.datasets import stored_nbytes
from harness.measuring.strategies import get
from harness.measuring.strategies.capabilities import MetersItsProcesses, Profiled
from harness.measuring.strategies.products import PRODUCT_KINDS, check_product, product_input

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
    #: Which product was timed (``strategies.PRODUCTS``) and on how many columns.
    product: str = "matvec"
    columns: int = 1

    @property
    def seconds_per_column(self) -> float:
        """The median pass divided by the columns it multiplied (seconds)."""
        return self.seconds_median / self.columns

    @property
    def compression_ratio(self) -> float | None:
        """The values' bytes as the file holds them, uncompressed / stored bytes (1: stored
        uncompressed; a file of int16 values multiplied as float32 is not "compressed")."""
        if not self.stored_bytes:
            return None
        stored_dtype, dtype = self.spec.get("stored_dtype"), self.spec.get("dtype")
        values = self.matrix_bytes
        if stored_dtype and dtype and self.spec.get("density") is None:
            values = values * np.dtype(stored_dtype).itemsize // np.dtype(dtype).itemsize
        return values / self.stored_bytes

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
        record["seconds_per_column"] = self.seconds_per_column
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
    keys = {(m.strategy, m.storage, m.cache, m.product, m.columns,
             json.dumps(m.spec, sort_keys=True)) for m in measurements}
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


def _check_cache_and_repeat(cache: str, repeat: int) -> None:
    if cache not in CACHE_STATES:
        raise ValueError(f"cache must be one of {CACHE_STATES}, got {cache!r}")
    if int(repeat) < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat!r}")


def import_readers(strat, spec: DatasetSpec) -> None:
    """Import what ``strat`` reads ``spec`` with, before anything is metered: an import's
    memory is a cost of the process, not of the product."""
    if spec.storage in ("hdf5", "csr-hdf5"):
        codecs.register_hdf5_filters()  # h5py and hdf5plugin: about 3.5 MiB here
    if spec.storage == "zarr":
        zarr_store.zarr_module()  # zarr and its codecs: about 10 MiB
    for module in strat.imports:
        importlib.import_module(module)


def measure_in_process(
    strategy: str,
    spec: DatasetSpec,
    *,
    cache: str = "warm",
    repeat: int = 3,
    root=None,
    check: bool = True,
    product: str = "matvec",
    columns: int = 1,
    **options,
) -> Measurement:
    """Measure ``strategy`` on the generated matrix of ``spec`` in this process (``repeat``
    timed passes of ``product`` on ``columns`` columns).

    ``spec`` in a storage the strategy does not read is moved to a storage it reads (same
    values, ``Strategy.dataset_for``). ``options``: the strategy options (block_rows,
    memory_budget, chunk_cache_bytes).
    """
    _check_cache_and_repeat(cache, repeat)
    source = Generated.of(spec, root)
    store = source.stores_for(get(strategy), prefer=spec.storage)[0]
    source.prepare(store)
    return measure_store(strategy, store, source, cache=cache, repeat=repeat, check=check,
                         product=product, columns=columns, **options)


def measure_store(strategy: str, store, source, *, cache: str = "warm", repeat: int = 3,
                  check: bool = True, reference=None, product: str = "matvec", columns: int = 1,
                  **options) -> Measurement:
    """Measure ``strategy`` on ``store`` (a ``sources.Store``) of ``source`` in this process,
    checked (``check``) against ``reference(v)`` (default: the source's own reference, computed
    here)."""
    strat = get(strategy)
    transpose = PRODUCT_KINDS.get(product, (False, False))[0]
    return measure_opened(
        strat, store.spec, store.location,
        lambda: strat.open_at(store.spec, store.location, **options),
        (reference or (lambda v: source.reference(v, transpose))) if check else None,
        cache=cache, repeat=repeat, options=options, product=product, columns=columns,
        x_dtype=source.dtype)


def measure_opened(strat, spec: DatasetSpec, path, open_operand, reference, *,
                   cache: str = "warm", repeat: int = 3, options: dict | None = None,
                   product: str = "matvec", columns: int = 1, x_dtype: str | None = None
                   ) -> Measurement:
    """Measure strategy ``strat`` on the matrix ``spec`` describes, wherever it is.

    ``path``: the file (or directory) whose page cache is warmed or evicted; ``open_operand()``:
    a context manager yielding the operand (opening is not timed); ``reference(v)``: the float64
    product to check against, or None to skip the check. ``options``: the strategy options.
    ``product`` (``strategies.PRODUCTS``) on ``columns`` columns is what each pass computes.
    ``x_dtype``: the dtype its operand is drawn in (the source's; default the spec's).
    """
    options = dict(options or {})
    _check_cache_and_repeat(cache, repeat)
    check_product(product, columns)
    if not strat.offers(product):
        raise ValueError(f"strategy {strat.name!r} does not compute {product} (its record "
                         f"offers {', '.join(strat.products)})")
    import_readers(strat, spec)
    budget = strat.extra_memory_bytes(spec, **options)
    # The source's operand (a copy in another dtype multiplies the same one, cast as every
    # product does).
    x = product_input(spec.shape, x_dtype or spec.dtype, product, columns)

    def multiply(operand, v):
        return getattr(operand, product)(v)

    profile = {}

    def timed(operand) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        y = multiply(operand, x)
        elapsed = time.perf_counter() - started
        if isinstance(operand, Profiled):
            profile.update(operand.profile)
        return y, elapsed

    def open_and_time() -> tuple[np.ndarray, float]:
        with open_operand() as operand:
            return timed(operand)

    seconds, peaks, residency, cluster_peaks = [], [], [], []
    y = None

    def metered(operand, fn, *args):
        # An operand on a dask cluster meters every process of it (its own measure_peak).
        if not isinstance(operand, MetersItsProcesses):
            return memory.measure_peak(fn, *args)
        result, peak = operand.measure_peak(fn, *args)
        if operand.last_cluster_peak is not None:
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
                first_peak = metered(operand, multiply, operand, x)[1]
            else:
                (operand, _), first_peak = memory.measure_peak(
                    lambda: (op := stack.enter_context(open_operand()),
                             multiply(op, x)))
            _, steady_peak = metered(operand, multiply, operand, x)
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
        product=product,
        columns=int(columns),
    )
