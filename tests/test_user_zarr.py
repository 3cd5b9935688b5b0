"""A user's zarr store (``measure --file store.zarr``) and zarr copies (``--also-as zarr``):
every strategy that reads zarr equals the dense reference on the store in place, the store is
never modified, a copy equals the matrix, and every problem is one line. (A killed zarr
conversion is tested beside the other killed conversions, in test_user_matrix.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numcodecs
import numpy as np
import pytest
import zarr

from harness.cli import main
from harness.measuring import strategies
from harness.measuring.runs.plan import plan_for
from harness.measuring.runs.sources import UserFile
from harness.measuring.storage import copies as convert
from harness.measuring.storage import datasets
from harness.measuring.storage import files as filetree
from harness.measuring.storage import zarr as zarr_store
from harness.measuring.storage.base import UserFileError
from harness.measuring.storage.user import open_user_matrix


def plan_for_file(user, copies=(), **kwargs):
    """The runs and skips of a user's matrix and its copies."""
    plan = plan_for(UserFile(user, tuple(copies)), **kwargs)
    return list(plan.runs), list(plan.skipped)

SHAPE = (60, 700)
#: Strategies that read a zarr store (dask-distributed starts a cluster: test_distributed's).
ZARR_READERS = {"dense", "zarr-blocked", "tensorstore-blocked", "zarr-mmap", "dask-threads"}


def _matrix(dtype="float32") -> np.ndarray:
    return np.random.default_rng(5).random(SHAPE, dtype=np.dtype(dtype))


@pytest.fixture
def stores(tmp_path: Path) -> dict[str, tuple[str, np.ndarray]]:
    """name -> (the --file argument, the matrix it holds): zarr stores as users write them."""
    a32, a64 = _matrix("float32"), _matrix("float64")
    root = zarr.create_array(store=str(tmp_path / "root.zarr"), shape=SHAPE, chunks=(7, 100),
                             dtype="float32", compressors=None)
    root[:] = a32
    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.create_array("results/A", shape=SHAPE, chunks=(8, 700), shards=(16, 700),
                       dtype="float64")[:] = a64
    group.create_array("results/labels", shape=(SHAPE[0],), dtype="int32")[:] = 1
    v2 = zarr.create_array(store=str(tmp_path / "v2.zarr"), shape=SHAPE, chunks=(9, 350),
                           dtype="float32", zarr_format=2, compressors=None)
    v2[:] = a32
    v2_blosc = zarr.create_array(store=str(tmp_path / "v2-blosc.zarr"), shape=SHAPE,
                                 chunks=(9, 700), dtype="float64", zarr_format=2,
                                 compressors=numcodecs.Blosc(cname="lz4"))
    v2_blosc[:] = a64
    return {
        "format 3, uncompressed": (str(tmp_path / "root.zarr"), a32),
        "format 3, sharded zstd, in a group": (str(tmp_path / "group.zarr"), a64),
        "format 2, uncompressed": (str(tmp_path / "v2.zarr"), a32),
        "format 2, blosc": (str(tmp_path / "v2-blosc.zarr"), a64),
    }


def _fingerprint(path: str) -> tuple[str, tuple[int, int], list[tuple[str, int]]]:
    """Checksum, (size, newest mtime) and every file's mtime of a store."""
    path = Path(path.split(":")[0])
    mtimes = [(os.fspath(f.relative_to(path)), f.stat().st_mtime_ns) for f in filetree.files(path)]
    return filetree.checksum(path), filetree.size_and_mtime(path), mtimes


@pytest.mark.parametrize("name", ["format 3, uncompressed", "format 3, sharded zstd, in a group",
                                  "format 2, uncompressed", "format 2, blosc"])
def test_every_zarr_strategy_on_a_users_store_equals_the_dense_reference(stores, name):
    text, matrix = stores[name]
    before = _fingerprint(text)
    user = open_user_matrix(text)
    assert (user.format, user.spec.storage, user.spec.shape) == ("zarr", "zarr", SHAPE)
    assert user.spec.dtype == matrix.dtype.name
    x = datasets.vector(SHAPE[1], user.spec.dtype)
    expected = matrix.astype(np.float64) @ x.astype(np.float64)
    np.testing.assert_allclose(UserFile(user).reference(x), expected, rtol=1e-12)
    runs, skipped = plan_for_file(user)
    ran = {run.strategy for run in runs} - {"dask-distributed"}
    mappable = user.spec.compression is None and user.spec.shards is None
    assert ran == ZARR_READERS - (set() if mappable else {"zarr-mmap"}), (ran, skipped)
    for run in runs:
        if run.strategy == "dask-distributed":
            continue
        with strategies.get(run.strategy).open_at(run.spec, run.location) as operand:
            y = operand.matvec(x)
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4, err_msg=run.key)
    assert _fingerprint(text) == before, "reading the store changed it"


