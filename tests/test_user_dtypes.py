"""Users' matrices of other values than float32/float64 (integers, float16, big-endian floats,
CF-packed integers) and column-major files: measured as stored, each block converted as it is
read, by every strategy that reads the file. Each product is checked against numpy's product
of the array the test wrote, converted by numpy itself (never by the harness's readers)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import zarr

from harness.cli import main
from harness.measuring import strategies
from harness.measuring.matrix.generate import vector
from harness.measuring.runs.plan import plan_for
from harness.measuring.runs.sources import UserFile
from harness.measuring.storage.base import UserFileError
from harness.measuring.storage.user import open_user_matrix

#: Awkward: chunks of 7 x 10 divide neither 23 rows nor 41 columns.
SHAPE = (23, 41)
CHUNKS = (7, 10)


def _values(dtype, shape=SHAPE, seed=0) -> np.ndarray:
    """Values that fill much of ``dtype``'s range (exactly representable in its compute dtype)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = max(info.min, -30000), min(info.max, 60000)
        return rng.integers(low, high, size=shape, endpoint=True).astype(dtype)
    return (rng.standard_normal(shape) * 100).astype(dtype)


def _products_match(user, expected: np.ndarray) -> list[str]:
    """Every strategy that runs on the file (but the cluster's), its product checked against
    ``expected @ x`` computed in float64 by numpy; returns the strategies run."""
    x = vector(user.spec.shape[1], user.spec.dtype)
    want = expected.astype(np.float64) @ x.astype(np.float64)
    scale = np.abs(expected.astype(np.float64)) @ np.abs(x.astype(np.float64)) + 1.0
    rtol = 1e-5 if user.spec.dtype == "float32" else 1e-12
    np.testing.assert_array_less(np.abs(UserFile(user).reference(x) - want), rtol * scale)
    ran = []
    for run in plan_for(UserFile(user)).runs:
        if strategies.get(run.strategy).spans_processes:
            continue  # the cluster's product is checked on a generated matrix
        with strategies.get(run.strategy).open_at(run.spec, run.location) as operand:
            y = operand.matvec(x)
        assert y.dtype == np.dtype(user.spec.dtype), run.key
        np.testing.assert_array_less(np.abs(y - want), rtol * scale, err_msg=run.key)
        ran.append(run.strategy)
    return ran


STORED = ["int8", "uint8", "int16", "uint16", "int32", "uint64", "float16", ">f4", ">f8"]
COMPUTE = {"int8": "float32", "uint8": "float32", "int16": "float32", "uint16": "float32",
           "int32": "float64", "uint64": "float64", "float16": "float32", ">f4": "float32",
           ">f8": "float64"}


@pytest.mark.parametrize("stored", STORED)
def test_npy_and_raw_of_any_real_dtype_are_multiplied_as_stored(tmp_path, stored):
    a = _values(stored)
    np.save(tmp_path / "a.npy", a)
    user = open_user_matrix(tmp_path / "a.npy")
    assert user.spec.dtype == COMPUTE[stored]
    assert np.dtype(user.spec.stored_dtype) == np.dtype(stored)
    assert {"dense", "memmap", "memmap-rows", "memmap-blocked"} <= set(_products_match(user, a))
    a.tofile(tmp_path / "a.bin")
    raw = open_user_matrix(tmp_path / "a.bin", shape=SHAPE, dtype=np.dtype(stored).str)
    assert "memmap-blocked" in _products_match(raw, a)


@pytest.mark.parametrize("stored", ["int16", "uint8", "int32", "float16", ">f4", ">f8"])
@pytest.mark.parametrize("layout", [{}, {"chunks": CHUNKS}, {"chunks": CHUNKS, "compression": "gzip",
                                                           "shuffle": True}])
def test_hdf5_datasets_of_any_real_dtype_are_multiplied_as_stored(tmp_path, stored, layout):
    a = _values(stored, seed=1)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("counts", data=a, **layout)
    user = open_user_matrix(f"{tmp_path / 'a.h5'}:/counts")
    assert user.spec.dtype == COMPUTE[stored]
    ran = set(_products_match(user, a))
    expected = {"dense", "hdf5-rows", "hdf5-read", "hdf5-blocked"}
    if "chunks" in layout:
        expected |= {"hdf5-chunked", "hdf5-direct"}
    if "compression" not in layout:
        expected.add("hdf5-mmap")
    assert expected <= ran


