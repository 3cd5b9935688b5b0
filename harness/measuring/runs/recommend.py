"""Which strategy to use within a memory budget: the Pareto front of time against anonymous
memory, and the fastest strategy within the budget, per cache state.

Anonymous memory (heap copies, buffers: ``anon_increment_bytes``) is what a budget limits: the
kernel cannot drop it, whereas the file-backed pages of a memory map are page cache it reclaims
when memory runs short. Every figure comes from the comparison's records (``plan.Comparison``):
``seconds`` (the median pass), ``anon_increment_bytes``, ``ratio_to_dense``::

    advice = recommend(comparison.records, budget_bytes=2 * 2**30)
    print("\\n".join(advice.lines()))
"""

from __future__ import annotations

import dataclasses

from harness import units
from harness.measuring import fit
from harness.measuring.runs.measure import CACHE_STATES
from harness.measuring.runs.sources import REFERENCE_STRATEGY


def available_memory_bytes() -> int:
    """RAM available now, in bytes: the default budget."""
    return fit.available_ram_bytes()


def pareto_front(records: list[dict]) -> list[dict]:
    """The records no other record beats on both time and anonymous memory (one at least as
    fast and at least as small, better in one), fastest first."""
    def dominated(r: dict) -> bool:
        return any(o["seconds"] <= r["seconds"]
                   and o["anon_increment_bytes"] <= r["anon_increment_bytes"]
                   and (o["seconds"] < r["seconds"]
                        or o["anon_increment_bytes"] < r["anon_increment_bytes"])
                   for o in records)

    return sorted((r for r in records if not dominated(r)),
                  key=lambda r: (r["seconds"], r["anon_increment_bytes"]))


@dataclasses.dataclass(frozen=True)
class CacheAdvice:
    """One cache state: ``front`` (Pareto records, fastest first), ``fastest`` (the fastest
    record within the budget, None if none fits), ``reference`` (the in-RAM product's record,
    None if not measured), ``line`` (the sentence that says it)."""

    cache: str
    front: list[dict]
    fastest: dict | None
    reference: dict | None
    line: str


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """``budget_bytes`` of anonymous memory (``budget_source``: how it was chosen) and the
    advice per cache state measured."""

    budget_bytes: int
    budget_source: str
    per_cache: list[CacheAdvice]

    def lines(self) -> list[str]:
        """The Pareto front of every cache state, then one line per state naming the fastest
        strategy within the budget."""
        out = [(f"memory budget: {units.human_bytes(self.budget_bytes)} of anonymous memory "
               f"({self.budget_source})")]
        for advice in self.per_cache:
            points = "; ".join(f"{_name(r)} {units.human_seconds(r['seconds'])} "
                               f"{units.human_bytes(r['anon_increment_bytes'])}"
                               for r in advice.front)
            out.append(f"Pareto front ({advice.cache}, time vs anonymous memory): {points}")
        out += [advice.line for advice in self.per_cache]
        return out

    def to_dict(self) -> dict:
        """JSON-safe: the budget, and per cache state the front, the choice and its line."""
        def brief(r):
            return None if r is None else {
                "strategy": r["strategy"], "storage": r["storage"], "seconds": r["seconds"],
                "anon_increment_bytes": r["anon_increment_bytes"],
                "ratio_to_dense": r.get("ratio_to_dense")}

        return {"budget_bytes": self.budget_bytes, "budget_source": self.budget_source,
                **{a.cache: {"pareto_front": [brief(r) for r in a.front],
                             "fastest_within_budget": brief(a.fastest),
                             "in_ram_product": brief(a.reference), "line": a.line}
                   for a in self.per_cache}}


def _name(record: dict) -> str:
    return f"{record['strategy']} [{record['storage']}]"


def recommend(records: list[dict], budget_bytes: int | None = None,
              skipped: list[tuple[str, str]] = ()) -> Recommendation:
    """The advice for ``records`` within ``budget_bytes`` of anonymous memory (default: the
    RAM available now). ``skipped``: (strategy, why), to say why the in-RAM product is
    missing when it is."""
    source = "given"
    if budget_bytes is None:
        budget_bytes, source = available_memory_bytes(), "available now"
    per_cache = []
    for cache in CACHE_STATES:
        measured = [r for r in records if r["cache"] == cache]
        if not measured:
            continue
        reference = next((r for r in measured if r["strategy"] == REFERENCE_STRATEGY), None)
        fitting = [r for r in measured if r["anon_increment_bytes"] <= budget_bytes]
        fastest = min(fitting, key=lambda r: (r["seconds"], r["anon_increment_bytes"]),
                      default=None)
        per_cache.append(CacheAdvice(cache, pareto_front(measured), fastest, reference,
                                     _sentence(cache, fastest, reference, measured,
                                               budget_bytes, skipped)))
    return Recommendation(int(budget_bytes), source, per_cache)


def _against_your_file(fastest: dict, measured: list[dict], budget: int) -> str:
    """When the fastest is a copy of the user's file: the fastest on the file as it is, with
    both figures (and the conversion that file costs each pass, when it stores other values)."""
    if not fastest["storage"].endswith("(copy)"):
        return ""
    yours = [r for r in measured if r["storage"].endswith("(yours)")
             and r["anon_increment_bytes"] <= budget]
    if not yours:
        return ""
    best = min(yours, key=lambda r: (r["seconds"], r["anon_increment_bytes"]))
    spec = best.get("spec") or {}
    stored = spec.get("stored_dtype")
    converting = f", its {_dtype_name(stored)} values as {spec.get('dtype')}" if stored else ""
    return (f" ({best['seconds'] / fastest['seconds']:.2f}x faster than your file as it is: "
            f"{_name(best)}, {units.human_seconds(best['seconds'])}{converting})")


def _dtype_name(text: str) -> str:
    import numpy as np

    dtype = np.dtype(text)
    return dtype.name if dtype.isnative or dtype.itemsize == 1 else f"big-endian {dtype.name}"


def _sentence(cache, fastest, reference, measured, budget, skipped) -> str:
    budget_text = units.human_bytes(budget)
    if fastest is None:
        least = min(measured, key=lambda r: r["anon_increment_bytes"])
        return (f"{cache}: no strategy fits {budget_text} of anonymous memory; the smallest, "
                f"{_name(least)}, took {units.human_bytes(least['anon_increment_bytes'])} "
                f"in {units.human_seconds(least['seconds'])}")
    head = (f"{cache}: fastest within {budget_text}: {_name(fastest)}, "
            f"{units.human_seconds(fastest['seconds'])}, "
            f"{units.human_bytes(fastest['anon_increment_bytes'])} anonymous"
            f"{_against_your_file(fastest, measured, budget)}")
    if reference is None:
        why = dict(skipped).get(REFERENCE_STRATEGY, "it was not measured")
        return f"{head}; the in-RAM product was not run: {why}"
    ratio = fastest["seconds"] / reference["seconds"]
    in_ram = (f"{ratio:.2f}x the in-RAM product ({units.human_seconds(reference['seconds'])}, "
              f"{units.human_bytes(reference['anon_increment_bytes'])} anonymous")
    if reference["anon_increment_bytes"] > budget:
        return f"{head}; {in_ram}, which does not fit the budget)"
    return f"{head}; {in_ram})"
