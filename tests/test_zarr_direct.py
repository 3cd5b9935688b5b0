"""zarr-direct: equals a dense reference computed from the generated values themselves (numpy,
no file, no strategy) on every codec the zarr storage writes, both dtypes and awkward layouts
(chunks that do not divide the shape, 1 row, 1 column, chunks larger than the matrix, shards);
reads users' stores as zarr wrote them (format 2, checksums, an index at the shard's start,
missing chunks); refuses what it cannot decode by name when planning; keeps to its budget."""

from __future__ import annotations

import os

import numcodecs
import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec, TransposeCodec, ZstdCodec

from harness.measuring import strategies
from harness.measuring.matrix.generate import dense_array, vector
from harness.measuring.matrix.spec import ZARR_COMPRESSIONS, DatasetSpec
from harness.measuring.runs.measure import measure_in_process
from harness.measuring.storage.base import FileLocation
from harness.measuring.strategies import zarr_direct
from harness.measuring.strategies.base import Options

DIRECT = strategies.get("zarr-direct")
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}
#: (shape, chunks, shards): chunks that do not divide the shape, 1 row, 1 column, chunks
#: larger than the matrix, shards that do not divide it either, a shard of one chunk.
LAYOUTS = [
    ((45, 97), (7, 33), None),
    ((1, 50), (3, 7), None),
    ((50, 1), (8, 5), None),
    ((45, 97), (500, 500), None),
    ((45, 97), (4, 10), (8, 20)),
    ((1, 97), (1, 10), (1, 30)),
    ((45, 97), (45, 97), (45, 97)),
]


def _reference(matrix: np.ndarray, x: np.ndarray) -> np.ndarray:
    return matrix.astype(np.float64) @ x.astype(matrix.dtype).astype(np.float64)


def test_it_is_a_zarr_reader_of_every_codec_the_storage_writes():
    assert "zarr-direct" in strategies.names("zarr")
    for codec in ZARR_COMPRESSIONS:
        assert DIRECT.accepts(DatasetSpec((4, 4), storage="zarr", compression=codec)), codec
    assert not DIRECT.accepts(DatasetSpec((4, 4), storage="zarr", compression="lzf"))


@pytest.mark.parametrize("codec", ZARR_COMPRESSIONS, ids=str)
@pytest.mark.parametrize("dtype,x_dtype", [("float32", "float64"), ("float64", "float32")])
@pytest.mark.parametrize("shape,chunks,shards", LAYOUTS, ids=lambda v: "x".join(map(str, v))
                         if isinstance(v, tuple) else str(v))
def test_equals_the_dense_reference(tmp_path, codec, dtype, x_dtype, shape, chunks, shards):
    spec = DatasetSpec(shape, dtype, seed=7, storage="zarr", chunks=chunks, compression=codec,
                       shards=shards, values="smooth")
    x = vector(shape[1], x_dtype)
    expected = _reference(dense_array(spec), x)
    for options in ({}, {"memory_budget": 1}):  # this machine's cores as workers, then one
        y = strategies.matvec("zarr-direct", spec, x, root=tmp_path, **options)
        assert y.dtype == np.dtype(dtype) and y.shape == (shape[0],)
        np.testing.assert_allclose(y, expected, rtol=TOLERANCE[dtype],
                                   atol=TOLERANCE[dtype] * shape[1])


def test_rows_of_the_product_read_only_their_chunks(tmp_path):
    spec = DatasetSpec((45, 97), "float64", storage="zarr", chunks=(4, 10), shards=(8, 20),
                       compression="blosc-lz4")
    x = vector(97, "float64")
    expected = _reference(dense_array(spec), x)
    with DIRECT.open(spec, root=tmp_path) as operand:
        for first, stop in ((0, 45), (3, 11), (44, 45), (8, 16), (7, 7)):
            np.testing.assert_allclose(operand.matvec_rows(x, first, stop),
                                       expected[first:stop], rtol=1e-10)
        operand.matvec_rows(x, 8, 16)
        assert operand.profile["chunks"] == 2 * 10  # two chunk-rows of ten chunks


def _users_store(path, matrix, **kwargs):
    array = zarr.create_array(store=str(path), shape=matrix.shape, dtype=matrix.dtype, **kwargs)
    array[:] = matrix
    return FileLocation(path, dataset="")


def _user_product(location, matrix, x, **options):
    rows, cols = matrix.shape
    spec = DatasetSpec((rows, cols), matrix.dtype.name, storage="zarr",
                       chunks=tuple(zarr.open_array(str(location.path), mode="r").chunks))
    assert DIRECT.refusal_at(spec, location) == ""
    with DIRECT.opener(spec, location, Options()) as operand:
        return operand.matvec(x)


@pytest.mark.parametrize("name", ["v2 blosc", "v2 zlib", "v2 gzip", "v2 zstd", "v3 crc32c",
                                  "v3 index at start", "v3 sharded crc32c chunks"])
