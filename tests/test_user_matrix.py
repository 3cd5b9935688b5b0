"""A user's own matrix (``measure --file``): every format read in place equals the dense
reference, the file is never modified, conversions are trusted only when whole, and every
problem with the file is one line naming the problem and the fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

from harness.cli import main
from harness.measuring import strategies
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.runs.measure import measure_store
from harness.measuring.runs.plan import plan_for
from harness.measuring.runs.sources import UserFile
from harness.measuring.storage import cache, datasets, formats
from harness.measuring.storage import copies as convert
from harness.measuring.storage import files as filetree
from harness.measuring.storage import zarr as zarr_store
from harness.measuring.storage.base import UserFileError
from harness.measuring.storage.user import open_user_matrix


def plan_for_file(user, copies=(), **kwargs):
    """The runs and skips of a user's matrix and its copies."""
    plan = plan_for(UserFile(user, tuple(copies)), **kwargs)
    return list(plan.runs), list(plan.skipped)

SHAPE = (60, 700)


def _matrix(dtype="float32") -> np.ndarray:
    return np.random.default_rng(3).random(SHAPE, dtype=np.dtype(dtype))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, tuple[str, np.ndarray, dict]]:
    """name -> (the --file argument, the matrix it holds, open_user_matrix keyword arguments)."""
    a32, a64 = _matrix("float32"), _matrix("float64")
    np.save(tmp_path / "a.npy", a32)
    a64.tofile(tmp_path / "a.bin")
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("plain", data=a64)
        f.create_dataset("group/chunked", data=a32, chunks=(7, 100), compression="lzf")
        f.create_dataset("vector", data=np.arange(5.0))
    sparse = sp.random(*SHAPE, density=0.05, format="csc", dtype=np.float32, random_state=1)
    sp.save_npz(tmp_path / "s.npz", sparse)
    return {
        "npy": (str(tmp_path / "a.npy"), a32, {}),
        "raw": (str(tmp_path / "a.bin"), a64, {"shape": SHAPE, "dtype": "float64"}),
        "hdf5": (f"{tmp_path / 'a.h5'}:/plain", a64, {}),
        "hdf5-chunked": (f"{tmp_path / 'a.h5'}:/group/chunked", a32, {}),
        "npz": (str(tmp_path / "s.npz"), sparse.toarray(), {}),
    }


def _fingerprint(path: str) -> tuple[str, int]:
    path = Path(path.split(":")[0])
    return filetree.checksum(path), path.stat().st_mtime_ns


@pytest.mark.parametrize("name", ["npy", "raw", "hdf5", "hdf5-chunked", "npz"])
def test_every_strategy_on_each_format_equals_the_dense_reference(files, name, tmp_path):
    text, matrix, kwargs = files[name]
    user = open_user_matrix(text, **kwargs)
    assert user.spec.shape == SHAPE and user.spec.dtype == matrix.dtype.name
    x = datasets.vector(SHAPE[1], user.spec.dtype)
    expected = matrix.astype(np.float64) @ x.astype(np.float64)
    np.testing.assert_allclose(UserFile(user).reference(x), expected, rtol=1e-12)
    runs, _ = plan_for_file(user)
    names = {run.strategy for run in runs}
    assert "dense" in names and len(names) >= 2  # the reference and at least one other
    for run in runs:
        with strategies.get(run.strategy).open_at(run.spec, run.location) as operand:
            y = operand.matvec(x)
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4, err_msg=run.key)


@pytest.mark.parametrize("target", ["raw", "hdf5", "csr-hdf5"])
def test_each_copy_equals_the_users_matrix(files, target, tmp_path):
    text, matrix, kwargs = files["npz"] if target == "csr-hdf5" else files["hdf5-chunked"]
    user = open_user_matrix(text, **kwargs)
    copy = convert.convert(user, target, root=tmp_path / "data",
                           chunks=(10, 700) if target == "hdf5" else None)
    assert convert.trusted_copy(user, target, chunks=copy.spec.chunks, root=tmp_path / "data")
    x = datasets.vector(SHAPE[1], user.spec.dtype)
    runs, _ = plan_for_file(user, [copy])
    on_copy = [run for run in runs if run.label == copy.label]
    assert on_copy, runs
    for run in on_copy:
        with strategies.get(run.strategy).open_at(run.spec, run.location) as operand:
            y = operand.matvec(x)
        np.testing.assert_allclose(y, matrix.astype(np.float64) @ x, rtol=1e-4, atol=1e-4,
                                   err_msg=run.key)
    if target == "csr-hdf5":
        assert copy.spec.density == pytest.approx(np.count_nonzero(matrix) / matrix.size)