def test_a_cf_packed_netcdf4_variable_is_unpacked(tmp_path):
    packed = _values("int16", seed=2)
    scale, offset = np.float32(0.01), np.float32(273.15)
    with h5py.File(tmp_path / "t.nc", "w") as f:
        v = f.create_dataset("temperature", data=packed, chunks=CHUNKS, compression="gzip")
        v.attrs["scale_factor"], v.attrs["add_offset"] = scale, offset
    user = open_user_matrix(f"{tmp_path / 't.nc'}:/temperature")
    assert user.spec.dtype == "float32" and user.spec.packing is not None
    expected = packed.astype(np.float64) * float(scale) + float(offset)
    assert {"dense", "hdf5-blocked", "hdf5-direct", "hdf5-chunked"} <= set(
        _products_match(user, expected))
    with h5py.File(tmp_path / "t64.nc", "w") as f:
        v = f.create_dataset("t", data=packed)
        v.attrs["scale_factor"] = np.float64(0.5)
    user = open_user_matrix(f"{tmp_path / 't64.nc'}:/t")
    assert user.spec.dtype == "float64"  # unpacked in its scale_factor's dtype
    assert "hdf5-mmap" in _products_match(user, packed * 0.5)


@pytest.mark.parametrize("stored", ["int16", "float16", "uint32"])
@pytest.mark.parametrize("layout", [{}, {"compressors": None},
                                    {"shards": (14, 20), "compressors": None}])
def test_zarr_arrays_of_any_real_dtype_are_multiplied_as_stored(tmp_path, stored, layout):
    a = _values(stored, seed=3)
    store = zarr.create_array(tmp_path / "a.zarr", shape=SHAPE, chunks=CHUNKS, dtype=stored,
                              **layout)
    store[...] = a
    user = open_user_matrix(tmp_path / "a.zarr")
    ran = set(_products_match(user, a))
    assert {"dense", "zarr-blocked"} <= ran
    if layout.get("compressors", ...) is None and "shards" not in layout:
        assert "zarr-mmap" in ran


def test_zarr_v2_big_endian_fortran_chunks_are_mapped(tmp_path):
    """zarr format 2 writes '>f8' and order 'F' as asked: zarr-mmap maps the chunks as they
    are (no refusal), the others read through zarr."""
    a = _values(">f8", seed=4)
    store = zarr.create_array(tmp_path / "v2.zarr", shape=SHAPE, chunks=CHUNKS, dtype=">f8",
                              zarr_format=2, order="F", compressors=None)
    store[...] = a
    meta = json.loads((tmp_path / "v2.zarr" / ".zarray").read_text())
    assert meta["order"] == "F" and meta["dtype"] == ">f8"
    user = open_user_matrix(tmp_path / "v2.zarr")
    assert user.spec.dtype == "float64"
    assert {"dense", "zarr-blocked", "zarr-mmap"} <= set(_products_match(user, a))


@pytest.mark.parametrize("stored", ["float32", "int16", ">f8"])
@pytest.mark.parametrize("shape", [SHAPE, (1, 41), (23, 1)])
def test_fortran_order_npy_is_read_by_column_blocks(tmp_path, stored, shape):
    a = np.asfortranarray(_values(stored, shape=shape, seed=5))
    np.save(tmp_path / "f.npy", a)
    user = open_user_matrix(tmp_path / "f.npy")
    if min(shape) > 1:
        assert user.spec.order == "F"
    ran = _products_match(user, np.ascontiguousarray(a))
    assert {"dense", "memmap", "memmap-blocked"} <= set(ran)


def test_column_blocks_cover_the_matrix_in_small_blocks(tmp_path):
    """A budget of three columns: memmap-blocked sums 14 column blocks, one a remainder."""
    a = np.asfortranarray(_values("int16", seed=6))
    np.save(tmp_path / "f.npy", a)
    user = open_user_matrix(tmp_path / "f.npy")
    x = vector(SHAPE[1], "float32")
    budget = 3 * SHAPE[0] * 4
    with strategies.get("memmap-blocked").open_at(user.spec, user.location,
                                                  memory_budget=budget) as operand:
        assert operand.cols_per_block == 3
        y = operand.matvec(x)
    np.testing.assert_allclose(y, a.astype(np.float64) @ x.astype(np.float64), rtol=1e-5)


