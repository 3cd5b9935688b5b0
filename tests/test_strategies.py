"""harness.measuring.strategies: every strategy equals the dense result on awkward inputs; no hidden copies."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness.measuring import strategies
from harness.measuring.matrix.generate import dense_array, nnz, vector
from harness.measuring.matrix.spec import DatasetSpec, Problem
from harness.measuring.meters import memory
from harness.measuring.storage.datasets import materialize
from harness.measuring.strategies.hdf5 import _open_mmap, stored_chunk_shape
from harness.measuring.strategies.sparse import format_bytes

RTOL = {"float32": 1e-5, "float64": 1e-12}

# Awkward shapes: 1 row, 1 column, and a shape no chunk below divides.
SHAPES = [(1, 61), (47, 1), (23, 37)]
# Chunks that do not divide the shape, larger than the matrix, h5py's guess; one compressed.
HDF5_LAYOUTS = [(None, None), ((5, 7), None), ((100, 100), None), ("auto", None), ((4, 9), "gzip")]
DTYPE_PAIRS = [("float32", "float64"), ("float64", "float32")]  # (matrix, x): x of the other dtype
DENSITIES = [None, 0.0, 0.01, 1.0]


def storages_of(base: DatasetSpec) -> list[DatasetSpec]:
    specs = [base.with_storage("ram"), base.with_storage("raw")]
    specs += [base.with_storage("hdf5", chunks, compression) for chunks, compression in HDF5_LAYOUTS]
    specs += [base.with_storage("zarr", (3, 7)), base.with_storage("zarr", (3, 7), "zstd")]
    if base.density is not None:
        specs += [base.with_storage("npz"), base.with_storage("csr-hdf5")]
    return specs


def reference(base: DatasetSpec, x: np.ndarray) -> np.ndarray:
    # Strategies cast x to the matrix dtype; the reference does the same, then sums in float64.
    return dense_array(base).astype(np.float64) @ x.astype(base.dtype).astype(np.float64)


#: Strategies whose product runs in this process. A cluster strategy (dask-distributed) is
#: checked on awkward inputs in test_distributed.py: starting its tasks on every case here
#: would cost minutes.
IN_PROCESS = [name for name in strategies.names() if not strategies.get(name).spans_processes]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("strategy-data")


@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dtypes", DTYPE_PAIRS, ids=lambda d: f"A{d[0]}-x{d[1]}")
@pytest.mark.parametrize("density", DENSITIES, ids=lambda d: f"density-{d}")
def test_every_strategy_equals_the_dense_result(root, shape, dtypes, density):
    matrix_dtype, x_dtype = dtypes
    base = DatasetSpec(shape, matrix_dtype, density=density, seed=3)
    x = vector(shape[1], x_dtype)
    expected = reference(base, x)
    checked = set()
    for spec in storages_of(base):
        for name in IN_PROCESS:
            if not strategies.get(name).accepts(spec):
                continue
            for options in ({}, {"block_rows": 2}, {"memory_budget": 1, "chunk_cache_bytes": 0}):
                y = strategies.matvec(name, spec, x, root=root, **options)
                assert y.shape == (shape[0],), (name, spec)
                assert y.dtype == np.dtype(matrix_dtype), (name, spec)
                np.testing.assert_allclose(y, expected, rtol=RTOL[matrix_dtype], atol=0,
                                           err_msg=f"{name} on {spec} with {options}")
                checked.add(name)
    # Every strategy ran on some storage of this matrix (dia is refused on a 1-row matrix).
    must_run = set(IN_PROCESS) - {"dia"}
    if density is None:
        must_run -= set(strategies.names("sparse"))
    assert must_run <= checked


def test_names_list_every_family():
    assert strategies.names("dense") == ["dense"]
    assert set(strategies.names("memmap")) == {"memmap", "memmap-rows", "memmap-blocked"}
    assert set(strategies.names("hdf5")) == {"hdf5-rows", "hdf5-read", "hdf5-blocked",
                                             "hdf5-chunked", "hdf5-mmap", "hdf5-direct"}
    assert set(strategies.names("sparse")) == {"csr", "csc", "coo", "bsr", "dia", "lil", "dok",
                                               "csr-hdf5-blocked"}


def test_questions_pick_the_strategies_a_benchmark_class_compares():
    assert strategies.names("hdf5", question="chunk_cache") == ["hdf5-rows", "hdf5-blocked"]
    assert strategies.names("hdf5", question="compression") == [
        "hdf5-blocked", "hdf5-chunked", "hdf5-direct"]
    assert strategies.names("sparse", question="compression") == []


@pytest.mark.parametrize("name, storage", [
    ("dense", "ram"), ("memmap-rows", "raw"), ("hdf5-chunked", "hdf5"), ("csr", "npz"),
    ("csr-hdf5-blocked", "csr-hdf5"),
])
def test_each_strategy_reads_a_problem_from_its_preferred_storage(name, storage):
    problem = Problem((10, 20), density=0.5, chunks=(5, 5), compression="gzip")
    spec = strategies.get(name).dataset_for(problem)
    assert spec == problem.in_storage(storage)
    assert (spec.chunks, spec.compression) == (((5, 5), "gzip") if storage == "hdf5"
                                               else (None, None))


def test_a_preferred_storage_the_strategy_reads_is_kept():
    problem = Problem((10, 20), density=0.5)
    assert strategies.get("dense").dataset_for(problem, prefer="csr-hdf5").storage == "csr-hdf5"
    assert strategies.get("csr").dataset_for(problem, prefer="raw").storage == "npz"


def test_a_problem_a_strategy_cannot_read_says_why_briefly_and_fully():
    with pytest.raises(strategies.CannotRead, match="'csr' needs storage") as dense_matrix:
        strategies.get("csr").dataset_for(Problem((4, 4)))
    assert dense_matrix.value.reason == "needs storage ['npz', 'csr-hdf5'] with a density"
    with pytest.raises(ValueError, match="does not accept DatasetSpec") as contiguous:
        strategies.get("hdf5-chunked").dataset_for(Problem((4, 4)))
    assert contiguous.value.reason == strategies.get("hdf5-chunked").refusal


def test_resident_memory_is_the_matrix_in_ram_and_one_block_out_of_core():
    spec = DatasetSpec((1000, 100000), "float32", storage="hdf5", chunks=(10, 100000))
    assert strategies.get("hdf5-read").resident_bytes(spec) == 1000 * 100000 * 4
    assert strategies.get("hdf5-blocked").resident_bytes(spec) == strategies.DEFAULT_MEMORY_BUDGET_BYTES
    assert strategies.get("hdf5-blocked").resident_bytes(spec, memory_budget=2**20) == 2**20
    assert strategies.get("memmap").resident_bytes(DatasetSpec((10, 10))) == 400


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "bsr", "dia", "lil", "dok"])
def test_sparse_resident_memory_and_budget_share_one_model_per_format(fmt):
    spec = DatasetSpec((1000, 2000), density=0.01, storage="npz")
    strategy = strategies.get(fmt)
    assert strategy.resident_bytes(spec) == format_bytes(spec, fmt)
    # The budget holds the loaded CSR as well while it is converted: never less.
    assert strategy.extra_memory_bytes(spec) >= strategy.resident_bytes(spec)
    assert strategy.needed_ram_bytes(spec) == strategy.extra_memory_bytes(spec)


def test_int64_indices_only_when_rows_columns_or_nonzeros_need_them():
    # 100000 x 100000 has more elements than int32 counts, but few nonzeros: int32 indices.
    spec = DatasetSpec((100000, 100000), density=1e-6, storage="npz")
    assert format_bytes(spec, "csr") == nnz(spec) * (4 + 4) + 100001 * 4


def test_row_loop_estimate_grows_with_read_amplification():
    # Square 512 x 512 chunks: each row reads a row of chunks that an 8 MiB cache cannot keep.
    spec = DatasetSpec((1000, 100000), storage="hdf5", chunks=(512, 512))
    rows = strategies.get("hdf5-rows")
    amplified = rows.estimated_pass_seconds(spec, chunk_cache_bytes=8 * 2**20)
    whole_row_cached = rows.estimated_pass_seconds(spec, chunk_cache_bytes=512 * 2**20)
    assert amplified > 50 * whole_row_cached
    assert stored_chunk_shape(spec) == (512, 512)
    blocked = strategies.get("hdf5-blocked").estimated_pass_seconds(spec, chunk_cache_bytes=0)
    assert blocked == pytest.approx(1000 * 100000 * 4 / strategies.base.ASSUMED_READ_BYTES_PER_SECOND)


def test_unknown_strategy_option_and_family_are_refused():
    with pytest.raises(KeyError, match="known strategies"):
        strategies.get("gpu")
    with pytest.raises(ValueError, match="unknown family"):
        strategies.names("tape")
    with pytest.raises(TypeError, match="block_row"):
        strategies.get("hdf5-blocked").extra_memory_bytes(DatasetSpec((4, 4)), block_row=2)


def test_wrong_storage_is_refused_with_the_storage_to_use(root):
    with pytest.raises(ValueError, match="storage='hdf5'"):
        strategies.matvec("hdf5-blocked", DatasetSpec((4, 4), storage="raw"), vector(4), root=root)


def test_wrong_x_shape_is_refused(root):
    with pytest.raises(ValueError, match="vector of 4 elements"):
        strategies.matvec("dense", DatasetSpec((4, 4)), vector(5), root=root)


def test_hdf5_mmap_refuses_compressed_data_clearly(root):
    spec = DatasetSpec((10, 10), storage="hdf5", chunks=(5, 5), compression="gzip")
    assert not strategies.get("hdf5-mmap").accepts(spec)
    path = materialize(spec, root)
    options = strategies.base.resolve_options({})
    with pytest.raises(ValueError, match="filtered"), _open_mmap(spec, path, options):
        pass


def test_hdf5_block_rows_are_whole_chunk_rows():
    spec = DatasetSpec((1000, 100), storage="hdf5", chunks=(7, 10))
    budget = strategies.get("hdf5-blocked").extra_memory_bytes(spec, memory_budget=100 * 400,
                                                               chunk_cache_bytes=0)
    # Two slabs fit the budget: 50 rows each, rounded down to 7 chunk-rows of 7 rows.
    assert budget == 2 * 49 * 400


def test_hdf5_blocked_cuts_tall_uncompressed_chunks_to_the_budget():
    # Column-shaped chunks span every row: one chunk-row is the whole 4 MB matrix.
    tall = DatasetSpec((1000, 1000), storage="hdf5", chunks=(1000, 10))
    budget = strategies.get("hdf5-blocked").extra_memory_bytes(tall, memory_budget=2**20,
                                                               chunk_cache_bytes=0)
    assert budget <= 2**20
    # A chunk cache that cannot hold a chunk-row would only thrash: it is left out.
    budget = strategies.get("hdf5-blocked").extra_memory_bytes(tall, memory_budget=2**20,
                                                               chunk_cache_bytes=2**20)
    assert budget <= 2**20
    # Compressed chunks are still read whole (decoded once), and the budget says so; with
    # what HDF5 allocates to decode one chunk: the stored chunk, the filter's output and
    # zlib's inflate state.
    packed = dataclasses.replace(tall, compression="gzip")
    budget = strategies.get("hdf5-blocked").extra_memory_bytes(packed, memory_budget=2**20,
                                                               chunk_cache_bytes=0)
    assert budget == 2 * 1000 * 1000 * 4 + 2 * 1000 * 10 * 4 + 64 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("chunks", [(2000, 100), (512, 512)])
def test_hdf5_blocked_on_tall_chunks_stays_within_the_memory_budget(root, chunks):
    # 80 MB matrix whose chunk-rows (80 MB, 20 MB) dwarf the 4 MiB budget and the 8 MiB cache.
    spec = DatasetSpec((2000, 10000), "float32", storage="hdf5", chunks=chunks)
    x = vector(10000)
    options = {"memory_budget": 4 * 2**20, "chunk_cache_bytes": 8 * 2**20}

    def open_and_multiply():  # the slab buffers are made when the operand opens
        with strategies.get("hdf5-blocked").open(spec, root=root, **options) as operand:
            return operand.matvec(x)

    open_and_multiply()  # write the file, warm the page cache and lazy imports
    y, peak = memory.measure_peak(open_and_multiply)
    assert np.allclose(y, dense_array(spec).astype(np.float64) @ x, rtol=1e-4)
    assert peak.anon_increment <= 4 * 2**20 + 8 * 2**20, peak


def test_dia_refuses_a_matrix_with_too_many_diagonals():
    spec = DatasetSpec((1000, 100000), density=0.001, storage="npz")
    assert not strategies.get("dia").accepts(spec)
    assert strategies.get("csr").accepts(spec)


NO_COPY_STRATEGIES = ["memmap", "memmap-blocked", "hdf5-mmap", "hdf5-blocked", "csr", "csr-hdf5-blocked"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NO_COPY_STRATEGIES)
def test_x_of_another_dtype_does_not_upcast_the_matrix(root, name):
    # float32 matrix of 64 MB; x float64. An upcast copy would add 128 MB of anonymous memory.
    storage = strategies.get(name).storage[0]
    density = 1.0 if storage in ("npz", "csr-hdf5") else None
    shape = (800, 20000) if density is None else (400, 20000)
    spec = DatasetSpec(shape, "float32", density=density, storage=storage)
    x = vector(shape[1], "float64")
    budget_options = {"memory_budget": 4 * 2**20, "chunk_cache_bytes": 2**20}
    budget = strategies.get(name).extra_memory_bytes(spec, **budget_options)
    with strategies.get(name).open(spec, root=root, **budget_options) as operand:
        operand.matvec(x)  # warm the page cache and any lazy imports
        y, peak = memory.measure_peak(operand.matvec, x)
    assert y.dtype == np.float32
    extra = budget if name == "csr" else 0  # csr's budget is the loaded matrix, already there
    assert peak.anon_increment <= budget - extra + 8 * 2**20, (peak, budget)


@pytest.mark.slow
def test_memmap_blocked_keeps_mapped_pages_within_its_block(root, monkeypatch):
    # Pages are unmapped only for a matrix large against available RAM: pretend this one is.
    monkeypatch.setattr(strategies.memmap, "RELEASE_ABOVE_FRACTION_OF_AVAILABLE", 0.0)
    spec = DatasetSpec((1000, 20000), "float32")  # 80 MB
    x = vector(20000)
    with strategies.get("memmap-blocked").open(spec, root=root, memory_budget=4 * 2**20) as op:
        op.matvec(x)
        _, blocked = memory.measure_peak(op.matvec, x)
    with strategies.get("memmap").open(spec, root=root) as op:
        op.matvec(x)
    with strategies.get("memmap").open(spec, root=root) as op:
        _, whole = memory.measure_peak(op.matvec, x)
    assert blocked.file_increment <= 12 * 2**20
    assert whole.file_increment >= 70 * 2**20  # the plain memmap keeps the whole file mapped


def test_option_errors_state_the_allowed_minimum():
    dense = strategies.get("dense")
    with pytest.raises(ValueError, match="chunk_cache_bytes must be an integer >= 0"):
        dense.extra_memory_bytes(DatasetSpec((4, 4)), chunk_cache_bytes=-1)
    with pytest.raises(ValueError, match="block_rows must be an integer >= 1"):
        dense.extra_memory_bytes(DatasetSpec((4, 4)), block_rows=0)
    assert dense.extra_memory_bytes(DatasetSpec((4, 4)), chunk_cache_bytes=0) == 4 * 4 * 4


@pytest.mark.parametrize("name,storage,chunks", [
    ("zarr-mmap", "zarr", (7, 33)), ("zarr-mmap", "zarr", (500, 500)), ("zarr-blocked", "zarr", (7, 33)),
    ("tensorstore-blocked", "zarr", (7, 33)), ("hdf5-mmap", "hdf5", (7, 33)),
    ("hdf5-mmap", "hdf5", None), ("hdf5-blocked", "hdf5", (7, 33))])
def test_matvec_rows_is_those_rows_of_the_product(tmp_path, name, storage, chunks):
    """What a dask worker asks its reader for: any row range, aligned to chunks or not."""
    spec = DatasetSpec((45, 97), "float32", storage=storage, chunks=chunks)
    a = dense_array(spec).astype(np.float64)
    x = vector(97, "float64")
    with strategies.get(name).open(spec, root=tmp_path, block_rows=4) as operand:
        for first, stop in ((0, 45), (0, 1), (3, 11), (14, 15), (40, 45), (7, 7)):
            y = operand.matvec_rows(x, first, stop)
            assert y.shape == (stop - first,) and y.dtype == np.float32
            np.testing.assert_allclose(y, (a @ x)[first:stop], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape,dtype", [((3, 5), "float32"), ((160, 1000), "float64"), ((7,), "int64")])
def test_read_buffers_are_page_aligned_zeroed_and_writable(shape, dtype):
    from harness.measuring.strategies.base import read_buffer

    buffer = read_buffer(shape, dtype)
    assert buffer.shape == shape and buffer.dtype == np.dtype(dtype)
    assert buffer.ctypes.data % 4096 == 0
    assert buffer.flags.c_contiguous and buffer.flags.writeable and not buffer.any()
