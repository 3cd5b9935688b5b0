"""Aᵀy, A @ X and AᵀY of every strategy equal the dense reference (numpy on the generated
values) on the awkward inputs the product is tested on: 1 row, 1 column, chunks that do not
divide the shape or exceed it, both dtypes, compressed and sparse storages."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import requires_clear_refs
from test_strategies import IN_PROCESS, SHAPES, storages_of

from harness.measuring import strategies
from harness.measuring.matrix.generate import dense_array
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.strategies.capabilities import MultiColumn, Transposes
from harness.measuring.strategies.products import PRODUCTS, Product, operand_array

RTOL = {"float32": 2e-5, "float64": 1e-12}
COLUMNS = (1, 3, 64)


def operands(rows: int, cols: int, dtype: str, seed: int) -> dict:
    """Inputs of every product, of the other dtype than the matrix (strategies cast them)."""
    other = "float64" if dtype == "float32" else "float32"
    rng = np.random.default_rng(seed)
    inputs = {"rmatvec": rng.standard_normal(rows).astype(other)}
    for k in COLUMNS:
        inputs[f"matmat-{k}"] = rng.standard_normal((cols, k)).astype(other)
    inputs["rmatmat-3"] = rng.standard_normal((rows, 3)).astype(other)
    return inputs


def reference(matrix: np.ndarray, name: str, v: np.ndarray) -> np.ndarray:
    """The product in float64 of the generated values, ``v`` first cast to the matrix dtype
    (as the strategies do)."""
    a = matrix.astype(np.float64)
    v = v.astype(matrix.dtype).astype(np.float64)
    return a.T @ v if name.startswith("r") else a @ v


def check(operand, name: str, v: np.ndarray, expected: np.ndarray, dtype: str, label) -> None:
    method = getattr(operand, name.split("-")[0])
    result = method(v)
    assert result.shape == expected.shape, label
    assert result.dtype == np.dtype(dtype), label
    # atol: a sum of terms that cancel is judged against the size of its terms.
    scale = float(np.abs(expected).max(initial=0.0)) or 1.0
    np.testing.assert_allclose(result, expected, rtol=RTOL[dtype], atol=RTOL[dtype] * scale,
                               err_msg=str(label))


@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("density", [None, 0.3])
def test_every_strategy_transposes_and_multiplies_columns_like_the_dense_reference(
        tmp_path_factory, shape, dtype, density):
    root = tmp_path_factory.getbasetemp() / "products"
    base = DatasetSpec(shape, dtype, density=density, seed=5)
    matrix = dense_array(base)
    inputs = operands(*shape, dtype, seed=11)
    expected = {name: reference(matrix, name, v) for name, v in inputs.items()}
    checked = set()
    for spec in storages_of(base):
        for name in IN_PROCESS:
            if not strategies.get(name).accepts(spec):
                continue
            for options in ({}, {"block_rows": 2}):
                with strategies.get(name).open(spec, root=root, **options) as operand:
                    for product, v in inputs.items():
                        check(operand, product, v, expected[product], dtype,
                              (name, spec, options, product))
                checked.add(name)
    must_run = set(IN_PROCESS) - {"dia"}
    if density is None:
        must_run -= set(strategies.names("sparse"))
    assert must_run <= checked


@pytest.mark.parametrize("name", ["memmap-blocked", "hdf5-blocked", "hdf5-direct", "zarr-mmap",
                                  "zarr-blocked", "csr-hdf5-blocked", "dask-threads"])
def test_out_of_core_readers_transpose_and_multiply_columns(tmp_path, name):
    """The fast check (the slow test above covers every strategy and storage)."""
    strategy = strategies.get(name)
    base = DatasetSpec((23, 37), "float32", density=0.3 if name.startswith("csr") else None,
                       seed=2)
    spec = next(s for s in storages_of(base) if strategy.accepts(s))
    matrix = dense_array(base)
    inputs = operands(23, 37, "float32", seed=4)
    with strategy.open(spec, root=tmp_path, block_rows=5) as operand:
        for product, v in inputs.items():
            check(operand, product, v, reference(matrix, product, v), "float32", product)


def test_every_strategy_declares_the_products_its_operand_has(tmp_path):
    spec = DatasetSpec((6, 5), "float64", density=0.5, seed=1)
    for name in strategies.names():
        strategy = strategies.get(name)
        assert set(strategy.products) <= set(PRODUCTS), name
        if strategy.spans_processes:
            continue  # checked in test_distributed.py (a cluster)
        candidates = [s for s in storages_of(spec) if strategy.accepts(s)]
        with strategy.open(candidates[0], root=tmp_path) as operand:
            assert isinstance(operand, Transposes) == strategy.offers("rmatvec"), name
            assert isinstance(operand, MultiColumn) == strategy.offers("matmat"), name


def test_a_product_outside_the_four_is_refused():
    with pytest.raises(ValueError, match="unknown product 'solve'"):
        strategies.get("dense").offers("solve")


@pytest.mark.parametrize("name, v, message", [
    ("rmatvec", np.ones(5), r"y must be a vector of 4 elements"),
    ("matmat", np.ones(5), r"X must be a \(5, k\) array"),
    ("matmat", np.ones((4, 2)), r"X must be a \(5, k\) array"),
    ("rmatmat", np.ones((5, 2)), r"Y must be a \(4, k\) array"),
])
def test_an_operand_of_the_wrong_shape_is_refused_naming_the_shape(tmp_path, name, v, message):
    with (strategies.get("dense").open(DatasetSpec((4, 5)), root=tmp_path) as operand,
          pytest.raises(ValueError, match=message)):
        getattr(operand, name)(v)


def test_transposed_blocks_add_up_by_column_and_rows_by_range():
    a = np.arange(12.0).reshape(3, 4)
    y = np.array([1.0, -2.0, 0.5])
    p = Product(a.shape, operand_array(y, a.shape, "float64", True, False), transpose=True)
    p.add(0, 0, a[:2, :3])   # blocks of every shape, in any order
    p.add(2, 0, a[2:, :3])
    p.add(0, 3, a[:, 3:])
    np.testing.assert_array_equal(p.out, [-4.0, -4.5, -5.0, -5.5])  # by hand
    rows = Product(a.shape, np.ones(4), transpose=False, first=1, stop=3)
    rows.put(1, a[1:3])
    np.testing.assert_array_equal(rows.out, [22.0, 38.0])


# ----------------------------------------------------------------------- measured like A @ x

@pytest.mark.parametrize("product, columns", [("rmatvec", 1), ("matmat", 4), ("rmatmat", 3)])
def test_measure_times_and_checks_each_product(tmp_path, product, columns):
    from harness.measuring.runs.measure import measure_in_process

    spec = DatasetSpec((40, 300), "float64", storage="hdf5", chunks=(7, 300), seed=3)
    m = measure_in_process("hdf5-direct", spec, repeat=1, root=tmp_path, product=product,
                           columns=columns)
    record = m.to_record()
    assert (record["product"], record["columns"]) == (product, columns)
    assert record["seconds_per_column"] == pytest.approx(record["seconds"] / columns)
    # Checked against the float64 product of the generated values (sources' reference).
    assert m.max_abs_error is not None and m.max_abs_error < 1e-10
    assert m.matrix_bytes == 40 * 300 * 8  # GB/s are bytes of matrix read per second


def test_measure_refuses_columns_for_a_one_column_product(tmp_path):
    from harness.measuring.runs.measure import measure_in_process

    with pytest.raises(ValueError, match="rmatvec takes one column, got columns=4"):
        measure_in_process("dense", DatasetSpec((4, 5)), root=tmp_path, product="rmatvec",
                           columns=4)


def test_measure_command_puts_the_products_side_by_side(tmp_path):
    import json
    import subprocess
    import sys

    command = [sys.executable, "-m", "harness", "measure", "--shape", "30x50",
               "--strategies", "dense,memmap-blocked", "--product", "matvec,rmatvec,matmat",
               "--columns", "1,16", "--repeat", "1", "--no-roofline", "--format", "json",
               "--data-dir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    seen = {(r["strategy"], r["product"], r["columns"]) for r in records}
    assert seen == {(s, p, k) for s in ("dense", "memmap-blocked")
                    for p, k in (("matvec", 1), ("rmatvec", 1), ("matmat", 1), ("matmat", 16))}
    assert all(r["max_abs_error"] < 1e-4 for r in records)
    # Ratios are taken against the in-RAM strategy's same product.
    assert all(r["ratio_to_dense"] == 1.0 for r in records if r["strategy"] == "dense")
    bad = subprocess.run([*command[:-4], "--product", "solve"], capture_output=True, text=True,
                         check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "unknown product 'solve'" in bad.stderr


@requires_clear_refs
def test_passes_from_a_cold_cache_time_each_pass_and_meter_the_whole_run(tmp_path):
    from harness.measuring.runs.child import passes_in_subprocess
    from harness.measuring.runs.passes import measure_passes

    spec = DatasetSpec((64, 20_000), "float64", storage="hdf5", chunks=(8, 20_000), seed=1)
    # A fresh process, as measure runs it: this one's other threads (a dask client left by
    # another test) would be metered too.
    result = passes_in_subprocess("hdf5-blocked", spec, passes=4, root=tmp_path,
                                  memory_budget=2**20)
    assert len(result["pass_seconds"]) == 4 and min(result["pass_seconds"]) > 0
    assert result["product"] == "lsqr" and result["matrix_bytes"] == spec.dense_bytes
    # Out of core: the run's anonymous memory is the reader's buffers, not the 10 MB matrix.
    assert result["anon_increment_bytes"] <= result["budget_bytes"] + 2**20 < spec.dense_bytes / 2
    assert result["resident_fraction_after"] == pytest.approx(1.0)  # read through the cache
    with pytest.raises(ValueError, match="passes must be >= 1"):
        measure_passes("hdf5-blocked", spec, passes=0, root=tmp_path)


@pytest.mark.parametrize("direction, columns, product", [
    ("matvec", 1, "matvec"), ("matvec", 16, "matmat"), ("rmatvec", 1, "rmatvec"),
    ("rmatvec", 4, "rmatmat")])
def test_a_product_class_combination_names_the_product_it_times(direction, columns, product):
    from harness.measuring.runs import profiles

    assert profiles.product_of(direction, columns) == product


def test_every_profile_has_product_grids_over_their_parameter_names():
    from harness import names
    from harness.measuring.runs import profiles

    for name in profiles.PROFILES:
        grids = profiles.get(name).product_grids
        assert list(grids) == list(names.PRODUCT_CLASSES)
        assert all(list(grid) == names.param_names(cls) for cls, grid in grids.items())
        assert all(strategies.get(s).out_of_core
                   for s in grids["products.ProductColumns"]["strategy"])
    assert profiles.get("default").product_grids["products.ProductColumns"]["columns"] == \
        [1, 4, 16, 64]


def test_measure_passes_command_times_each_pass_per_strategy(tmp_path):
    import json
    import subprocess
    import sys

    command = [sys.executable, "-m", "harness", "measure", "--shape", "20x3000", "--chunks",
               "5x3000", "--strategies", "memmap-blocked,hdf5-direct,dask-distributed",
               "--passes", "3", "--format", "json", "--data-dir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert [r["strategy"] for r in records] == ["memmap-blocked", "hdf5-direct"]
    assert all(len(r["pass_seconds"]) == 3 and r["product"] == "lsqr" for r in records)
    bad = subprocess.run([sys.executable, "-m", "harness", "measure", "--passes", "0"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_the_readers_a_dask_worker_opens_serve_every_product_of_a_row_range():
    from harness.measuring.strategies.capabilities import ProductRows, RowRanges
    from harness.measuring.strategies.dask import WORKER_READERS
    from harness.measuring.strategies.hdf5 import BlockedOperand, MappedChunksOperand
    from harness.measuring.strategies.memmap import BlockedMapOperand
    from harness.measuring.strategies.zarr import MappedChunkFilesOperand, SlabOperand
    from harness.measuring.strategies.zarr_direct import DirectOperand as ZarrDirectOperand

    assert sorted(n for names in WORKER_READERS.values() for n in names) == \
        ["hdf5-blocked", "hdf5-mmap", "zarr-blocked", "zarr-direct", "zarr-mmap"]
    for operand in (BlockedOperand, MappedChunksOperand, BlockedMapOperand,
                    MappedChunkFilesOperand, SlabOperand, ZarrDirectOperand):
        assert issubclass(operand, ProductRows) and issubclass(operand, RowRanges), operand


@pytest.mark.parametrize("columns", [False, True])
def test_an_unaligned_operand_is_handed_to_the_product_aligned_with_its_values(columns):
    # As a dask worker receives x: inside a message's frame, at an odd address.
    shape = (101, 2) if columns else (101,)
    raw = bytearray(4 * 202 + 1)
    v = np.frombuffer(raw, dtype=np.float32, offset=1, count=int(np.prod(shape))).reshape(shape)
    v[...] = np.arange(v.size, dtype=np.float32).reshape(shape)
    assert not v.flags.aligned
    got = operand_array(v, (3, 101), "float32", False, columns)
    assert got.flags.aligned and got.flags.c_contiguous and got.dtype == np.float32
    np.testing.assert_array_equal(got, np.arange(v.size, dtype=np.float32).reshape(shape))
