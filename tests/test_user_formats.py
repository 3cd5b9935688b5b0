"""Formats other tools write, each written here by its own writer (scipy.io's mmwrite, savemat,
hb_write; h5py for a MATLAB v7.3 layout): every strategy that reads it multiplies it as its
user means it (symmetric matrices expanded, patterns as ones), against a dense reference
computed from the matrix the test built, not by the harness's readers."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from harness.cli import main
from harness.measuring import strategies
from harness.measuring.matrix.generate import vector
from harness.measuring.runs.plan import plan_for
from harness.measuring.runs.sources import UserFile
from harness.measuring.storage.base import UserFileError
from harness.measuring.storage.user import open_user_matrix

SHAPE = (31, 47)


def _sparse(seed: int = 0) -> sp.coo_array:
    return sp.random_array(SHAPE, density=0.2, format="coo", random_state=seed, dtype=np.float64)


def _products_match(user, expected: np.ndarray) -> list[str]:
    """Every strategy that runs on the user's file (but the cluster's), its product checked
    against ``expected`` (the dense matrix the test wrote); returns the strategies run."""
    x = vector(user.spec.shape[1], user.spec.dtype)
    want = expected.astype(np.float64) @ x.astype(np.float64)
    np.testing.assert_allclose(UserFile(user).reference(x), want, rtol=1e-12)
    ran = []
    for run in plan_for(UserFile(user)).runs:
        with strategies.get(run.strategy).open_at(run.spec, run.location) as operand:
            y = operand.matvec(x)
        np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4, err_msg=run.key)
        ran.append(run.strategy)
    return ran


def test_matrix_market_coordinate_general(tmp_path):
    m = _sparse()
    path = tmp_path / "general.mtx"
    scipy.io.mmwrite(path, m)
    user = open_user_matrix(path)
    assert user.format == "mtx" and user.spec.density == pytest.approx(m.nnz / np.prod(SHAPE))
    ran = _products_match(user, m.toarray())
    assert {"dense", "csr", "csc", "coo"} <= set(ran)


def test_matrix_market_symmetric_and_pattern_are_expanded_as_meant(tmp_path):
    lower = sp.tril(sp.random_array((40, 40), density=0.2, random_state=1), format="coo")
    full = lower + lower.T - sp.diags_array(lower.diagonal())
    scipy.io.mmwrite(tmp_path / "sym.mtx", sp.coo_array(full), symmetry="symmetric")
    assert scipy.io.mminfo(tmp_path / "sym.mtx")[5] == "symmetric"
    _products_match(open_user_matrix(tmp_path / "sym.mtx"), full.toarray())
    pattern = sp.coo_array(_sparse(2))
    scipy.io.mmwrite(tmp_path / "pattern.mtx", pattern, field="pattern")
    _products_match(open_user_matrix(tmp_path / "pattern.mtx"),
                    (pattern.toarray() != 0).astype(np.float64))
    ints = sp.coo_array((np.arange(1, 11), (np.arange(10), np.arange(10) % 7)), shape=(10, 7))
    scipy.io.mmwrite(tmp_path / "integer.mtx", ints, field="integer")
    _products_match(open_user_matrix(tmp_path / "integer.mtx"), ints.toarray())


def test_matrix_market_array_is_a_dense_matrix(tmp_path):
    dense = np.random.default_rng(3).random(SHAPE)
    scipy.io.mmwrite(tmp_path / "dense.mtx", dense)
    user = open_user_matrix(tmp_path / "dense.mtx")
    assert user.spec.density is None
    ran = _products_match(user, dense)
    assert ran == ["dense"]  # the sparse formats skip a dense file


def test_a_complex_matrix_market_file_is_refused_in_one_line(tmp_path):
    scipy.io.mmwrite(tmp_path / "c.mtx", sp.coo_array(_sparse().astype(np.complex128) * 1j))
    with pytest.raises(UserFileError, match="complex matrix.*real part"):
        open_user_matrix(tmp_path / "c.mtx")


def test_matlab_v5_variables_dense_single_and_sparse(tmp_path):
    dense = np.random.default_rng(4).random(SHAPE)
    single = dense.astype(np.float32)
    sparse = sp.csc_matrix(_sparse(5))
    path = tmp_path / "vars.mat"
    scipy.io.savemat(path, {"A": dense, "B": single, "S": sparse, "I": np.ones((3, 3), np.int16),
                            "name": "not a matrix"})
    for name, expected, dtype in (("A", dense, "float64"), ("B", single, "float32"),
                                  ("S", sparse.toarray(), "float64")):
        user = open_user_matrix(f"{path}:{name}")
        assert (user.format, user.spec.dtype) == ("mat", dtype)
        _products_match(user, expected)
    with pytest.raises(UserFileError, match=r"holds 4 2-D numeric variables \(A, B, S, I\)"):
        open_user_matrix(path)
    ints = open_user_matrix(f"{path}:I")  # converted to float32 as it is loaded
    assert ints.spec.dtype == "float32"
    _products_match(ints, np.ones((3, 3)))
    with pytest.raises(UserFileError, match="no variable 'Z'"):
        open_user_matrix(path, dataset="Z")


def test_harwell_boeing_rua(tmp_path):
    m = sp.csc_matrix(_sparse(6))
    scipy.io.hb_write(tmp_path / "m.rua", m)
    user = open_user_matrix(tmp_path / "m.rua")
    assert user.format == "hb"
    _products_match(user, m.toarray())


def _matlab_v73(path, variables: dict) -> None:
    """A v7.3 file as MATLAB writes one: a 512-byte text header, then HDF5 in which a dense
    m x n variable is a dataset of its transpose (n x m) and a sparse one a group of MATLAB's
    CSC arrays (data, ir, jc; MATLAB_sparse: its rows), each with a MATLAB_class."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            if sp.issparse(value):
                csc = sp.csc_array(value)
                g = f.create_group(name)
                g.attrs["MATLAB_class"] = np.bytes_("double")
                g.attrs["MATLAB_sparse"] = np.uint64(csc.shape[0])
                g["data"], g["ir"] = csc.data, csc.indices.astype(np.uint64)
                g["jc"] = csc.indptr.astype(np.uint64)
            else:
                d = f.create_dataset(name, data=np.asarray(value).T, chunks=True)
                d.attrs["MATLAB_class"] = np.bytes_(
                    {"float64": "double", "float32": "single"}.get(value.dtype.name,
                                                                   value.dtype.name))
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Dec  7 2026 "
                b"HDF5 schema 1.00 .")


