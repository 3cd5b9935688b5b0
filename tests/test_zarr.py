"""zarr stores and the strategies that read them (zarr, tensorstore, a map of the chunk files,
dask's threads): the same values as every storage, on awkward shapes, chunks and codecs; a
killed write leaves nothing a later run trusts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from harness.measuring import strategies
from harness.measuring.matrix import generate
from harness.measuring.matrix.generate import dense_array
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import datasets
from harness.measuring.storage import zarr as zarr_store

READERS = [*strategies.names("zarr"), "dask-threads"]
#: (shape, chunks, compression, shards): chunks that do not divide the shape, a 1-row and a
#: 1-column matrix, chunks larger than the matrix, every codec, a sharded store.
LAYOUTS = [
    ((45, 97), (7, 33), None, None),
    ((1, 50), (3, 7), "zstd", None),
    ((50, 1), (8, 5), "blosc-lz4", None),
    ((45, 97), (500, 500), None, None),
    ((45, 97), (7, 33), "blosc-zstd", None),
    ((45, 97), (7, 33), "gzip-1", None),
    ((45, 97), (7, 33), "gzip-4", None),
    ((45, 97), None, None, None),
    ((45, 97), (4, 10), "zstd", (8, 20)),
]


@pytest.mark.parametrize("dtype,x_dtype", [("float32", "float64"), ("float64", "float32")])
@pytest.mark.parametrize("shape,chunks,compression,shards", LAYOUTS)
def test_every_zarr_reader_equals_the_dense_reference(tmp_path, dtype, x_dtype, shape, chunks,
                                                      compression, shards):
    spec = DatasetSpec(shape, dtype, storage="zarr", chunks=chunks,
                                compression=compression, shards=shards)
    x = datasets.vector(shape[1], x_dtype)
    reference = _dense_reference(spec, x)
    tolerance = 1e-4 if dtype == "float32" else 1e-10
    checked = 0
    for name in READERS:
        if not strategies.get(name).accepts(spec):
            continue
        for block_rows in (None, 2):
            y = strategies.matvec(name, spec, x, root=tmp_path, block_rows=block_rows)
            assert y.dtype == np.dtype(dtype), name
            np.testing.assert_allclose(y, reference, rtol=tolerance, atol=tolerance, err_msg=name)
            checked += 1
    assert checked >= 6  # zarr-blocked, tensorstore-blocked, dask-threads at least


def test_zarr_store_holds_the_same_values_as_every_storage(tmp_path):
    spec = DatasetSpec((45, 97), "float32", storage="zarr", chunks=(7, 33),
                                compression="blosc-lz4")
    path = datasets.materialize(spec, tmp_path)
    raw = datasets.materialize(spec.with_storage("raw"), tmp_path)
    stored = zarr_store.open_array(path)[:]
    np.testing.assert_array_equal(stored, np.fromfile(raw, dtype="float32").reshape(45, 97))
    assert datasets.verify(spec, tmp_path)
    assert zarr_store.open_array(path).chunks == (7, 33)


def test_zarr_refuses_an_hdf5_only_filter_with_the_list(tmp_path):
    spec = DatasetSpec((10, 20), storage="zarr", compression="lzf")
    with pytest.raises(ValueError, match="zarr stores take the codecs"):
        datasets.materialize(spec, tmp_path)
    assert "zarr codec" in strategies.get("zarr-blocked").why_not(spec)
    assert not list(tmp_path.glob("*.zarr")) and not list(tmp_path.glob(".*.tmp"))


def test_zarr_mmap_refuses_compressed_chunks():
    spec = DatasetSpec((10, 20), storage="zarr", chunks=(5, 5), compression="zstd")
    assert not strategies.get("zarr-mmap").accepts(spec)
    assert strategies.get("zarr-blocked").accepts(spec)


def test_shards_must_hold_whole_chunks_and_belong_to_zarr():
    with pytest.raises(ValueError, match="multiples"):
        DatasetSpec((10, 20), storage="zarr", chunks=(3, 5), shards=(4, 10))
    with pytest.raises(ValueError, match="zarr"):
        DatasetSpec((10, 20), storage="hdf5", chunks=(2, 5), shards=(4, 10))
    # An unsharded spec keeps the name and file it had before shards existed.
    assert "shards" not in DatasetSpec((10, 20), storage="hdf5").to_dict()


def test_a_killed_zarr_write_leaves_nothing_a_later_run_trusts(tmp_path):
    spec = DatasetSpec((400, 2000), "float64", storage="zarr", chunks=(10, 500))
    # The child writes a few chunk-rows, then stalls (its writer's blocks stop coming).
    child = textwrap.dedent(f"""
        import dataclasses
        import time
        from harness.measuring.matrix.spec import DatasetSpec
        from harness.measuring.storage import base, datasets
        from harness.measuring.storage import zarr as zarr_store
        def stalling(spec, directory, blocks, advance, entries=None):
            def some():
                yield from blocks()
                time.sleep(600)
            zarr_store.WRITE_BLOCK_BYTES = 80_000
            zarr_store.write(spec, directory, some, advance)
        base.registry()["zarr"] = dataclasses.replace(zarr_store.STORAGE, write=stalling)
        # Never returns: the last block stalls before the store is renamed and sealed.
        datasets.materialize(DatasetSpec.from_dict({spec.to_dict()!r}), {str(tmp_path)!r})
    """)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-c", child], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".*.tmp/A/c/*/*")):
            assert proc.poll() is None, "the writer exited before it wrote a chunk"
            assert time.monotonic() < deadline, "no chunk was written within 60 s"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    path = datasets.dataset_path(spec, tmp_path)
    assert list(tmp_path.glob(".*.tmp")), "the killed write should have left its temporary store"
    assert not datasets.is_materialized(spec, tmp_path)
    assert not datasets.verify(spec, tmp_path)
    # A later run writes it anew, removes the leftover, and then trusts it.
    datasets.materialize(spec, tmp_path)
    assert not list(tmp_path.glob(".*.tmp"))
    assert datasets.verify(spec, tmp_path)
    np.testing.assert_array_equal(zarr_store.open_array(path)[:], generate.dense_array(spec))


def test_a_store_changed_after_sealing_is_not_trusted(tmp_path):
    spec = DatasetSpec((20, 30), storage="zarr", chunks=(5, 30))
    path = datasets.materialize(spec, tmp_path)
    chunk = path / zarr_store.ARRAY_NAME / "c" / "1" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-4])  # truncated: its size no longer matches
    assert not datasets.is_materialized(spec, tmp_path)
    datasets.materialize(spec, tmp_path)
    assert datasets.verify(spec, tmp_path)


def _dense_reference(spec, x):
    """A @ x in float64 from the generated values themselves (no file, no strategy)."""
    return dense_array(spec).astype(np.float64) @ x.astype(spec.dtype).astype(np.float64)
