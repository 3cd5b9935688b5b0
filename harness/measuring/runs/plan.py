"""Which strategy multiplies which stored copy of a matrix, and which cannot, and why.

:func:`plan_for` asks each strategy where it reads the matrix (``runs.sources``: a storage of
its own for a generated matrix, the user's file or its copies for a user's) and applies the one
fit policy (``harness.measuring.fit``: RAM, time) to each; ``dense``, the reference of every
ratio, is always added, and left out with the reason when it does not fit. :func:`check_disk`
refuses a plan whose files do not fit on the disk before any is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from harness import units
from harness.measuring import fit, strategies
from harness.measuring.runs.sources import REFERENCE_STRATEGY, Source, Store, as_source


@dataclasses.dataclass(frozen=True)
class Run:
    """One strategy on one stored copy of the matrix."""

    strategy: str
    store: Store

    @property
    def spec(self):
        return self.store.spec

    @property
    def location(self):
        return self.store.location

    @property
    def label(self) -> str:
        return self.store.label

    @property
    def key(self) -> str:
        """How tables and progress lines name the run: the strategy, and the store when it is
        not simply the storage the strategy reads (a user's file, a copy)."""
        if self.store.label == self.store.spec.storage:
            return self.strategy
        return f"{self.strategy} on {self.store.label}"


@dataclasses.dataclass(frozen=True)
class Plan:
    """``runs``: the reference first; ``skipped``: (strategy or run, why it does not run)."""

    runs: tuple[Run, ...]
    skipped: tuple[tuple[str, str], ...]


def plan_for(matrix, names: Iterable[str] | None = None, *, options: dict | None = None,
             available_ram_bytes: int | None = None, repeat: int = 5,
             timeout_seconds: float = 600.0) -> Plan:
    """Which strategies run on ``matrix`` (a source, or anything ``sources.as_source``
    takes), each on which store.

    ``names``: the strategies to compare (default: every one that can read the matrix); the
    reference is added. A strategy is left out, with the reason, when it reads none of the
    stores, when a pass may need more than ``fit.RAM_FRACTION`` of ``available_ram_bytes``
    (default: available now), or when ``repeat`` passes would exceed ``timeout_seconds``. A
    named strategy that runs nowhere is a ValueError (with the sizes), an unknown name a
    KeyError. ``options``: strategy options, which change what a pass needs.
    """
    source = matrix if isinstance(matrix, Source) else as_source(matrix)
    options = options or {}
    if available_ram_bytes is None:
        available_ram_bytes = fit.available_ram_bytes()
    requested = [name.strip() for name in names] if names else []
    runs, skipped = [], []
    for name in dict.fromkeys([REFERENCE_STRATEGY, *(requested or strategies.names())]):
        strategy = strategies.get(name)
        try:
            stores = source.stores_for(strategy)
        except strategies.CannotRead as exc:
            reasons = [(name, exc.reason)]
            stores = []
        else:
            reasons = []
        for store in stores:
            run = Run(name, store)
            reason = _refusal(strategy, store, options, available_ram_bytes, repeat,
                              timeout_seconds)
            if reason is None:
                runs.append(run)
            else:
                reasons.append((run.key, reason))
        if name in requested and not any(run.strategy == name for run in runs):
            raise ValueError(f"strategy {name!r} cannot run on this matrix: "
                             + "; ".join(reason for _, reason in reasons))
        if name == REFERENCE_STRATEGY:
            reasons = [(key, reason + "; the ratios to it ('x dense') are left out")
                       for key, reason in reasons]
        skipped += reasons
    return Plan(tuple(runs), tuple(skipped))


def _refusal(strategy, store: Store, options: dict, available_ram_bytes: int, repeat: int,
             timeout_seconds: float) -> str | None:
    """Why ``strategy`` must not run on ``store`` here (what the file holds, RAM, then time),
    or None."""
    needed = strategy.needed_ram_bytes(store.spec, **options)
    # A file that exists is asked (a generated one is written later, in a layout its strategies
    # accept by construction).
    found = Path(store.location.path).exists() and strategy.refusal_at(store.spec, store.location)
    return (found or None
            or fit.ram_refusal(needed, available_ram_bytes)
            or fit.time_refusal(strategy.estimated_pass_seconds(store.spec, **options), repeat,
                                timeout_seconds))


def check_disk(plan: Plan, source: Source, free_disk_bytes: int | None = None) -> None:
    """Refuse (ValueError with the sizes) a plan whose missing data files do not fit on the
    disk of the source's data directory, before any of them is written."""
    stores = list({run.store.location.path: run.store for run in plan.runs}.values())
    missing = [s for s in stores if not Path(s.location.path).exists()]
    needed = fit.with_disk_margin(source.missing_bytes(missing))
    if not needed:
        return  # a user's file and its copies exist: only generated files can be missing
    root = source.root
    if free_disk_bytes is None:
        free_disk_bytes = fit.free_disk_bytes(root)
    if needed > free_disk_bytes:
        raise ValueError(f"the {len(missing)} data file(s) this plan needs take about "
                         f"{units.human_bytes(needed)} (with 10% margin), and {root} has "
                         f"{units.human_bytes(free_disk_bytes)} free; choose fewer strategies, a "
                         "smaller shape, or set HARNESS_DATA_DIR to a larger disk")