def test_matlab_v73_variables_are_measured_as_matlab_shows_them(tmp_path, capsys):
    dense = np.random.default_rng(11).random(SHAPE)
    counts = np.random.default_rng(12).integers(0, 4000, SHAPE).astype(np.uint16)
    sparse = _sparse(13)
    path = tmp_path / "v73.mat"
    _matlab_v73(path, {"A": dense, "C": counts, "S": sparse, "label": np.array([[1.0]]).astype(
        np.float64)})
    user = open_user_matrix(f"{path}:A")
    assert (user.format, user.spec.shape, user.spec.order) == ("mat-7.3", SHAPE, "F")
    assert _products_match(user, dense) == ["dense"]  # HDF5's row readers would see Aᵀ
    plan = plan_for(UserFile(user))
    assert any("column-major" in reason for name, reason in plan.skipped
               if name.startswith("hdf5-blocked"))
    ints = open_user_matrix(path, dataset="C")
    assert (ints.spec.dtype, ints.spec.stored_dtype) == ("float32", "<u2")
    _products_match(ints, counts)
    csc = open_user_matrix(f"{path}:S")
    assert csc.spec.storage == "csc-hdf5" and csc.spec.shape == SHAPE
    assert {"dense", "csr", "csc"} <= set(_products_match(csc, sparse.toarray()))
    with pytest.raises(UserFileError, match=r"holds 4 2-D numeric variables \(A, C, S, label\)"):
        open_user_matrix(path)
    # A row-major copy serves the row readers, and gives the same product.
    code = main(["measure", "--file", f"{path}:A", "--also-as", "hdf5", "--strategies",
                 "dense,hdf5-blocked", "--repeat", "1", "--data-dir", str(tmp_path / "data"),
                 "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {(r["strategy"], r["storage"]) for r in out["records"]} == {
        ("dense", "mat-7.3 (yours)"), ("hdf5-blocked", "hdf5 contiguous (copy)")}
    assert all(r["max_abs_error"] < 1e-9 for r in out["records"])


def test_measure_copies_a_matrix_market_file_and_checks_every_product(tmp_path, capsys):
    m = _sparse(7)
    path = tmp_path / "m.mtx"
    scipy.io.mmwrite(path, m)
    before = path.read_bytes()
    status = main(["measure", "--file", str(path), "--also-as", "csr-hdf5,hdf5",
                   "--strategies", "csr,csr-hdf5-blocked,hdf5-blocked", "--repeat", "1",
                   "--no-roofline", "--data-dir", str(tmp_path / "data"), "--format", "json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    records = json.loads(captured.out)["records"]
    assert {(r["strategy"], r["storage"].split(" ")[0]) for r in records} >= {
        ("dense", "mtx"), ("csr", "mtx"), ("csr", "csr-hdf5"), ("csr-hdf5-blocked", "csr-hdf5"),
        ("hdf5-blocked", "hdf5")}
    assert all(r["max_abs_error"] < 1e-9 for r in records)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "data", "m.mtx"]


def _write_group(group, matrix, layout: str) -> None:
    group.create_dataset("data", data=matrix.data)
    group.create_dataset("indices", data=matrix.indices)
    group.create_dataset("indptr", data=matrix.indptr)
    if layout == "10x":
        group.create_dataset("shape", data=np.array(matrix.shape, dtype=np.int32))
    else:
        group.attrs["encoding-type"] = f"{matrix.format}_matrix"
        group.attrs["encoding-version"] = "0.1.0"
        group.attrs["shape"] = np.array(matrix.shape)


@pytest.mark.parametrize("layout, fmt, storage", [
    ("anndata", "csr", "csr-hdf5"), ("anndata", "csc", "csc-hdf5"), ("10x", "csc", "csc-hdf5")])
def test_sparse_groups_are_read_where_they_lie(tmp_path, layout, fmt, storage):
    m = _sparse(8).asformat(fmt).astype(np.float32)
    path = tmp_path / "cells.h5ad"
    with h5py.File(path, "w") as f:
        _write_group(f.create_group("matrix" if layout == "10x" else "X"), m, layout)
        f.create_dataset("obs_names", data=np.arange(SHAPE[0]))  # 1-D: not a candidate
    user = open_user_matrix(path)  # the only matrix in the file
    assert (user.spec.storage, user.spec.shape, user.spec.dtype) == (storage, SHAPE, "float32")
    if storage == "csr-hdf5":  # a pass reads the group's arrays, not the whole file
        assert user.facts()["stored_bytes"] == m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
    ran = _products_match(user, m.toarray())
    assert "csr" in ran and ("csr-hdf5-blocked" in ran) == (fmt == "csr")


def test_a_sparse_group_with_an_index_past_its_shape_is_refused(tmp_path):
    m = sp.csr_array(_sparse(9))
    m.indices[2] = SHAPE[1]
    path = tmp_path / "bad.h5ad"
    with h5py.File(path, "w") as f:
        _write_group(f.create_group("X"), m, "anndata")
    with pytest.raises(UserFileError, match=rf"index \({SHAPE[1]}\) lies outside"):
        open_user_matrix(f"{path}:/X")


def _netcdf(path, variables: dict) -> None:
    """A netCDF-3 classic file written by scipy's writer; variables: name -> (array, attrs)."""
    with scipy.io.netcdf_file(path, "w") as nc:
        nc.createDimension("row", SHAPE[0])
        nc.createDimension("col", SHAPE[1])
        for name, (values, attrs) in variables.items():
            var = nc.createVariable(name, values.dtype, ("row", "col"))
            var[:] = values
            for key, value in attrs.items():
                setattr(var, key, value)


def test_netcdf3_variables_float_and_cf_packed(tmp_path):
    field = np.random.default_rng(10).random(SHAPE)
    packed = np.round((field - 0.5) / 0.001).astype(np.int16)
    path = tmp_path / "climate.nc"
    _netcdf(path, {"t": (field.astype(np.float32), {}),
                   "p": (packed, {"scale_factor": np.array([0.001]), "add_offset": np.array([0.5])}),
                   "n": (packed, {})})
    user = open_user_matrix(f"{path}:t")
    assert (user.format, user.spec.dtype) == ("netcdf3", "float32")
    _products_match(user, field.astype(np.float32))
    unpacked = open_user_matrix(path, dataset="p")  # in the packing attributes' type, float64
    assert unpacked.spec.dtype == "float64"
    _products_match(unpacked, packed * 0.001 + 0.5)
    counts = open_user_matrix(f"{path}:n")  # integers without packing: the numbers they are
    assert counts.spec.dtype == "float32"
    _products_match(counts, packed)
    with pytest.raises(UserFileError, match=r"holds 3 2-D variables \(t, p, n\)"):
        open_user_matrix(path)


def _write_filtered(path, values: np.ndarray, filter_class) -> bool:
    """True when hdf5plugin's ``filter_class`` (its defaults) could write ``values``: some
    filters take integers only (JPEG-LS, JPEG 2000), which HDF5 reports by failing to write."""
    try:
        with h5py.File(path, "w") as f:
            f.create_dataset("A", data=values, chunks=(7, 10), **filter_class())
        with h5py.File(path, "r") as f:
            f["A"][...]
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def test_every_filter_hdf5plugin_registers_is_read_in_a_userblock_file(tmp_path):
    """Each filter hdf5plugin registers, on float64 or int16 values (whichever it writes), in a
    file with a 512-byte userblock: measured by HDF5's readers against the values h5py decodes
    (lossy filters included); hdf5-direct measures it or is skipped naming the filter."""
    import hdf5plugin

    base = np.random.default_rng(14).random((23, 41)) * 1000
    measured = {}
    for filter_class in hdf5plugin.get_filters():
        path = tmp_path / f"{filter_class.__name__}.h5"
        for values in (base, base.astype(np.int16)):
            if _write_filtered(path, values, filter_class):
                break
        else:
            continue
        with h5py.File(path, "r") as f:
            decoded = f["A"][...]
        with open(path, "rb") as f, h5py.File(tmp_path / "ub.h5", "w", userblock_size=512) as g:
            g.create_dataset("A", data=decoded)
        ran = set(_products_match(open_user_matrix(path), decoded))
        assert {"dense", "hdf5-blocked", "hdf5-chunked"} <= ran, filter_class.__name__
        if "hdf5-direct" not in ran:
            skipped = dict(plan_for(UserFile(open_user_matrix(path))).skipped)
            assert any(k.startswith("hdf5-direct") for k in skipped), filter_class.__name__
        measured[filter_class.__name__] = ran
    assert len(measured) >= 10, sorted(measured)  # all but those that write neither dtype
    user = open_user_matrix(tmp_path / "ub.h5")
    with open(tmp_path / "ub.h5", "rb") as f:
        assert f.read(8) != b"\x89HDF\r\n\x1a\n"  # the userblock comes first
    assert {"dense", "hdf5-mmap", "hdf5-blocked"} <= set(_products_match(user, decoded))


def test_a_compact_dataset_is_measured_by_the_readers_that_can(tmp_path):
    values = np.random.default_rng(15).random((4, 5)).astype(np.float32)
    with h5py.File(tmp_path / "c.h5", "w") as f:
        space = h5py.h5s.create_simple(values.shape)
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        plist.set_layout(h5py.h5d.COMPACT)
        dset = h5py.Dataset(h5py.h5d.create(f.id, b"A", h5py.h5t.NATIVE_FLOAT, space,
                                            dcpl=plist))
        dset[...] = values
        assert dset.id.get_create_plist().get_layout() == h5py.h5d.COMPACT
    user = open_user_matrix(tmp_path / "c.h5")
    assert {"dense", "hdf5-blocked"} <= set(_products_match(user, values))
    skipped = dict(plan_for(UserFile(user)).skipped)
    assert [reason for key, reason in skipped.items() if key.startswith("hdf5-mmap")] == [
        "the dataset's layout is neither contiguous nor chunked (compact?)"]