def test_sparse_integer_counts_are_converted(tmp_path):
    import scipy.sparse as sp

    counts = sp.random_array(SHAPE, density=0.3, random_state=7, format="csr",
                             data_sampler=lambda size: np.arange(1, size + 1)).astype(np.int32)
    with h5py.File(tmp_path / "counts.h5ad", "w") as f:
        g = f.create_group("X")
        g.attrs["encoding-type"], g.attrs["shape"] = "csr_matrix", SHAPE
        for name in ("data", "indices", "indptr"):
            g[name] = getattr(counts, name)
    user = open_user_matrix(f"{tmp_path / 'counts.h5ad'}:/X")
    assert user.spec.dtype == "float64"
    assert {"dense", "csr", "csr-hdf5-blocked"} <= set(_products_match(user, counts.toarray()))


@pytest.mark.parametrize("dtype, words", [("complex64", "complex values"),
                                          ("longdouble", "128-bit floats"),
                                          ("bool", "not numbers")])
def test_values_the_harness_cannot_multiply_are_refused_in_one_line(tmp_path, capsys, dtype,
                                                                    words):
    if dtype == "longdouble" and np.dtype(np.longdouble).itemsize != 16:
        pytest.skip("this platform's long double is not 128 bits")
    np.save(tmp_path / "a.npy", np.ones(SHAPE, dtype=dtype))
    with pytest.raises(UserFileError, match=words):
        open_user_matrix(tmp_path / "a.npy")
    assert main(["measure", "--file", str(tmp_path / "a.npy"), "--strategies", "dense"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err


def test_measure_names_the_stored_dtype_and_measures_a_float_copy_beside(tmp_path, capsys,
                                                                          monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "data"))
    a = _values("uint16", shape=(40, 300), seed=8)
    np.save(tmp_path / "counts.npy", a)
    before = (tmp_path / "counts.npy").read_bytes()
    args = ["measure", "--file", str(tmp_path / "counts.npy"), "--strategies",
            "dense,memmap-blocked", "--repeat", "1", "--cache", "warm", "--also-as", "raw",
            "--as-dtype", "float64"]
    assert main([*args, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {(r["strategy"], r["spec"].get("stored_dtype"), r["spec"]["dtype"]): r
            for r in report["records"]}
    # Yours (uint16, multiplied as float32) and the float64 copy, each by memmap-blocked.
    assert ("memmap-blocked", "<u2", "float32") in rows
    assert ("memmap-blocked", None, "float64") in rows
    ours = rows[("memmap-blocked", "<u2", "float32")]
    assert ours["compression_ratio"] == pytest.approx(1.0, rel=0.01)  # conversion is no codec
    want = a.astype(np.float64) @ vector(300, "float32").astype(np.float64)
    assert all(r["max_abs_error"] <= 1e-6 * np.abs(want).max() for r in report["records"])
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "your file stores uint16 values: every strategy converts each block to float32" in out
    assert (tmp_path / "counts.npy").read_bytes() == before
    assert main(["measure", "--file", str(tmp_path / "counts.npy"), "--as-dtype", "float32"]) == 2
    assert "--as-dtype is the dtype of the copies" in capsys.readouterr().err


def test_a_raw_file_of_uint8_is_measured_in_child_processes(tmp_path, capsys):
    """The children open the file again from its description: as uint8, not as float32."""
    a = _values("uint8", shape=(30, 200), seed=9)
    a.tofile(tmp_path / "sensor.u8")
    assert main(["measure", "--file", str(tmp_path / "sensor.u8"), "--shape", "30x200",
                 "--dtype", "uint8", "--strategies", "dense,memmap-blocked", "--repeat", "1",
                 "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)["records"]
    assert [r["strategy"] for r in records] == ["dense", "memmap-blocked"]
    want = np.abs(a.astype(np.float64) @ vector(200, "float32").astype(np.float64)).max()
    assert all(r["max_abs_error"] <= 1e-6 * want for r in records)