def test_a_store_is_described_as_it_is(stores):
    user = open_user_matrix(stores["format 3, sharded zstd, in a group"][0])
    assert user.location.dataset == "results/A"
    assert (user.spec.chunks, user.spec.shards, user.spec.compression) == \
        ((8, 700), (16, 700), "zstd")
    described = user.describe()
    assert described["file"].endswith("group.zarr") and described["dataset"] == "results/A"
    # How the measuring child finds it.
    again = open_user_matrix(described["file"], dataset=described["dataset"])
    assert again.location == user.location and again.spec == user.spec
    assert open_user_matrix(stores["format 2, blosc"][0]).spec.compression == "blosc-lz4"


def test_also_as_zarr_from_a_npy_equals_the_users_matrix(tmp_path):
    matrix = _matrix("float32")
    np.save(tmp_path / "a.npy", matrix)
    user = open_user_matrix(tmp_path / "a.npy")
    root = tmp_path / "data"
    copy = convert.convert(user, "zarr", chunks=(10, 350), compression="blosc-zstd", root=root)
    assert copy.spec.storage == "zarr" and copy.location.path.is_dir()
    assert copy.label == "zarr chunks=10x350 blosc-zstd (copy)"
    assert convert.trusted_copy(user, "zarr", chunks=(10, 350), compression="blosc-zstd",
                                root=root) == copy
    stored = zarr_store.open_array(copy.location)
    assert stored.chunks == (10, 350) and zarr_store.codec_name(stored) == "blosc-zstd"
    np.testing.assert_array_equal(stored[...], matrix)
    x = datasets.vector(SHAPE[1], "float32")
    runs, _ = plan_for_file(user, [copy])
    on_copy = {run.strategy: run for run in runs if run.label == copy.label}
    assert set(on_copy) >= {"zarr-blocked", "tensorstore-blocked", "dask-threads"}
    for run in on_copy.values():
        if run.strategy == "dask-distributed":
            continue
        with strategies.get(run.strategy).open_at(run.spec, run.location) as operand:
            y = operand.matvec(x)
        np.testing.assert_allclose(y, matrix.astype(np.float64) @ x, rtol=1e-4, atol=1e-4,
                                   err_msg=run.key)


def test_measure_file_on_a_store_with_a_zarr_copy_leaves_the_store_unchanged(stores, tmp_path,
                                                                            capsys):
    text = stores["format 2, blosc"][0]
    before = _fingerprint(text)
    status = main(["measure", "--file", text, "--also-as", "zarr", "--strategies",
                   "dense,zarr-blocked,zarr-mmap", "--cache", "cold", "--repeat", "1",
                   "--no-roofline", "--data-dir", str(tmp_path / "data"), "--format", "json"])
    assert status == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert _fingerprint(text) == before
    # zarr-mmap maps the uncompressed copy only; the store's own chunks are blosc-encoded.
    assert [(r["strategy"], r["storage"].split("(")[1][:-1]) for r in out["records"]] == [
        ("dense", "yours"), ("zarr-blocked", "yours"), ("zarr-blocked", "copy"),
        ("zarr-mmap", "copy")]
    assert all(r["max_abs_error"] < 1e-3 for r in out["records"])


def test_zarr_problems_are_one_line_naming_the_problem_and_the_fix(stores, tmp_path, capsys):
    group = stores["format 3, sharded zstd, in a group"][0]
    with pytest.raises(UserFileError, match=r"no array /nowhere .*results/A.*group.zarr:/path"):
        open_user_matrix(f"{group}:/nowhere")
    cplx = zarr.create_array(store=str(tmp_path / "cplx.zarr"), shape=(3, 4), dtype="complex64")
    cplx[:] = 1
    with pytest.raises(UserFileError, match="complex values.*float32"):
        open_user_matrix(tmp_path / "cplx.zarr")
    cube = zarr.create_array(store=str(tmp_path / "cube.zarr"), shape=(2, 3, 4), dtype="float32")
    with pytest.raises(UserFileError, match=r"not a matrix.*\(2, 3, 4\)"):
        open_user_matrix(tmp_path / "cube.zarr")
    del cube
    two = zarr.open_group(str(tmp_path / "two.zarr"), mode="w")
    for name in ("a", "b"):
        two.create_array(name, shape=SHAPE, dtype="float32")
    with pytest.raises(UserFileError, match="holds 2 2-D arrays .*name one as two.zarr:/"):
        open_user_matrix(tmp_path / "two.zarr")
    status = main(["measure", "--file", str(tmp_path / "two.zarr"), "--no-roofline"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and "holds 2 2-D arrays" in err
    np.save(tmp_path / "a.npy", _matrix())
    with pytest.raises(UserFileError, match="zarr stores take the codecs.*not 'gzip'"):
        convert.convert(open_user_matrix(tmp_path / "a.npy"), "zarr", compression="gzip",
                        root=tmp_path / "data")
