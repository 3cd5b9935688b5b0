"""harness.measuring.storage.datasets: identical values in every storage, a cache that never trusts a broken file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import namedtuple

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

from harness.measuring import fit
from harness.measuring.matrix import generate
from harness.measuring.matrix.generate import dense_array, footprint_bytes, nbytes_in_memory, nnz
from harness.measuring.matrix.spec import DatasetSpec, Problem, parse_chunks, parse_shape
from harness.measuring.storage import cache, datasets
from harness.measuring.storage.cache import InsufficientDiskSpaceError, manifest_path
from harness.measuring.storage.datasets import dataset_path, materialize, nbytes_on_disk, verify


def read_back(spec: DatasetSpec, path) -> np.ndarray:
    """The stored matrix as a dense array, read with plain numpy/h5py/scipy calls."""
    if spec.storage in ("raw", "ram"):
        return np.fromfile(path, dtype=spec.dtype).reshape(spec.shape)
    if spec.storage == "hdf5":
        with h5py.File(path, "r") as f:
            return f["A"][...]
    if spec.storage == "npz":
        return sp.load_npz(path).toarray()
    with h5py.File(path, "r") as f:
        return sp.csr_array((f["data"][...], f["indices"][...], f["indptr"][...]),
                            shape=spec.shape).toarray()


@pytest.mark.parametrize("density", [None, 0.0, 0.01, 0.3, 1.0])
def test_same_spec_in_every_storage_holds_identical_values(tmp_path, density):
    base = DatasetSpec((37, 23), "float32", density=density, seed=5)
    storages = [base.with_storage("raw"), base.with_storage("ram"), base.with_storage("hdf5"),
                base.with_storage("hdf5", chunks=(5, 7)), base.with_storage("hdf5", chunks="auto"),
                base.with_storage("hdf5", chunks=(100, 100), compression="gzip"),
                base.with_storage("hdf5", compression="blosc")]
    if density is not None:
        storages += [base.with_storage("npz"), base.with_storage("csr-hdf5")]
    expected = dense_array(base)
    for spec in storages:
        assert np.array_equal(read_back(spec, materialize(spec, tmp_path)), expected), spec


def test_values_depend_on_seed_and_not_on_generation_order():
    a = dense_array(DatasetSpec((9, 11), seed=1))
    b = dense_array(DatasetSpec((9, 11), seed=2))
    assert not np.array_equal(a, b)
    assert np.array_equal(a, dense_array(DatasetSpec((9, 11), seed=1, storage="hdf5")))


def test_density_gives_about_that_many_nonzeros():
    spec = DatasetSpec((200, 5000), density=0.01)
    expected = 0.01 * 200 * 5000
    assert abs(nnz(spec) - expected) < 5 * np.sqrt(expected)
    assert np.count_nonzero(dense_array(spec)) == nnz(spec)  # no explicit zero is stored


def test_sparse_footprint_is_data_indices_indptr_not_getsizeof():
    spec = DatasetSpec((1000, 2000), density=0.05, storage="npz")
    matrix = generate.csr_array(spec)
    footprint = matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
    assert footprint_bytes(matrix) == footprint == nbytes_in_memory(spec)
    assert footprint > 100 * sys.getsizeof(matrix)  # the notebook's 4940-byte figure
    assert footprint_bytes(matrix.tocoo()) == matrix.data.nbytes + 2 * matrix.indices.nbytes


def test_dense_footprint_and_disk_size(tmp_path):
    spec = DatasetSpec((10, 30), "float64", storage="raw")
    assert nbytes_in_memory(spec) == 10 * 30 * 8
    assert nbytes_on_disk(materialize(spec, tmp_path)) == 10 * 30 * 8


def test_materialize_is_idempotent(tmp_path):
    spec = DatasetSpec((20, 30), storage="hdf5", chunks=(7, 7))
    path = materialize(spec, tmp_path)
    before = path.stat()
    assert materialize(spec, tmp_path) == path
    # A rewrite is renamed into place: a new inode, even within one mtime tick (~4 ms here).
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert verify(spec, tmp_path)


def test_file_without_manifest_is_regenerated(tmp_path):
    spec = DatasetSpec((20, 30), storage="raw")
    path = dataset_path(spec, tmp_path)
    path.write_bytes(b"\0" * (20 * 30 * 4))  # right size, wrong content, no manifest
    materialize(spec, tmp_path)
    assert np.array_equal(read_back(spec, path), dense_array(spec))


def test_truncated_file_with_stale_manifest_is_regenerated(tmp_path):
    spec = DatasetSpec((20, 30), storage="raw")
    path = materialize(spec, tmp_path)
    with open(path, "r+b") as f:
        f.truncate(100)
    materialize(spec, tmp_path)
    assert np.array_equal(read_back(spec, path), dense_array(spec))


_SLOW_GENERATOR = textwrap.dedent("""
    import sys, time
    from harness.measuring.matrix.spec import DatasetSpec
    from harness.measuring.storage import datasets
    original = datasets.iter_dense_blocks
    def slow(spec):
        for item in original(spec):
            yield item
            print("block", flush=True)
            time.sleep(60)
    datasets.iter_dense_blocks = slow
    datasets.materialize(DatasetSpec((200, 40000), storage=sys.argv[2]), sys.argv[1])
