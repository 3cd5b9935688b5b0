"""hdf5-direct: equals the dense reference on every codec it decodes and on awkward chunkings
(edge chunks stored whole, chunks larger than the matrix, 1-row matrices, chunks skipped by an
optional filter), refuses a filter it cannot decode by naming it, and keeps to its budget."""

from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest

from harness.measuring import strategies
from harness.measuring.matrix.generate import dense_array, vector
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.runs.measure import measure_in_process
from harness.measuring.storage import codecs, inflate
from harness.measuring.storage.codecs import hdf5_filter_kwargs
from harness.measuring.strategies import hdf5_direct
from harness.measuring.strategies.base import Options

DIRECT = strategies.get("hdf5-direct")
DECODED_CODECS = [name for name in codecs.HDF5_NAMES if codecs.decodable(name)]
RTOL = {"float32": 1e-5, "float64": 1e-12}
DTYPE_PAIRS = [("float32", "float64"), ("float64", "float32")]  # (matrix, x): x of the other dtype
# (shape, chunks): chunks that divide nothing, a 1-row matrix, one chunk holding everything.
LAYOUTS = [((37, 1001), (8, 300)), ((1, 500), (1, 64)), ((23, 37), (23, 37))]


def expected(spec: DatasetSpec, x: np.ndarray) -> np.ndarray:
    return dense_array(spec).astype(np.float64) @ x.astype(spec.dtype).astype(np.float64)


def test_every_decodable_codec_is_listed():
    assert DECODED_CODECS == [None, "none", "gzip", "gzip-1", "gzip-4", "gzip-1-shuffle",
                              "gzip-4-shuffle", "blosc-lz4", "blosc-zstd", "zstd", "blosc"]


@pytest.mark.parametrize("codec", DECODED_CODECS[1:])
@pytest.mark.parametrize("dtypes", DTYPE_PAIRS, ids=lambda d: f"A{d[0]}-x{d[1]}")
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: "x".join(map(str, lay[0])))
def test_equals_the_dense_reference_on_every_codec(tmp_path, codec, dtypes, layout):
    (shape, chunks), (matrix_dtype, x_dtype) = layout, dtypes
    spec = DatasetSpec(shape, matrix_dtype, seed=5, storage="hdf5", chunks=chunks,
                       compression=codec, values="smooth")
    x = vector(shape[1], x_dtype)
    for options in ({}, {"memory_budget": 1}):  # two workers (this machine's cores), one
        y = strategies.matvec("hdf5-direct", spec, x, root=tmp_path, **options)
        assert y.dtype == np.dtype(matrix_dtype) and y.shape == (shape[0],)
        np.testing.assert_allclose(y, expected(spec, x), rtol=RTOL[matrix_dtype],
                                   atol=RTOL[matrix_dtype] * shape[1])


def _write(path, matrix: np.ndarray, chunks, codec, **extra) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("A", data=matrix, chunks=chunks, **hdf5_filter_kwargs(codec), **extra)


def _direct_product(spec: DatasetSpec, path, x, **options) -> np.ndarray:
    with DIRECT.opener(spec, path, Options(**options)) as operand:
        return operand.matvec(x)


@pytest.mark.parametrize("codec", ["gzip-1-shuffle", "blosc-lz4", "zstd", None])
def test_chunks_larger_than_the_matrix_are_read_in_their_valid_corner(tmp_path, codec):
    # An extendable dataset may have chunks larger than itself: HDF5 stores them whole.
    spec = DatasetSpec((5, 7), "float64", seed=2, storage="hdf5", chunks=(5, 7))
    matrix = dense_array(spec)
    path = tmp_path / "big-chunks.h5"
    _write(path, matrix, (16, 16), codec, maxshape=(None, None))
    with h5py.File(path) as f:
        assert f["A"].chunks == (16, 16)
    x = vector(7, "float32")
    np.testing.assert_allclose(_direct_product(spec, path, x), expected(spec, x), rtol=1e-12)


def test_chunks_whose_filters_were_skipped_when_written_are_decoded_by_their_mask(tmp_path):
    # An optional filter that does not shrink a chunk is skipped for it (filter mask bit set):
    # chunk (0, 0) holds shuffled but not deflated bytes, chunk (4, 0) deflated, unshuffled.
    spec = DatasetSpec((8, 6), "float32", seed=4, storage="hdf5", chunks=(4, 6))
    matrix = dense_array(spec)
    path = tmp_path / "masks.h5"
    _write(path, matrix, (4, 6), "gzip-1-shuffle")
    with h5py.File(path, "r+") as f:
        dset = f["A"]
        shuffled = matrix[:4].view(np.uint8).reshape(-1, 4).T.copy().tobytes()
        dset.id.write_direct_chunk((0, 0), shuffled, filter_mask=0b10)
        dset.id.write_direct_chunk((4, 0), zlib.compress(matrix[4:].tobytes(), 1),
                                   filter_mask=0b01)
    with h5py.File(path) as f:  # reopened: HDF5 reads them back as written
        masks = [f["A"].id.get_chunk_info(i).filter_mask for i in range(2)]
        np.testing.assert_array_equal(f["A"][...], matrix)
    assert masks == [0b10, 0b01]
    x = vector(6, "float64")
    np.testing.assert_allclose(_direct_product(spec, path, x), expected(spec, x), rtol=1e-5)


