"""harness.operator: "auto" names the strategy the recommendation names (on a table of figures
with a known answer), skips strategies that lack a product, and lsqr and svds through it on an
HDF5 and a zarr matrix agree with the in-RAM matrix within its memory budget."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import requires_clear_refs
from scipy.sparse.linalg import lsqr, svds

import harness
from harness.measuring.matrix.generate import dense_array
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.meters import memory
from harness.measuring.runs.recommend import recommend
from harness.measuring.strategies import base as strategies_base

MiB = 2**20
SMALL = DatasetSpec((30, 40), "float64", storage="hdf5", seed=4)


def record(strategy: str, storage: str, seconds: float, anon: int, cache: str = "warm",
           shape=(30, 40)) -> dict:
    return {"strategy": strategy, "storage": storage, "cache": cache, "seconds": seconds,
            "anon_increment_bytes": anon, "spec": {"shape": list(shape), "dtype": "float64"}}


#: Known answer within 5 MiB: dense is fastest but does not fit; memmap-blocked is next.
FIGURES = [record("dense", "hdf5", 0.010, 10 * MiB), record("memmap-blocked", "raw", 0.015, 0),
           record("hdf5-blocked", "hdf5", 0.020, 1 * MiB), record("zarr-blocked", "zarr", 0.030, 0),
           record("memmap-blocked", "raw", 0.001, 0, cache="cold"),
           record("hdf5-rows", "hdf5", 0.001, 0, shape=(3, 4))]  # another matrix's: ignored


def test_auto_picks_the_strategy_the_recommendation_names(tmp_path):
    warm = [r for r in FIGURES[:4]]
    named = next(a for a in recommend(warm, 5 * MiB).per_cache if a.cache == "warm").fastest
    with harness.operator(SMALL, figures=FIGURES, budget_bytes=5 * MiB, root=tmp_path) as op:
        assert op.choice.strategy == named["strategy"] == "memmap-blocked"
        assert op.choice.storage == "raw"
        assert "fastest within 5.0 MiB: memmap-blocked" in op.choice.reason
        assert "the figures given" in op.choice.reason
        x = np.arange(40.0)
        np.testing.assert_allclose(op @ x, dense_array(SMALL) @ x, rtol=1e-12)
    with harness.operator(SMALL, figures=FIGURES, budget_bytes=5 * MiB, cache="cold",
                          root=tmp_path) as op:
        assert op.choice.strategy == "memmap-blocked"


def test_auto_skips_a_strategy_that_lacks_a_product_the_caller_uses(tmp_path, monkeypatch):
    registry = strategies_base.registry()
    lacking = dataclasses.replace(registry["memmap-blocked"], products=("matvec", "matmat"))
    monkeypatch.setitem(registry, "memmap-blocked", lacking)
    with harness.operator(SMALL, figures=FIGURES, budget_bytes=5 * MiB, root=tmp_path) as op:
        assert op.choice.strategy == "hdf5-blocked"  # the next within the budget
    with harness.operator(SMALL, figures=FIGURES, budget_bytes=5 * MiB, uses=("matvec",),
                          root=tmp_path) as op:
        assert op.choice.strategy == "memmap-blocked"


def test_auto_reads_the_figures_measure_wrote_and_says_so(tmp_path):
    path = tmp_path / "figures.json"
    path.write_text(json.dumps({"file": "x", "records": FIGURES}))
    with harness.operator(SMALL, figures=path, budget_bytes=512 * 1024, root=tmp_path) as op:
        assert op.choice.strategy == "memmap-blocked"
        assert f"from the figures in {path}: warm: fastest" in op.choice.reason


@pytest.mark.parametrize("figures, budget, message", [
    ([record("dense", "hdf5", 0.01, 10 * MiB)], 1 * MiB, "no strategy fits 1.0 MiB"),
    ([record("dense", "hdf5", 0.01, 0, shape=(3, 4))], None, "no warm figures"),
    ("no-such-file.json", None, "cannot read figures"),
])
def test_auto_without_usable_figures_says_why(tmp_path, figures, budget, message):
    with pytest.raises(ValueError, match=message):
        harness.operator(SMALL, figures=figures, budget_bytes=budget, root=tmp_path)


def test_closing_the_operator_closes_the_readers_pool(tmp_path):
    spec = DatasetSpec((30, 40), "float64", storage="hdf5", chunks=(7, 9), seed=4)
    with harness.operator(spec, "hdf5-direct", root=tmp_path) as op:
        assert op.choice.reason == "asked for"
        pool = op.operand.pool
        np.testing.assert_allclose(op.rmatvec(np.ones(30)), dense_array(spec).sum(axis=0),
                                   rtol=1e-12)
        assert not pool._shutdown
    assert pool._shutdown


# -------------------------------------------------------------------------------- solves

#: A tall, well-conditioned least-squares problem of 8 MB (float64), read in 1 MiB blocks.
SOLVE_SHAPE = (2000, 500)
SOLVE_BUDGET = 1 * MiB
#: Vectors lsqr and svds keep (u, v, w, x and their temporaries; ARPACK's Lanczos basis of
#: ncv = 2k + 1 vectors of the smaller side, its work arrays): a generous count of vectors.
SOLVER_VECTORS = 24
#: Python's and the libraries' small allocations during a solve (the meter sees every one).
SLACK_BYTES = 1 * MiB


def solver_vector_bytes(shape) -> int:
    return SOLVER_VECTORS * (shape[0] + shape[1]) * 8


def _solves(a):
    b = np.sin(np.arange(SOLVE_SHAPE[0]))
    x = lsqr(a, b, atol=1e-12, btol=1e-12, iter_lim=200)[0]
    s = svds(a, k=3, v0=np.ones(min(SOLVE_SHAPE)), return_singular_vectors=False)
    return x, np.sort(s)


@requires_clear_refs
@pytest.mark.parametrize("storage, strategy, chunks", [
    ("hdf5", "hdf5-blocked", None), ("hdf5", "hdf5-direct", (50, 500)),
    # zarr-python's cost per slab makes a solve's hundreds of passes take 16 s here.
    pytest.param("zarr", "zarr-blocked", (50, 500), marks=pytest.mark.slow),
    ("zarr", "zarr-mmap", (50, 500))])
def test_lsqr_and_svds_through_the_operator_agree_with_the_matrix_in_ram(tmp_path, storage,
                                                                         strategy, chunks):
    spec = DatasetSpec(SOLVE_SHAPE, "float64", storage=storage, chunks=chunks, seed=9)
    in_ram = dense_array(spec)
    expected_x, expected_s = _solves(in_ram)
    with harness.operator(spec, strategy, root=tmp_path, memory_budget=SOLVE_BUDGET) as op:
        op.matvec(np.ones(SOLVE_SHAPE[1]))  # opened and warmed, as a user's first product
        (x, s), peak = memory.measure_peak(_solves, op)
        budget = op.budget_bytes
    np.testing.assert_allclose(x, expected_x, rtol=1e-6, atol=1e-6 * np.abs(expected_x).max())
    np.testing.assert_allclose(s, expected_s, rtol=1e-6)
    # Out of core: far below the 8 MB matrix, within the reader's budget and the solver's own.
    assert budget < in_ram.nbytes / 2
    assert peak.anon_increment <= budget + solver_vector_bytes(SOLVE_SHAPE) + SLACK_BYTES, \
        (peak.anon_increment, budget)
    assert peak.anon_increment < in_ram.nbytes / 2


@pytest.mark.slow
def test_auto_without_figures_measures_them_now_and_says_so(tmp_path):
    spec = DatasetSpec((30, 40), "float64", storage="hdf5", chunks=(10, 40), seed=4)
    with harness.operator(spec, figures=None, budget_bytes=64 * MiB, root=tmp_path,
                          uses=("matvec", "rmatvec", "matmat")) as op:
        assert "figures measured now" in op.choice.reason
        assert f"fastest within 64.0 MiB: {op.choice.strategy}" in op.choice.reason
        y = np.linspace(-1, 1, 30)
        np.testing.assert_allclose(op.rmatvec(y), dense_array(spec).T @ y, rtol=1e-12)


def test_a_users_file_named_as_measure_file_takes_it(tmp_path):
    """Strings in measure --file's syntax: an HDF5 dataset in a group, a zarr store."""
    import h5py
    import zarr

    a = np.random.default_rng(3).standard_normal((40, 70))
    with h5py.File(tmp_path / "mine.h5", "w") as f:
        f.create_dataset("group/A", data=a, chunks=(8, 70))
    store = zarr.create_array(store=str(tmp_path / "mine.zarr"), shape=a.shape, chunks=(8, 70),
                              dtype="float64", compressors=None)
    store[:] = a
    y, X = np.linspace(-1, 1, 40), np.ones((70, 3))
    for source, strategy in ((f"{tmp_path / 'mine.h5'}:/group/A", "hdf5-direct"),
                             (str(tmp_path / "mine.zarr"), "zarr-mmap")):
        with harness.operator(source, strategy, root=tmp_path / "data") as op:
            assert op.shape == (40, 70) and op.choice.storage.endswith("(yours)")
            np.testing.assert_allclose(op.rmatvec(y), a.T @ y, rtol=1e-12)
            np.testing.assert_allclose(op.matmat(X), a @ X, rtol=1e-12)
    with pytest.raises(ValueError, match="hdf5-direct"):
        harness.operator(str(tmp_path / "mine.zarr"), "hdf5-direct", root=tmp_path / "data")