def test_a_measurement_in_place_checks_against_the_users_values(files):
    text, _, kwargs = files["npy"]
    user = open_user_matrix(text, **kwargs)
    run = next(r for r in plan_for_file(user)[0] if r.strategy == "memmap-blocked")
    measurement = measure_store(run.strategy, run.store, UserFile(user), cache="cold", repeat=1)
    assert measurement.max_abs_error < 1e-3
    assert measurement.spec["shape"] == list(SHAPE)


@pytest.mark.slow
def test_the_users_file_is_unchanged_after_a_run(files, tmp_path, capsys):
    # The .npy in both cache states (a cold pass evicts its pages); the HDF5 file cold, and
    # copied: the copy reads it too.
    for name, cache_state, strategy in (("npy", "both", "memmap-blocked"),
                                        ("hdf5-chunked", "cold", "hdf5-blocked")):
        text = files[name][0]
        before = _fingerprint(text)
        status = main(["measure", "--file", text, "--also-as", "raw", "--strategies",
                       f"dense,{strategy}", "--cache", cache_state, "--repeat", "1",
                       "--no-roofline", "--data-dir", str(tmp_path / "data"),
                       "--memory-budget", "1MiB", "--format", "json"])
        assert status == 0, capsys.readouterr().err
        out = json.loads(capsys.readouterr().out)
        assert _fingerprint(text) == before
        states = ("warm", "cold") if cache_state == "both" else (cache_state,)
        stores = [("dense", "yours"), (strategy, "yours")]
        if strategy == "memmap-blocked":
            stores.append((strategy, "copy"))  # it reads the raw copy too
        assert [(r["strategy"], r["storage"].split("(")[1][:-1], r["cache"])
                for r in out["records"]] == [(s, where, c) for c in states for s, where in stores]
        assert all(r["max_abs_error"] < 1e-3 for r in out["records"])
        # The fastest within the budget is one that took at most 1 MiB of anonymous memory.
        advice = out["recommendation"]
        assert advice["budget_bytes"] == 1 << 20
        for state in states:
            chosen = advice[state]["fastest_within_budget"]
            assert chosen["anon_increment_bytes"] <= 1 << 20
            assert advice[state]["line"].startswith(f"{state}: fastest within 1.0 MiB")


