"""The recommendation on synthetic tables with known figures."""

from __future__ import annotations

from harness.measuring.runs.recommend import pareto_front, recommend

MiB = 1 << 20


def _record(strategy, cache, ms, anon_mib, storage="raw"):
    return {"strategy": strategy, "storage": storage, "cache": cache, "seconds": ms / 1000,
            "anon_increment_bytes": int(anon_mib * MiB)}


TABLE = [
    _record("dense", "warm", 10, 400),
    _record("memmap", "warm", 11, 0),
    _record("hdf5-read", "warm", 60, 400),       # dominated by dense and memmap
    _record("hdf5-blocked", "warm", 30, 8),       # dominated by memmap
    _record("dense", "cold", 200, 400),
    _record("memmap", "cold", 300, 0),
    _record("hdf5-blocked", "cold", 250, 8),
]


def test_the_pareto_front_drops_dominated_strategies_fastest_first():
    warm = [r for r in TABLE if r["cache"] == "warm"]
    assert [r["strategy"] for r in pareto_front(warm)] == ["dense", "memmap"]
    cold = [r for r in TABLE if r["cache"] == "cold"]
    assert [r["strategy"] for r in pareto_front(cold)] == ["dense", "hdf5-blocked", "memmap"]


def test_fastest_within_the_budget_with_its_ratio_to_the_in_ram_product():
    advice = recommend(TABLE, budget_bytes=256 * MiB)
    warm, cold = advice.per_cache
    assert (warm.cache, warm.fastest["strategy"]) == ("warm", "memmap")
    assert (cold.cache, cold.fastest["strategy"]) == ("cold", "hdf5-blocked")
    assert "1.10x the in-RAM product" in warm.line and "does not fit the budget" in warm.line
    assert "1.25x the in-RAM product" in cold.line
    assert advice.to_dict()["cold"]["fastest_within_budget"]["strategy"] == "hdf5-blocked"


def test_a_budget_that_holds_the_matrix_picks_the_in_ram_product():
    advice = recommend(TABLE, budget_bytes=1024 * MiB)
    assert [a.fastest["strategy"] for a in advice.per_cache] == ["dense", "dense"]
    assert "1.00x the in-RAM product" in advice.per_cache[0].line
    assert "does not fit" not in advice.per_cache[0].line


def test_nothing_fits_and_a_missing_reference_are_said():
    advice = recommend([_record("hdf5-blocked", "warm", 30, 8)], budget_bytes=MiB,
                       skipped=[("dense", "may need 400 MiB of RAM")])
    assert advice.per_cache[0].fastest is None
    assert "no strategy fits 1.0 MiB" in advice.per_cache[0].line
    advice = recommend([_record("memmap", "warm", 11, 0)], budget_bytes=MiB,
                       skipped=[("dense", "may need 400 MiB of RAM")])
    assert advice.per_cache[0].line.endswith(
        "the in-RAM product was not run: may need 400 MiB of RAM")


def test_a_faster_copy_is_named_with_your_file_as_it_is_beside():
    """A uint16 file converted at every pass, and a float32 copy 4x faster: the sentence names
    the copy, then the fastest on the file itself with its time and its conversion."""
    yours = _record("memmap-blocked", "warm", 40, 1, storage="npy (yours)")
    yours["spec"] = {"dtype": "float32", "stored_dtype": "<u2"}
    table = [_record("dense", "warm", 8, 400, storage="npy (yours)"), yours,
             _record("memmap-blocked", "warm", 10, 0, storage="raw (copy)")]
    line = recommend(table, budget_bytes=64 * MiB).per_cache[0].line
    assert line.startswith("warm: fastest within 64.0 MiB: memmap-blocked [raw (copy)], 10.0 ms")
    assert ("(4.00x faster than your file as it is: memmap-blocked [npy (yours)], 40.0 ms, "
            "its uint16 values as float32)") in line
    big_endian = dict(yours, spec={"dtype": "float64", "stored_dtype": ">f8"})
    line = recommend([*table[:1], big_endian, table[2]], budget_bytes=64 * MiB).per_cache[0].line
    assert "its big-endian float64 values as float64" in line
    own = recommend(table, budget_bytes=1024 * MiB).per_cache[0].line
    assert "your file as it is" not in own  # the in-RAM product of the file itself wins