""")


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["raw", "hdf5"])
def test_generator_killed_half_way_leaves_nothing_reused(tmp_path, storage):
    spec = DatasetSpec((200, 40000), storage=storage)  # 2 generation blocks
    child = subprocess.Popen([sys.executable, "-c", _SLOW_GENERATOR, str(tmp_path), storage],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "block"  # half-way: one block written
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    path = dataset_path(spec, tmp_path)
    assert not path.exists() and not manifest_path(path).exists()
    assert not datasets.is_materialized(spec, tmp_path)
    assert len(list(tmp_path.glob(".*.tmp"))) == 1  # the dead writer's half-written file
    materialize(spec, tmp_path)
    assert np.array_equal(read_back(spec, path), dense_array(spec))
    assert not list(tmp_path.glob(".*.tmp"))  # the dead writer's temporary file is gone


_CONCURRENT = textwrap.dedent("""
    import dataclasses, json, sys, time
    from harness.measuring.matrix.spec import DatasetSpec
    from harness.measuring.storage import base, datasets, raw
    calls = 0
    def counting(*args, **kwargs):
        global calls
        calls += 1
        raw.write(*args, **kwargs)
    base.registry()["raw"] = dataclasses.replace(raw.STORAGE, write=counting)
    while time.time() < float(sys.argv[2]):
        time.sleep(0.001)
    path = datasets.materialize(DatasetSpec((300, 50000)), sys.argv[1])
    print(json.dumps({"path": str(path), "generated": calls, "mtime": path.stat().st_mtime_ns}))
