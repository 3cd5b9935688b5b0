"""A solve's workload: a fixed number of products in a row from a cold cache, as an iterative
solver (lsqr, a block method) makes them, with the time of each pass and the memory of all.

The file is evicted once, then the operand is opened and ``passes`` products run in a row:
``pass_seconds`` shows a matrix that fits the page cache warming up after the first pass, and
one that does not staying at disk speed. ``product="lsqr"`` alternates ``A @ x`` and ``Aᵀ y``
(what lsqr and lsmr ask for at each iteration); any of ``strategies.PRODUCTS`` repeats one.

Memory comes from a second, metered run of the same passes from a cold cache (the meter's
sampling thread would slow the timed one): anonymous memory (what a budget limits) and
file-backed pages (page cache mapped into the process, which the kernel may drop).
"""

from __future__ import annotations

import dataclasses
import gc
import time

from harness.measuring.matrix.generate import nbytes_in_memory
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.meters import memory, pagecache
from harness.measuring.runs.measure import import_readers
from harness.measuring.runs.sources import Generated
from harness.measuring.strategies import get
from harness.measuring.strategies.products import PRODUCT_KINDS, check_product, product_input

#: The alternation a least-squares solver makes: one A @ x, then one Aᵀ y, per iteration.
LSQR = "lsqr"


@dataclasses.dataclass(frozen=True)
class Passes:
    """Figures of ``passes`` products in a row from a cold cache: ``pass_seconds`` (each
    pass, in order), ``anon_increment_bytes`` and ``file_increment_bytes`` (the peak over the
    start of the metered run, every pass and the opening included), ``matrix_bytes`` (read per
    pass), ``resident_fraction_after`` (page-cache fraction of the file after the last pass)."""

    strategy: str
    storage: str
    product: str
    pass_seconds: tuple[float, ...]
    anon_increment_bytes: int
    file_increment_bytes: int
    budget_bytes: int
    matrix_bytes: int
    resident_fraction_after: float

    @property
    def first_pass_seconds(self) -> float:
        return self.pass_seconds[0]

    @property
    def last_pass_seconds(self) -> float:
        return self.pass_seconds[-1]

    def to_record(self) -> dict:
        record = dataclasses.asdict(self)
        record["pass_seconds"] = list(self.pass_seconds)
        return record


def solve_strategies(problem, names=None) -> tuple[list, list[tuple[str, str]]]:
    """``(strategy, spec)`` pairs of a solve on ``problem`` (``names``, default every
    out-of-core strategy that reads it) and ``(strategy, why)`` for those that cannot."""
    from harness.measuring.strategies import CannotRead
    from harness.measuring.strategies import names as all_names

    chosen, skipped = [], []
    for name in names or [n for n in all_names() if get(n).out_of_core]:
        if get(name).spans_processes:
            why = "its products run on a cluster, whose processes this workload does not meter"
            skipped.append((name, why))
            continue
        try:
            chosen.append((name, get(name).dataset_for(problem)))
        except CannotRead as exc:
            skipped.append((name, exc.reason))
    return chosen, skipped


def format_passes(records: list[dict]) -> str:
    """One line per strategy: each pass's time, then the run's memory against its budget."""
    from harness import units

    lines = []
    for r in records:
        times = " ".join(units.human_seconds(t) for t in r["pass_seconds"])
        lines.append(f"{r['strategy']} [{r['storage']}] {r['product']}, cold start: {times}; "
                     f"anonymous {units.human_bytes(r['anon_increment_bytes'])} (declared "
                     f"{units.human_bytes(r['budget_bytes'])}), file-backed "
                     f"{units.human_bytes(r['file_increment_bytes'])}")
    return "\n".join(lines)


def _products(product: str, passes: int) -> list[str]:
    if product == LSQR:
        return ["matvec" if i % 2 == 0 else "rmatvec" for i in range(passes)]
    check_product(product)
    return [product] * passes


def measure_passes(strategy: str, spec: DatasetSpec, *, passes: int = 10,
                   product: str = LSQR, columns: int = 16, root=None, **options) -> Passes:
    """``passes`` products of ``strategy`` in a row on the generated matrix of ``spec`` (in
    this process; see the module docstring); ``columns`` for ``matmat``/``rmatmat``."""
    if int(passes) < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    sequence = _products(product, int(passes))
    strat = get(strategy)
    lacking = sorted({p for p in sequence if not strat.offers(p)})
    if lacking:
        raise ValueError(f"strategy {strategy!r} does not compute {', '.join(lacking)}")
    source = Generated.of(spec, root)
    store = source.stores_for(strat, prefer=spec.storage)[0]
    source.prepare(store)
    import_readers(strat, store.spec)
    inputs = {p: product_input(store.spec.shape, store.spec.dtype, p,
                               columns if PRODUCT_KINDS[p][1] else 1) for p in set(sequence)}
    path = store.location.path

    def run(timed: bool) -> list[float]:
        seconds = []
        with strat.open_at(store.spec, store.location, **options) as operand:
            for p in sequence:
                started = time.perf_counter()
                getattr(operand, p)(inputs[p])
                if timed:
                    seconds.append(time.perf_counter() - started)
        return seconds

    gc.collect()
    pagecache.evict(path)
    seconds = run(timed=True)
    resident = pagecache.resident_fraction(path)
    gc.collect()
    pagecache.evict(path)
    _, peak = memory.measure_peak(run, False)
    return Passes(strategy=strategy, storage=store.spec.storage, product=product,
                  pass_seconds=tuple(seconds), anon_increment_bytes=int(peak.anon_increment),
                  file_increment_bytes=int(peak.file_increment),
                  budget_bytes=strat.extra_memory_bytes(store.spec, **options),
                  matrix_bytes=nbytes_in_memory(store.spec), resident_fraction_after=resident)