def test_reads_users_stores_as_zarr_wrote_them(tmp_path, name):
    matrix = np.random.default_rng(3).random((23, 41))
    kwargs = {
        "v2 blosc": {"zarr_format": 2, "compressors": numcodecs.Blosc(cname="lz4")},
        "v2 zlib": {"zarr_format": 2, "compressors": numcodecs.Zlib(level=1)},
        "v2 gzip": {"zarr_format": 2, "compressors": numcodecs.GZip(level=1)},
        "v2 zstd": {"zarr_format": 2, "compressors": numcodecs.Zstd(level=1)},
        "v3 crc32c": {"compressors": (ZstdCodec(), Crc32cCodec())},
        "v3 index at start": {"serializer": ShardingCodec(chunk_shape=(5, 10),
                                                          index_location="start"),
                              "chunks": (10, 20), "compressors": None},
        "v3 sharded crc32c chunks": {"serializer": ShardingCodec(
            chunk_shape=(5, 10), codecs=[BytesCodec(), ZstdCodec(), Crc32cCodec()]),
            "chunks": (10, 20), "compressors": None},
    }[name]
    kwargs.setdefault("chunks", (6, 17))
    location = _users_store(tmp_path / "user.zarr", matrix, **kwargs)
    x = vector(41, "float64")
    np.testing.assert_allclose(_user_product(location, matrix, x), _reference(matrix, x),
                               rtol=1e-12)


def test_chunks_never_written_add_nothing_and_a_nonzero_fill_is_refused(tmp_path):
    matrix = np.zeros((20, 30))
    matrix[5:10, 10:20] = 1.5  # one chunk of (5, 10) written, the others all fill value
    location = _users_store(tmp_path / "sparse.zarr", matrix, chunks=(5, 10),
                            compressors=ZstdCodec(), fill_value=0)
    assert len(list((tmp_path / "sparse.zarr" / "c").rglob("*"))) < 12  # most never written
    x = vector(30, "float64")
    np.testing.assert_allclose(_user_product(location, matrix, x), _reference(matrix, x))
    filled = _users_store(tmp_path / "filled.zarr", np.full((20, 30), 2.0), chunks=(5, 10),
                          fill_value=2.0)
    spec = DatasetSpec((20, 30), "float64", storage="zarr", chunks=(5, 10))
    with pytest.raises(ValueError, match="never written and the fill value is 2.0"), \
            DIRECT.opener(spec, filled, Options()):
        pass


@pytest.mark.parametrize("kwargs,named", [
    ({"filters": (TransposeCodec(order=(1, 0)),)}, "TransposeCodec"),
    ({"serializer": BytesCodec(endian="big")}, "big-endian"),
    ({"zarr_format": 2, "filters": [numcodecs.Delta(dtype="f8")], "compressors": None},
     "filters delta"),
    ({"zarr_format": 2, "compressors": numcodecs.LZ4()}, "does not decode lz4"),
    ({"zarr_format": 2, "order": "F"}, "Fortran"),
])
def test_what_it_cannot_decode_is_refused_by_name_when_planning(tmp_path, kwargs, named):
    matrix = np.arange(60, dtype="float64").reshape(6, 10)
    location = _users_store(tmp_path / "odd.zarr", matrix, chunks=(3, 5), **kwargs)
    spec = DatasetSpec((6, 10), "float64", storage="zarr", chunks=(3, 5))
    refusal = DIRECT.refusal_at(spec, location)
    assert named in refusal and refusal.endswith("use zarr-blocked")
    with pytest.raises(zarr_direct.Unsupported, match=f"cannot read odd.zarr: .*{named}"), \
            DIRECT.opener(spec, location, Options()):
        pass


def test_budget_is_the_workers_buffers_and_follows_memory_budget():
    chunk = 10 * 1000 * 4
    spec = DatasetSpec((100, 1000), "float32", storage="zarr", chunks=(10, 1000),
                       compression="blosc-lz4")
    per_worker = zarr_direct.stored_buffer_bytes(chunk) + chunk + (4 << 20)
    assert zarr_direct.worker_bytes(spec) == per_worker
    assert DIRECT.extra_memory_bytes(spec) == min(len(os.sched_getaffinity(0)), 10) * per_worker
    assert DIRECT.extra_memory_bytes(spec, memory_budget=1) == per_worker
    raw = DatasetSpec((100, 1000), "float32", storage="zarr", chunks=(10, 1000))
    assert zarr_direct.worker_bytes(raw) == chunk  # read straight into the decoded buffer


@pytest.mark.slow
@pytest.mark.parametrize("codec,shards", [("gzip-1", None), ("blosc-lz4", (16, 100_000)),
                                          (None, None)])
def test_anonymous_increment_stays_within_budget_plus_8_mib(tmp_path, codec, shards):
    spec = DatasetSpec((64, 100_000), "float32", storage="zarr", chunks=(8, 100_000),
                       compression=codec, shards=shards, values="smooth")
    m = measure_in_process("zarr-direct", spec, repeat=2, root=tmp_path)
    assert m.budget_bytes == DIRECT.extra_memory_bytes(spec)
    assert m.anon_increment_bytes <= m.budget_bytes + 8 * 2**20, (m.anon_increment_bytes,
                                                                  m.budget_bytes)
    assert m.max_abs_error < 1e-2
    assert m.profile["chunks"] == 8 and m.profile["workers"] == min(len(os.sched_getaffinity(0)), 8)


def test_a_store_of_more_files_than_it_keeps_open_is_read_file_by_file(tmp_path, monkeypatch):
    monkeypatch.setattr(zarr_direct, "MAX_OPEN_FILES", 3)
    spec = DatasetSpec((45, 97), "float32", storage="zarr", chunks=(7, 33), compression="zstd")
    x = vector(97, "float64")
    with DIRECT.open(spec, root=tmp_path) as operand:
        assert operand.fds == {}  # 21 chunk files: each opened when read
        y = operand.matvec(x)
    np.testing.assert_allclose(y, _reference(dense_array(spec), x), rtol=1e-4, atol=1e-3)