""")


@pytest.mark.slow
def test_two_processes_materialising_at_once_produce_one_valid_file(tmp_path):
    start_at = time.time() + 1.5  # both start writing at the same instant
    children = [subprocess.Popen([sys.executable, "-c", _CONCURRENT, str(tmp_path), str(start_at)],
                                 stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = [json.loads(child.communicate(timeout=120)[0]) for child in children]
    assert [child.returncode for child in children] == [0, 0]
    assert sum(r["generated"] for r in results) == 1
    assert results[0]["path"] == results[1]["path"]
    assert results[0]["mtime"] == results[1]["mtime"]
    assert verify(DatasetSpec((300, 50000)), tmp_path)


def test_out_of_disk_is_refused_before_writing(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(fit.shutil, "disk_usage", lambda _: usage(10**9, 10**9, 1000))
    spec = DatasetSpec((100, 100), storage="raw")  # 40 kB > 1000 bytes free
    with pytest.raises(InsufficientDiskSpaceError, match="not enough free disk"):
        materialize(spec, tmp_path)
    assert not [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")]


def test_free_disk_must_exceed_size_by_ten_percent(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    size = 100 * 100 * 4
    monkeypatch.setattr(fit.shutil, "disk_usage", lambda _: usage(10**9, 0, int(size * 1.05)))
    with pytest.raises(InsufficientDiskSpaceError):
        materialize(DatasetSpec((100, 100)), tmp_path)
    # Past the 10 % margin it is written: the margin is 10 %, not any larger refusal.
    monkeypatch.setattr(fit.shutil, "disk_usage", lambda _: usage(10**9, 0, int(size * 1.15)))
    assert nbytes_on_disk(materialize(DatasetSpec((100, 100)), tmp_path)) == size


@pytest.mark.parametrize("kwargs, fragment", [
    ({"shape": (0, 5)}, "shape"),
    ({"shape": (5, 5), "storage": "tape"}, "storage"),
    ({"shape": (5, 5), "dtype": "int8"}, "dtype"),
    ({"shape": (5, 5), "density": 1.5}, "density"),
    ({"shape": (5, 5), "storage": "npz"}, "give a density"),
    ({"shape": (5, 5), "storage": "raw", "chunks": (2, 2)}, "storage 'hdf5' only"),
    ({"shape": (5, 5), "storage": "hdf5", "compression": "zip"}, "compression"),
])
def test_bad_spec_is_refused_with_a_clear_error(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        DatasetSpec(**kwargs)


def test_spec_is_hashable_and_normalised():
    a = DatasetSpec([10, 20], np.float32, storage="hdf5", chunks=[2, 5])
    b = DatasetSpec((10, 20), "float32", storage="hdf5", chunks=(2, 5))
    assert a == b and hash(a) == hash(b)
    assert DatasetSpec((4, 4), storage="hdf5", compression="gzip").chunks == "auto"
    assert DatasetSpec.from_dict(json.loads(json.dumps(a.to_dict()))) == a


def test_problem_keeps_its_hdf5_layout_for_hdf5_storage_only():
    problem = Problem([10, 20], np.float64, density=0.5, compression="gzip")
    assert problem.chunks == "auto"  # checked and normalised as a DatasetSpec is
    assert problem.in_storage("hdf5") == DatasetSpec((10, 20), "float64", 0.5, storage="hdf5",
                                                     chunks="auto", compression="gzip")
    assert problem.in_storage("npz") == DatasetSpec((10, 20), "float64", 0.5, storage="npz")
    assert problem.in_storage("hdf5").problem == problem
    assert not Problem((3, 3)).storable_in("npz")
    with pytest.raises(ValueError, match="compression"):
        Problem((3, 3), compression="zip")


@pytest.mark.parametrize("text, shape", [("1000x100000", (1000, 100000)), ("3X4", (3, 4)),
                                         ("5,6", (5, 6))])
def test_shape_is_parsed_from_rows_x_cols(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["1000-100000", "0x5", "1x2x3", "x"])
def test_bad_shape_is_a_clear_error(text):
    with pytest.raises(ValueError, match="rows x cols"):
        parse_shape(text)


def test_chunks_are_parsed_from_text():
    assert parse_chunks("10x100000") == (10, 100000)
    assert parse_chunks("auto") == "auto"
    assert parse_chunks("none") is None and parse_chunks("contiguous") is None
    with pytest.raises(ValueError, match="'auto' or 'none'"):
        parse_chunks("big")


def test_default_root_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "data"))
    assert datasets.default_root() == tmp_path / "data"
    monkeypatch.delenv("HARNESS_DATA_DIR")
    # Not just a name "data" (the variable's path above has that name too): the cache dir's.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert datasets.default_root() == tmp_path / "cache" / "harness" / "data"


def test_unwritable_root_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="HARNESS_DATA_DIR"):
        materialize(DatasetSpec((3, 3)), blocker / "sub")


def test_a_killed_writers_temporary_is_removed_by_the_next_materialize_of_any_spec(tmp_path):
    one, other = DatasetSpec((64, 32)), DatasetSpec((32, 64))
    path = dataset_path(one, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_name(path.name + ".lock").touch()  # its writer took the lock before writing
    abandoned = path.with_name(f".{path.name}.999999.tmp")  # a killed writer's 587 MB file
    abandoned.write_bytes(b"\0" * 4096)
    materialize(other, tmp_path)
    assert not abandoned.exists()


def test_a_users_files_that_look_like_temporaries_are_left_alone(tmp_path):
    # The data directory may be one the user chose (--data-dir, HARNESS_DATA_DIR): a file of
    # theirs named like a temporary, with no lock of the harness's, is not the harness's.
    users_dir = tmp_path / ".mydata.2024.tmp"
    users_dir.mkdir()
    (users_dir / "file").write_text("the user's")
    users_file = tmp_path / ".report.txt.17.tmp"
    users_file.write_text("the user's too")
    materialize(DatasetSpec((32, 64)), tmp_path)
    assert (users_dir / "file").read_text() == "the user's"
    assert users_file.read_text() == "the user's too"
    assert not (tmp_path / "mydata.lock").exists() and not (tmp_path / "report.txt.lock").exists()
    assert cache.remove_abandoned_temporaries(tmp_path) == []
    assert (users_dir / "file").exists() and users_file.exists()
    assert [p.name for p in tmp_path.glob("*.lock")] == [
        dataset_path(DatasetSpec((32, 64)), tmp_path).name + ".lock"]


def test_a_temporary_being_written_is_left_alone(tmp_path):
    import fcntl

    one, other = DatasetSpec((64, 32)), DatasetSpec((32, 64))
    path = dataset_path(one, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    busy = path.with_name(f".{path.name}.999999.tmp")
    busy.write_bytes(b"\0" * 16)
    with open(path.with_name(path.name + ".lock"), "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # its writer is alive
        materialize(other, tmp_path)
    assert busy.exists()


def test_a_file_changed_in_place_fails_its_checksum_and_is_regenerated(tmp_path):
    spec = DatasetSpec((64, 32))
    path = materialize(spec, tmp_path)
    good = path.read_bytes()
    info = path.stat()
    with open(path, "r+b") as f:
        f.write(b"\xff\xff\xff\xff")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # size and mtime unchanged
    assert materialize(spec, tmp_path) == path and path.read_bytes() != good  # not checked
    materialize(spec, tmp_path, verify_checksum=True)
    assert path.read_bytes() == good


def test_npz_is_written_block_by_block_and_loads_as_scipys(tmp_path, monkeypatch):
    # The whole-matrix builder must not be called: a large sparse file is never whole in RAM.
    import scipy.sparse as sp

    spec = DatasetSpec((3000, 700), "float64", density=0.3, storage="npz")
    reference = generate.csr_array(spec)

    def whole_matrix(*args, **kwargs):
        raise AssertionError("the npz writer built the whole matrix")

    monkeypatch.setattr(generate, "_csr_arrays", whole_matrix)
    monkeypatch.setattr(generate, "csr_array", whole_matrix)
    loaded = sp.load_npz(datasets.materialize(spec, tmp_path))
    assert type(loaded).__name__ == "csr_array" and loaded.dtype == reference.dtype
    assert np.array_equal(loaded.indptr, reference.indptr)
    assert np.array_equal(loaded.indices, reference.indices)
    assert np.array_equal(loaded.data, reference.data)
