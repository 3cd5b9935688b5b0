"""The winner, taken home: a matrix from any source as a ``scipy.sparse.linalg.LinearOperator``
backed by one strategy's own reader (its thread pools, mapped chunks, dask tasks).

::

    with harness.operator("big.h5:/A", figures="figures.json") as A:
        x = scipy.sparse.linalg.lsqr(A, b)[0]

``operator(source, strategy)``: ``source`` is anything ``measure`` reads (a ``Problem`` or
``DatasetSpec``, a ``UserMatrix``, or a path in ``measure --file``'s syntax such as
``"file.h5:/group/dataset"`` or ``"store.zarr"``). ``strategy="auto"`` is the fastest strategy
within ``budget_bytes`` of anonymous memory for ``cache`` ("warm" or "cold"), named by the
recommendation (``runs.recommend``) from figures measured on this machine: ``figures`` (the
records of ``measure --format json``, or the path of a file holding them), or, when none are
given, a short measurement run now. Strategies that lack a product in ``uses`` are skipped.
``choice`` says which strategy was picked and from which figures.

The operator opens the strategy's operand once; closing it (``with``, or ``close()``) closes
the files, thread pools and cluster readers the operand opened, and for a cluster strategy its
client and the ``LocalCluster`` the harness started for it (a cluster reached by address keeps
running).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Self

import numpy as np
from scipy.sparse.linalg import LinearOperator

from harness.measuring.runs.measure import CACHE_STATES
from harness.measuring.runs.recommend import recommend
from harness.measuring.runs.sources import Generated, Source, as_source
from harness.measuring.strategies import PRODUCTS, CannotRead, Strategy, cluster, get, names
from harness.measuring.strategies.base import resolve_options

#: The products an iterative solver asks for by default (lsqr, lsmr, svds: A @ x and Aᵀ y).
DEFAULT_USES = ("matvec", "rmatvec")
#: Timed passes per strategy when "auto" measures the figures itself (no ``figures`` given).
AUTO_MEASURE_REPEAT = 2


@dataclasses.dataclass(frozen=True)
class Choice:
    """Which strategy and store an operator reads with, and why: ``reason`` is a sentence
    naming the figures it came from (or "asked for")."""

    strategy: str
    storage: str
    reason: str


def load_figures(figures) -> list[dict]:
    """The records of ``measure --format json``: a list of records, or the path of a file
    holding that list (or the object ``measure --file ... --format json`` prints)."""
    if isinstance(figures, str | os.PathLike):
        path = Path(figures)
        try:
            figures = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read figures from {path}: {exc}") from None
    if isinstance(figures, dict):
        figures = figures.get("records", [])
    if not isinstance(figures, list) or not all(isinstance(r, dict) for r in figures):
        raise ValueError("figures must be the list of records `measure --format json` prints")
    return figures


def _usable(strategy_name: str, uses, source: Source) -> bool:
    try:
        strategy = get(strategy_name)
        source.stores_for(strategy)
    except (KeyError, CannotRead):
        return False
    return all(strategy.offers(product) for product in uses)


def choose(records: list[dict], source: Source, *, budget_bytes: int | None = None,
           cache: str = "warm", uses=DEFAULT_USES, figures_label: str = "the figures given"
           ) -> Choice:
    """The strategy the recommendation names for ``cache`` among ``records`` of strategies
    that compute every product of ``uses`` and can read ``source``."""
    if cache not in CACHE_STATES:
        raise ValueError(f"cache must be one of {CACHE_STATES}, got {cache!r}")
    for product in uses:
        if product not in PRODUCTS:
            raise ValueError(f"unknown product {product!r}; known products: {list(PRODUCTS)}")
    # Figures of the plain product only: a solve's cost is that of its passes over the bytes.
    candidates = [r for r in records if r.get("product", "matvec") == "matvec"
                  and r.get("cache") == cache and _usable(r.get("strategy"), uses, source)
                  and _same_matrix(r, source)]
    if not candidates:
        raise ValueError(f"no {cache} figures in {figures_label} for a strategy that computes "
                         f"{', '.join(uses)} on this matrix; measure it first (python -m "
                         "harness measure ... --format json > figures.json)")
    advice = next(a for a in recommend(candidates, budget_bytes).per_cache if a.cache == cache)
    if advice.fastest is None:
        raise ValueError(f"from {figures_label}: {advice.line}")
    fastest = advice.fastest
    return Choice(fastest["strategy"], fastest["storage"], f"from {figures_label}: {advice.line}")


def _same_matrix(record: dict, source: Source) -> bool:
    """A record says which matrix it measured (``spec``): figures of another one do not count."""
    spec = record.get("spec") or {}
    shape = spec.get("shape")
    return (shape is None or tuple(shape) == tuple(source.shape)) and \
        spec.get("dtype", source.dtype) == source.dtype


class MatrixOperator(LinearOperator):
    """A ``LinearOperator`` over an opened operand (``matvec``, ``rmatvec``, ``matmat``,
    ``rmatmat``, each one pass over the stored bytes). ``budget_bytes``: the strategy's
    declared anonymous memory beyond the operands and results (bytes)."""

    def __init__(self, operand, strategy: Strategy, spec, choice: Choice, budget_bytes: int,
                 stack: contextlib.ExitStack):
        super().__init__(dtype=np.dtype(spec.dtype), shape=tuple(spec.shape))
        self.operand, self.strategy, self.spec = operand, strategy, spec
        self.choice, self.budget_bytes, self._stack = choice, budget_bytes, stack

    def _require(self, product: str) -> None:
        if not self.strategy.offers(product):
            raise ValueError(f"strategy {self.strategy.name!r} does not compute {product} "
                             f"(its record offers {', '.join(self.strategy.products)})")

    def _matvec(self, x):
        return self.operand.matvec(np.ravel(x))

    def _rmatvec(self, y):
        self._require("rmatvec")
        return self.operand.rmatvec(np.ravel(y))

    def _matmat(self, X):
        self._require("matmat")
        return self.operand.matmat(X)

    def _rmatmat(self, Y):
        self._require("rmatmat")
        return self.operand.rmatmat(Y)

    def close(self) -> None:
        """Close what the operand opened (files, thread pools, cluster readers)."""
        self._stack.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def operator(source, strategy: str = "auto", *, figures=None, budget_bytes: int | None = None,
             cache: str = "warm", uses=DEFAULT_USES, root=None, shape=None, dtype=None,
             dataset=None, **options) -> MatrixOperator:
    """``source`` as a :class:`MatrixOperator` read by ``strategy`` (a name, or "auto"); see
    the module docstring. ``shape``/``dtype``/``dataset``: as ``measure --file`` takes them;
    ``options``: the strategy options (``memory_budget``, ``block_rows``, ...)."""
    src = as_source(source, root=root, shape=shape, dtype=dtype, dataset=dataset)
    if strategy == "auto":
        if figures is None:
            records, label = _measure_now(src, cache, uses, root, options), "figures measured now"
        else:
            label = f"the figures in {figures}" if isinstance(figures, str | os.PathLike) \
                else "the figures given"
            records = load_figures(figures)
        choice = choose(records, src, budget_bytes=budget_bytes, cache=cache, uses=uses,
                        figures_label=label)
    else:
        choice = Choice(get(strategy).name, "", "asked for")
    chosen = get(choice.strategy)
    stores = src.stores_for(chosen)
    store = next((s for s in stores if s.label == choice.storage), stores[0])
    src.prepare(store)
    stack = contextlib.ExitStack()
    if chosen.spans_processes:  # the cluster's client (and a LocalCluster it started) too
        stack.callback(cluster.close, cluster.ClusterSpec.from_options(resolve_options(options)))
    try:
        operand = stack.enter_context(chosen.open_at(store.spec, store.location, **options))
    except BaseException:
        stack.close()
        raise
    budget = chosen.extra_memory_bytes(store.spec, **options)
    return MatrixOperator(operand, chosen, store.spec, dataclasses.replace(
        choice, storage=store.label), budget, stack)


def _measure_now(source: Source, cache: str, uses, root, options) -> list[dict]:
    """Figures of every strategy that computes ``uses`` and reads ``source``, measured now."""
    from harness.measuring.runs.compare import compare

    matrix = source.problem if isinstance(source, Generated) else source.user
    usable = [n for n in names() if _usable(n, uses, source)]
    return compare(matrix, usable, cache=cache, repeat=AUTO_MEASURE_REPEAT, root=root,
                   check=False, roofline=False, **options).records