@pytest.mark.parametrize("codec, named", [("lzf", "lzf"), ("lz4", "lz4"),
                                          ("bitshuffle", "bitshuffle")])
def test_a_filter_it_cannot_decode_is_refused_by_name(tmp_path, codec, named):
    spec = DatasetSpec((6, 10), storage="hdf5", chunks=(3, 10), compression=codec)
    assert not DIRECT.accepts(spec)
    assert codecs.undecodable_filters(codec) == [named]
    assert f"compression='{codec}'" in DIRECT.why_not(spec) and named in DIRECT.refusal
    path = tmp_path / f"{codec}.h5"
    _write(path, dense_array(spec), (3, 10), codec)
    with pytest.raises(codecs.UnsupportedFilter, match=f"cannot decode the HDF5 filter {named}"):
        _direct_product(spec.with_storage("hdf5", (3, 10)), path, vector(10))


def test_a_checksum_filter_is_refused_too(tmp_path):
    spec = DatasetSpec((6, 10), storage="hdf5", chunks=(3, 10), compression="gzip")
    path = tmp_path / "fletcher.h5"
    _write(path, dense_array(spec), (3, 10), "gzip", fletcher32=True)
    with pytest.raises(codecs.UnsupportedFilter, match="fletcher32 \\(filter id 3\\)"):
        _direct_product(spec, path, vector(10))


def test_a_contiguous_dataset_is_refused():
    spec = DatasetSpec((6, 10), storage="hdf5")
    assert not DIRECT.accepts(spec) and "contiguous" in DIRECT.refusal


def test_budget_is_the_workers_buffers_and_follows_memory_budget():
    spec = DatasetSpec((100, 1000), "float32", storage="hdf5", chunks=(10, 1000),
                       compression="gzip-1-shuffle")
    chunk = 10 * 1000 * 4
    # stored, decoded, scratch, and the inflate library's state (and its decoded copy)
    per_worker = hdf5_direct.stored_buffer_bytes(chunk) + 2 * chunk + inflate.working_bytes(chunk)
    in_place = inflate.best().name in ("zlib", "libdeflate")
    assert inflate.working_bytes(chunk) == (64 << 10) + (0 if in_place else chunk)
    assert hdf5_direct.worker_bytes(spec) == per_worker
    workers = min(hdf5_direct.usable_cores(), 10)
    assert DIRECT.extra_memory_bytes(spec) == workers * per_worker
    assert DIRECT.extra_memory_bytes(spec, memory_budget=1) == per_worker  # one worker at least
    one_stage = DatasetSpec((100, 1000), "float32", storage="hdf5", chunks=(10, 1000),
                            compression="blosc-lz4")
    assert hdf5_direct.worker_bytes(one_stage) == (hdf5_direct.stored_buffer_bytes(chunk) + chunk
                                                   + (4 << 20))  # blosc's blocks


def test_profile_says_where_a_pass_went(tmp_path):
    spec = DatasetSpec((40, 2000), storage="hdf5", chunks=(10, 2000), compression="blosc-lz4",
                       values="smooth")
    with DIRECT.open(spec, root=tmp_path) as operand:
        operand.matvec(vector(2000))
        profile = operand.profile
    assert profile["chunks"] == 4 and profile["decoded_bytes"] == spec.dense_bytes
    assert 0 < profile["stored_bytes"] < spec.dense_bytes
    # Four chunks were read, decoded and multiplied: each of those steps took some time.
    assert all(profile[k] > 0 for k in ("read_seconds", "decode_seconds", "multiply_seconds",
                                        "worker_cpu_seconds"))
    assert all(profile[k] >= 0 for k in ("wait_seconds", "add_seconds"))


@pytest.mark.slow
def test_anonymous_increment_stays_within_budget_plus_8_mib(tmp_path):
    spec = DatasetSpec((64, 100_000), "float32", storage="hdf5", chunks=(8, 100_000),
                       compression="gzip-1-shuffle", values="smooth")
    m = measure_in_process("hdf5-direct", spec, repeat=1, root=tmp_path)
    assert m.budget_bytes == DIRECT.extra_memory_bytes(spec)
    assert m.anon_increment_bytes <= m.budget_bytes + 8 * 2**20
    assert m.max_abs_error < 1e-2
    assert m.stored_bytes < spec.dense_bytes and m.compression_ratio > 1.5
    assert m.profile["workers"] == min(hdf5_direct.usable_cores(), 8)
