"""The storage interface: every format writes from row blocks and reads back the same matrix,
describes itself, and goes through the one sealed-file cache; the one CSR index rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.measuring import fit
from harness.measuring.matrix.generate import (
    csr_blocks,
    csr_index_dtype,
    dense_array,
    iter_dense_blocks,
    nnz,
)
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import cache, formats
from harness.measuring.storage.base import FileLocation
from harness.measuring.strategies.capabilities import Closable, Profiled, RowRanges

#: (shape, chunks) that do not divide evenly, one row, one column, chunks larger than the matrix.
AWKWARD = [((37, 53), (10, 20)), ((1, 41), (1, 7)), ((29, 1), (4, 1)), ((5, 6), (50, 60))]


def _spec(storage: str, shape, chunks, dtype: str) -> DatasetSpec:
    if formats.get(storage).sparse:
        return DatasetSpec(shape, dtype, density=0.3, storage=storage)
    chunked = storage in ("hdf5", "zarr")
    return DatasetSpec(shape, dtype, storage=storage, chunks=chunks if chunked else None)


def _write(spec: DatasetSpec, path) -> None:
    storage = formats.get(spec.storage)
    blocks = (lambda: csr_blocks(spec)) if storage.sparse else (lambda: iter_dense_blocks(spec))
    storage.write(spec, path, blocks, entries=nnz(spec) if storage.sparse else None)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape, chunks", AWKWARD)
@pytest.mark.parametrize("name", formats.written())
def test_every_format_reads_back_what_it_wrote(tmp_path, name, shape, chunks, dtype):
    spec = _spec(name, shape, chunks, dtype)
    path = tmp_path / f"matrix.{formats.get(name).extension}"
    _write(spec, path)
    expected = dense_array(spec)  # from the generator, not from any reader
    storage, location = formats.get(name), FileLocation(path)
    dense = np.zeros(spec.shape, dtype=spec.dtype)
    for r0, block in storage.row_blocks(spec, location, 3):
        dense[r0:r0 + block.shape[0]] = block
    assert np.array_equal(dense, expected)
    csr = np.zeros(spec.shape, dtype=spec.dtype)
    for r0, block in storage.csr_row_blocks(spec, location, 4):
        csr[r0:r0 + block.shape[0]] = block.toarray()
    assert np.array_equal(csr, expected)
    facts = storage.describe(spec, location)
    assert facts["shape"] == list(shape) and facts["dtype"] == dtype
    assert 0 < facts["stored_bytes"]


def test_flat_formats_say_where_their_values_start(tmp_path):
    raw = DatasetSpec((4, 5), storage="raw")
    _write(raw, tmp_path / "a.raw")
    assert formats.get("raw").describe(raw, FileLocation(tmp_path / "a.raw", 128))["byte_offset"] == 128
    contiguous = DatasetSpec((4, 5), storage="hdf5")
    _write(contiguous, tmp_path / "a.h5")
    offset = formats.get("hdf5").describe(contiguous, FileLocation(tmp_path / "a.h5"))["byte_offset"]
    data = (tmp_path / "a.h5").read_bytes()[offset:offset + contiguous.dense_bytes]
    assert np.array_equal(np.frombuffer(data, "float32").reshape(4, 5), dense_array(contiguous))
    chunked = DatasetSpec((4, 5), storage="hdf5", chunks=(2, 5), compression="gzip")
    _write(chunked, tmp_path / "b.h5")
    assert formats.get("hdf5").describe(chunked, FileLocation(tmp_path / "b.h5"))["byte_offset"] is None


def test_an_unknown_storage_is_named_with_the_known_ones():
    with pytest.raises(KeyError, match="known storages"):
        formats.get("parquet")


def test_the_cache_writes_once_and_again_only_when_the_key_changes(tmp_path):
    path, calls = tmp_path / "thing.bin", []

    def write(tmp):
        calls.append(tmp)
        tmp.write_bytes(b"x" * 100)
        return {"made": len(calls)}

    first = cache.sealed(path, {"version": 1}, write, expected_bytes=100, what="a test file")
    again = cache.sealed(path, {"version": 1}, write, expected_bytes=100, what="a test file")
    assert len(calls) == 1 and first == again and first["made"] == 1
    assert json.loads(cache.manifest_path(path).read_text())["version"] == 1
    changed = cache.sealed(path, {"version": 2}, write, expected_bytes=100, what="a test file")
    assert len(calls) == 2 and changed["made"] == 2


def test_a_failed_write_leaves_neither_file_nor_manifest_nor_temporary(tmp_path):
    path = tmp_path / "thing.bin"

    def write(tmp):
        tmp.write_bytes(b"half")
        raise OSError(5, "the writer failed")

    with pytest.raises(OSError, match="the writer failed"):
        cache.sealed(path, {"version": 1}, write, expected_bytes=10, what="a test file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thing.bin.lock"]


def test_the_cache_refuses_what_the_disk_cannot_hold_before_writing(tmp_path):
    free = fit.free_disk_bytes(tmp_path)
    with pytest.raises(cache.InsufficientDiskSpaceError, match="not enough free disk"):
        cache.sealed(tmp_path / "big.bin", {}, lambda tmp: pytest.fail("written"),
                     expected_bytes=free, what="a file as large as the free disk")
    assert not (tmp_path / "big.bin").exists()


@pytest.mark.parametrize("shape, entries, expected", [
    ((10, 10), 100, "int32"), ((10, 10), 2**31, "int64"), ((2**31, 1), 0, "int64"),
    ((2**31 - 1, 3), 2**31 - 1, "int32")])
def test_one_csr_index_rule(shape, entries, expected):
    assert csr_index_dtype(shape, entries) == np.dtype(expected)


def test_the_ram_policy_is_one_fraction_for_every_source():
    assert fit.ram_refusal(600, 1000) is None
    assert "more than 60%" in fit.ram_refusal(601, 1000)
    assert fit.time_refusal(1.0, 5, 8.0) is None  # 5 timed + 3 more passes of 1 s
    assert "timeout" in fit.time_refusal(1.0, 5, 7.9)


def test_capabilities_are_checked_by_type_not_by_name():
    class Rows:
        def matvec(self, x):
            return x

        def matvec_rows(self, x, first, stop):
            return x[first:stop]

    class Plain:
        def matvec(self, x):
            return x

    assert isinstance(Rows(), RowRanges) and not isinstance(Plain(), RowRanges)
    assert not isinstance(Plain(), Closable) and not isinstance(Plain(), Profiled)