def _kill_a_slow_conversion(text: str, rows_per_block: int, call: str, setup: str = "") -> None:
    """Run ``call`` (a conversion of the matrix in ``text``, as ``user``) in a child that reads
    ``rows_per_block`` rows at a time with a pause after each, and kill it after 3 blocks."""
    child = f"""
import sys, time
from harness.measuring.storage import copies as convert
from harness.measuring.storage import user as user_matrix
from harness.measuring.storage import zarr as zarr_store
{setup}
user = user_matrix.open_user_matrix({text!r})
blocks = user_matrix.UserMatrix.row_blocks
def slow(self, max_bytes=0):
    for item in blocks(self, {rows_per_block} * {SHAPE[1]} * 4):
        print("block", flush=True)
        time.sleep(0.2)
        yield item
user_matrix.UserMatrix.row_blocks = slow
{call}
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, env=env)
    for _ in range(3):
        assert proc.stdout.readline().startswith(b"block")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_conversion_killed_half_way_leaves_nothing_trusted(files, tmp_path):
    text, matrix, _kwargs = files["npy"]
    root = tmp_path / "data"
    # A child converts slowly (a pause per block of 4 rows) and is killed mid-way.
    _kill_a_slow_conversion(text, 4, f"convert.convert(user, 'raw', root={str(root)!r})")
    user = open_user_matrix(text)
    final = convert.converted_path(user, "raw", root=root)
    assert list(root.glob(f".{final.name}.*.tmp")), "the killed child left its temporary file"
    assert not final.exists() and convert.trusted_copy(user, "raw", root=root) is None
    # A file in place without its manifest is not trusted either; the next run writes it again.
    final.write_bytes(b"\0" * 10)
    assert convert.trusted_copy(user, "raw", root=root) is None
    copy = convert.convert(user, "raw", root=root)
    assert not list(root.glob(f".{final.name}.*.tmp"))
    assert np.array_equal(np.fromfile(copy.location.path, dtype=np.float32).reshape(SHAPE), matrix)
    # A source changed since the copy: the copy is no longer trusted.
    time.sleep(0.01)
    np.save(text, matrix * 2)
    assert convert.trusted_copy(open_user_matrix(text), "raw", root=root) is None


def test_a_zarr_conversion_killed_half_way_leaves_nothing_trusted(tmp_path):
    matrix = _matrix("float32")
    text = str(tmp_path / "a.npy")
    np.save(text, matrix)
    root = tmp_path / "data"
    # A child converts slowly, and zarr_store writes one chunk-row (5 rows) at a time.
    _kill_a_slow_conversion(
        text, 5, f"convert.convert(user, 'zarr', chunks=(5, 700), root={str(root)!r})",
        setup="zarr_store.WRITE_BLOCK_BYTES = 1")
    user = open_user_matrix(text)
    final = convert.converted_path(user, "zarr", chunks=(5, 700), root=root)
    partial = list(root.glob(f".{final.name}.*.tmp"))
    assert partial and partial[0].is_dir(), "the killed child left its temporary store"
    assert len(list((partial[0] / "A" / "c").iterdir())) < SHAPE[0] // 5  # half-written
    assert not final.exists()
    assert convert.trusted_copy(user, "zarr", chunks=(5, 700), root=root) is None
    # A store in place without its manifest is not trusted either; the next run writes it again.
    final.mkdir()
    (final / "zarr.json").write_text("{}")
    assert convert.trusted_copy(user, "zarr", chunks=(5, 700), root=root) is None
    copy = convert.convert(user, "zarr", chunks=(5, 700), root=root)
    assert not list(root.glob(f".{final.name}.*.tmp"))
    np.testing.assert_array_equal(zarr_store.open_array(copy.location)[...], matrix)
    # A chunk file rewritten since the copy was sealed: the copy is no longer trusted.
    chunk = final / "A" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes())
    assert convert.trusted_copy(user, "zarr", chunks=(5, 700), root=root) is None


def _one_line_error(capsys, argv: list[str]) -> str:
    status = main(["measure", *argv, "--no-roofline", "--repeat", "1"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    return err


def test_errors_are_one_line_naming_the_problem_and_the_fix(files, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a matrix")
    err = _one_line_error(capsys, ["--file", str(notes)])
    assert "raw binary matrix" in err and "--shape" in err
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    err = _one_line_error(capsys, ["--file", str(tmp_path / "cube.npy")])
    assert "not a matrix" in err and "(2, 3, 4)" in err and "reshape" in err
    err = _one_line_error(capsys, ["--file", f"{tmp_path / 'a.h5'}:/nowhere"])
    assert "no dataset /nowhere" in err and "/group/chunked" in err and "a.h5:/path" in err
    err = _one_line_error(capsys, ["--file", str(tmp_path / "a.h5")])
    assert "holds 2 2-D datasets" in err and "name one" in err
    err = _one_line_error(capsys, ["--file", str(tmp_path / "a.bin"), "--shape", "60x701",
                                   "--dtype", "float64"])
    assert "336000 bytes" in err and "needs 336480" in err and "shape and dtype" in err
    np.save(tmp_path / "cplx.npy", np.ones((3, 4), np.complex64))
    err = _one_line_error(capsys, ["--file", str(tmp_path / "cplx.npy")])
    assert "complex" in err and "astype" in err
    err = _one_line_error(capsys, ["--file", str(tmp_path / "a.bin"), "--shape", "60x700",
                                   "--dtype", "int32"])
    assert "336000 bytes" in err and "int32" in err and "needs 168000" in err
    (tmp_path / "store.zarr").mkdir()
    (tmp_path / "store.zarr" / "zarr.json").write_text("{}")
    err = _one_line_error(capsys, ["--file", str(tmp_path / "store.zarr")])
    assert "zarr store without a 2-D array" in err and "holds the matrix" in err
    (tmp_path / "store.zarr" / "zarr.json").write_text("{damaged")
    err = _one_line_error(capsys, ["--file", str(tmp_path / "store.zarr")])
    assert "cannot be opened as a zarr store" in err and "whole zarr store" in err
    err = _one_line_error(capsys, ["--file", str(tmp_path / "a.npy"), "--also-as", "hdf5,zarr",
                                   "--compression", "lzf"])
    assert "--compression lzf" in err and "blosc-lz4" in err and "separate run" in err
    err = _one_line_error(capsys, ["--file", str(tmp_path / "missing.npy")])
    assert "no such file" in err


def test_a_numpy_npz_is_not_a_sparse_matrix(tmp_path):
    np.savez(tmp_path / "arrays.npz", a=np.zeros((2, 2)))
    with pytest.raises(UserFileError, match="not a scipy.sparse matrix.*save_npz"):
        open_user_matrix(tmp_path / "arrays.npz")


def test_a_strategy_that_reads_no_storage_of_the_file_says_which_copy_to_add(files):
    user = open_user_matrix(files["npy"][0])
    _, skipped = plan_for_file(user)
    reasons = dict(skipped)
    assert reasons["hdf5-blocked"] == "reads hdf5: add a copy with --also-as hdf5"
    assert reasons["csr"] == "reads npz, csr-hdf5: add a copy with --also-as csr-hdf5"
    _, skipped = plan_for_file(user, available_ram_bytes=1000)  # nothing fits 1000 bytes
    assert "a pass needs about" in dict(skipped)["dense on npy (yours)"]


def test_a_fifo_or_a_device_is_refused_at_once_not_read(tmp_path):
    # Reading a named pipe's first bytes blocks until a writer comes, which is never: the
    # check runs in a child so a regression fails on the timeout instead of hanging the suite.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code = textwrap.dedent("""
        import sys
        from harness.measuring.storage.user import UserFileError, open_user_matrix
        for path, shape in ((sys.argv[1], None), ("/dev/zero", (10, 10))):
            try:
                open_user_matrix(path, shape=shape)
            except UserFileError as exc:
                print(exc, flush=True)
            else:
                print("opened", path, flush=True)
    """)
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", code, str(fifo)], check=False,
                              capture_output=True,
                              text=True, timeout=20, cwd=Path(__file__).resolve().parents[1])
    except subprocess.TimeoutExpired:
        pytest.fail(f"opening the FIFO {fifo} hung instead of being refused")
    assert time.monotonic() - started < 20
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == 2, done.stderr
    assert lines[0] == (f"{fifo} is not a regular file (a FIFO, device or socket); give a "
                        ".npy, raw, HDF5 or .npz file or a zarr store")
    assert lines[1].startswith("/dev/zero is not a regular file (a FIFO, device or socket)")
    with pytest.raises(UserFileError, match="not a regular file"):
        open_user_matrix("/dev/zero", shape=(10, 10))


def test_a_users_file_with_glob_characters_in_its_name_leaves_no_stale_temporary(tmp_path):
    np.save(tmp_path / "b[1].npy", _matrix())
    user = open_user_matrix(tmp_path / "b[1].npy")
    root = tmp_path / "data"
    root.mkdir()
    final = convert.converted_path(user, "raw", root=root)
    stale = final.with_name(f".{final.name}.999999.tmp")  # a killed conversion's
    stale.write_bytes(b"\0" * 64)
    copy = convert.convert(user, "raw", root=root, progress=False)
    assert copy.location.path == final
    assert not stale.exists(), "a killed conversion's temporary stayed"
    assert not list(root.glob(".*.tmp"))


def test_the_source_is_walked_once_per_conversion(files, tmp_path, monkeypatch):
    user = open_user_matrix(files["npy"][0])
    calls = []
    identity = type(user).identity
    monkeypatch.setattr(type(user), "identity", lambda self: calls.append(1) or identity(self))
    root = tmp_path / "data"
    copy = convert.convert(user, "raw", root=root, progress=False)
    assert len(calls) == 1, f"user.identity() walked the source {len(calls)} times"
    monkeypatch.undo()
    assert convert.trusted_copy(user, "raw", root=root) == copy
    assert convert.convert(user, "raw", root=root, progress=False) == copy
    manifest = json.loads(cache.manifest_path(copy.location.path).read_text())
    assert manifest["source"] == user.identity()


def test_a_raw_copy_on_a_full_disk_fails_with_enospc(files):
    import errno

    user = open_user_matrix(files["npy"][0])
    spec = DatasetSpec(user.spec.shape, user.spec.dtype, storage="raw")
    with pytest.raises(OSError) as caught:  # every write to /dev/full: ENOSPC
        formats.get("raw").write(spec, Path("/dev/full"), user.row_blocks)
    assert caught.value.errno == errno.ENOSPC
