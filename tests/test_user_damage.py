"""A user's file as other tools name and damage it: dataset names with colons, types numpy
cannot hold, lying sparse files, zarr v2 stores with nested keys and no separator, damaged
chunks. Each is measured or refused in one line (exit 2), never a traceback or a figure of
fill values; nothing is written next to the file."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
import zarr

from harness.cli import main

SHAPE = (40, 300)


def _matrix(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(SHAPE).astype("float32")


def _measure(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["measure", *args, "--repeat", "1", "--no-roofline", "--format", "json"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _one_error_line(err: str) -> str:
    """The error line of a refused run; fails on a traceback."""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path / "data")


def test_a_dataset_name_with_colons_is_measured_both_ways(tmp_path, capsys, data_dir):
    a = _matrix()
    path = tmp_path / "weights.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("dense/kernel:0", data=a, chunks=(10, 300), compression="gzip")
    for args in ([f"{path}:/dense/kernel:0"], [str(path), "--dataset", "dense/kernel:0"]):
        status, out, err = _measure(capsys, "--file", *args, "--strategies",
                                    "hdf5-direct,hdf5-blocked", "--data-dir", data_dir)
        assert status == 0, err
        records = json.loads(out)["records"]
        assert {r["strategy"] for r in records} == {"dense", "hdf5-direct", "hdf5-blocked"}
        # Each product against the reference computed from the file by its format's reader.
        assert all(r["max_abs_error"] < 1e-3 for r in records)


def test_a_128_bit_float_is_refused_in_one_line(tmp_path, capsys, data_dir):
    path = tmp_path / "quad.h5"
    with h5py.File(path, "w") as f:
        quad = h5py.h5t.IEEE_F64LE.copy()
        quad.set_size(16)
        quad.set_precision(128)
        quad.set_fields(127, 112, 15, 0, 112)
        quad.set_ebias(16383)
        h5py.h5d.create(f.id, b"Q", quad, h5py.h5s.create_simple(SHAPE))
    status, out, err = _measure(capsys, "--file", f"{path}:/Q", "--data-dir", data_dir)
    assert status == 2 and out == ""
    assert "numpy cannot represent" in _one_error_line(err)


def test_a_column_index_past_the_shape_is_refused_when_opened(tmp_path, capsys, data_dir):
    m = sp.random(*SHAPE, density=0.1, format="csr", random_state=2, dtype=np.float32)
    indices = m.indices.copy()
    indices[5] = SHAPE[1] + 7  # csr would read past the end of x
    path = tmp_path / "damaged.npz"
    np.savez(path, indices=indices, indptr=m.indptr, data=m.data, format=np.array(b"csr"),
             shape=np.array(SHAPE), _is_array=np.array(True))
    status, out, err = _measure(capsys, "--file", str(path), "--data-dir", data_dir)
    assert status == 2 and out == ""
    assert f"({SHAPE[1] + 7}) lies outside its {SHAPE[1]} columns" in _one_error_line(err)


def test_an_npz_member_whose_header_lies_is_refused_before_it_is_loaded(tmp_path, capsys,
                                                                       data_dir):
    m = sp.random(*SHAPE, density=0.1, format="csr", random_state=3, dtype=np.float32)
    path = tmp_path / "lying.npz"
    sp.save_npz(path, m, compressed=False)
    # The data member's header announces 10**9 values; the archive holds a few hundred.
    import zipfile

    members = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            members[name] = archive.read(name)
    header = members["data.npy"]
    members["data.npy"] = header.replace(f"({m.nnz},)".encode(), b"(1000000000,)", 1)
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    status, out, err = _measure(capsys, "--file", str(path), "--data-dir", data_dir)
    assert status == 2 and out == ""
    line = _one_error_line(err)
    assert "data.npy declares 4000000000 bytes" in line and "damaged" in line


def test_zarr_v2_nested_keys_without_a_separator_name_the_fix(tmp_path, capsys, data_dir):
    path = tmp_path / "old.zarr"
    array = zarr.create_array(store=str(path), shape=SHAPE, chunks=(10, 100), dtype="float32",
                              zarr_format=2, compressors=None, fill_value=0,
                              chunk_key_encoding={"name": "v2", "separator": "/"})
    array[:] = _matrix()
    meta = json.loads((path / ".zarray").read_text())
    meta.pop("dimension_separator", None)  # what zarr before 2.8 wrote
    (path / ".zarray").write_text(json.dumps(meta))
    status, out, err = _measure(capsys, "--file", str(path), "--data-dir", data_dir)
    assert status == 2 and out == ""
    line = _one_error_line(err)
    assert "'0/0'" in line and '"dimension_separator": "/"' in line


def _damaged_hdf5(tmp_path):
    path = tmp_path / "damaged.h5"
    with h5py.File(path, "w") as f:
        dset = f.create_dataset("X", data=_matrix(), chunks=(10, 300), compression="gzip")
        info = dset.id.get_chunk_info(1)  # the second chunk-row: rows 10-19
    with open(path, "r+b") as f:
        f.seek(info.byte_offset + 20)
        f.write(b"\0" * 40)
    return path


def test_a_damaged_hdf5_chunk_ends_the_run_in_one_line_naming_it(tmp_path, capsys, data_dir):
    path = _damaged_hdf5(tmp_path)
    before = sorted(os.listdir(tmp_path))
    status, out, err = _measure(capsys, "--file", f"{path}:/X", "--data-dir", data_dir)
    assert status == 2 and out == ""
    line = _one_error_line(err)
    assert f"{path}:/X: rows 10-19 (chunks of 10x300) cannot be read" in line
    assert sorted(os.listdir(tmp_path)) == before  # nothing written beside the file


def test_a_damaged_zarr_chunk_ends_the_run_in_one_line_naming_it(tmp_path, capsys, data_dir):
    path = tmp_path / "damaged.zarr"
    array = zarr.create_array(store=str(path), shape=SHAPE, chunks=(10, 300), dtype="float32",
                              compressors=zarr.codecs.ZstdCodec(level=3), fill_value=0)
    array[:] = _matrix()
    chunk = path / "c" / "2" / "0"  # rows 20-29
    chunk.write_bytes(chunk.read_bytes()[:-9])
    status, out, err = _measure(capsys, "--file", str(path), "--data-dir", data_dir)
    assert status == 2 and out == ""
    assert "rows 20-29 (chunks of 10x300) cannot be read" in _one_error_line(err)


def test_failed_measurements_get_no_recommendation(tmp_path, capsys, data_dir):
    path = tmp_path / "a.npy"
    np.save(path, _matrix())
    status = main(["measure", "--file", str(path), "--strategies", "memmap", "--repeat", "1",
                   "--no-roofline", "--timeout", "0.01", "--data-dir", data_dir])
    captured = capsys.readouterr()
    assert status == 1
    assert "FAILED memmap" in captured.out and "took longer than 0.01 s" in captured.out
    assert "no recommendation: " in captured.out and "fastest within" not in captured.out


@pytest.mark.slow  # every strategy, the cluster's included, on two stores
def test_stores_a_reader_cannot_read_are_skipped_while_planning(tmp_path, capsys, data_dir):
    a = _matrix()
    checksummed = tmp_path / "checksummed.zarr"
    array = zarr.create_array(store=str(checksummed), shape=SHAPE, chunks=(10, 300),
                              dtype="float32", fill_value=0,
                              compressors=[zarr.codecs.ZstdCodec(level=3),
                                           zarr.codecs.numcodecs.Fletcher32()])
    array[:] = a
    status, out, err = _measure(capsys, "--file", str(checksummed), "--data-dir", data_dir)
    assert status == 0, err
    result = json.loads(out)
    assert "zarr-blocked" in {r["strategy"] for r in result["records"]}
    skipped = dict(result["skipped"])
    assert "does not decode Fletcher32" in skipped["tensorstore-blocked on zarr (yours)"]
    fortran = tmp_path / "fortran.zarr"
    array = zarr.create_array(store=str(fortran), shape=SHAPE, chunks=(10, 300), dtype="float32",
                              zarr_format=2, order="F", compressors=None, fill_value=0)
    array[:] = a
    status, out, err = _measure(capsys, "--file", str(fortran), "--data-dir", data_dir)
    assert status == 0, err
    result = json.loads(out)
    # Fortran-order chunk files are mapped as they lie (each chunk a column-major block).
    assert "zarr-mmap" in {r["strategy"] for r in result["records"]}
    assert all(r["max_abs_error"] < 1e-3 for r in result["records"])