@pytest.mark.parametrize("stored, strategies_", [
    ("int16", ("memmap", "memmap-rows", "memmap-blocked")),
    ("fortran", ("memmap-blocked",)),
    (">f8", ("hdf5-blocked", "hdf5-chunked", "hdf5-direct", "hdf5-rows", "hdf5-mmap"))])
def test_every_product_of_a_file_of_other_values_or_order(tmp_path, stored, strategies_):
    """Blocks converted as read (integers, big-endian) or a column-major file read by column
    blocks: Aᵀy and A @ X as numpy computes them on the file's values."""
    import h5py

    a = np.random.default_rng(8).integers(-300, 300, size=(23, 37))
    if stored == ">f8":
        source = f"{tmp_path / 'big.h5'}:/A"
        with h5py.File(tmp_path / "big.h5", "w") as f:
            f.create_dataset("A", data=a.astype(">f8"), chunks=(5, 9))
    else:
        np.save(tmp_path / "a.npy", a.astype("int16") if stored == "int16"
                else np.asfortranarray(a.astype("float32")))
        source = str(tmp_path / "a.npy")
    y, X = np.linspace(-1, 1, 23), np.arange(37 * 3).reshape(37, 3) / 10
    for name in strategies_:
        with harness.operator(source, name, root=tmp_path / "data") as op:
            rtol = 1e-6 if op.dtype == np.float32 else 1e-12
            yv, Xv = y.astype(op.dtype), X.astype(op.dtype)
            np.testing.assert_allclose(op.rmatvec(yv), a.T @ yv.astype(float), rtol=rtol,
                                       atol=rtol * 1e3, err_msg=name)
            np.testing.assert_allclose(op.matmat(Xv), a @ Xv.astype(float), rtol=rtol,
                                       atol=rtol * 1e3, err_msg=name)
