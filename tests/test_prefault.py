"""zarr-mmap's cold passes: a reader thread faults each next chunk in, in order, and the
products equal the dense reference on awkward shapes."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from harness.measuring import strategies
from harness.measuring.matrix.generate import dense_array
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.meters.pagecache import evict, resident_fraction
from harness.measuring.storage import datasets
from harness.measuring.strategies import prefault


def test_each_block_is_faulted_in_before_it_is_handed_out_and_the_next_one_is_asked_for():
    events, lock = [], threading.Lock()

    def fault_in(i):
        with lock:
            events.append(("fault", i))

    pool = prefault.reader()
    try:
        for i in prefault.faulted_ahead(pool, 4, fault_in,
                                        reached=lambda i: events.append(("reached", i))):
            with lock:
                # Block i is in; block i + 1 has been handed to the reader.
                assert ("fault", i) in events
                events.append(("use", i))
    finally:
        pool.shutdown(wait=True)
    for i in range(4):
        assert events.index(("reached", i)) < events.index(("use", i))
        assert events.index(("fault", i)) < events.index(("use", i))
    assert [e for e in events if e[0] == "fault"] == [("fault", i) for i in range(4)]


def test_without_a_reader_nothing_is_faulted_in():
    calls = []
    assert list(prefault.faulted_ahead(None, 3, calls.append)) == [0, 1, 2]
    assert calls == []


def _reference(spec, v, transpose=False):
    a = dense_array(spec).astype(np.float64)
    return (a.T if transpose else a) @ v.astype(np.float64)


# Awkward shapes: chunks that do not divide the matrix, one row, one column, a chunk larger
# than the matrix.
@pytest.mark.parametrize("shape,chunks", [((45, 97), (7, 33)), ((1, 50), (4, 64)),
                                          ((50, 1), (7, 1)), ((30, 40), (64, 64))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_cold_pass_faults_ahead_and_equals_the_dense_reference(
        tmp_path, monkeypatch, shape, chunks, dtype):
    spec = DatasetSpec(shape, dtype, storage="zarr", chunks=chunks)
    path = datasets.materialize(spec, root=tmp_path)
    pools = []
    original = prefault.faulted_ahead

    def spy(pool, count, *args, **kwargs):
        pools.append(pool is not None)
        return original(pool, count, *args, **kwargs)

    monkeypatch.setattr(prefault, "faulted_ahead", spy)
    x = datasets.vector(shape[1], dtype)
    y = datasets.vector(shape[0], dtype)
    tolerance = 1e-4 if dtype == "float32" else 1e-10
    first, stop = shape[0] // 3, shape[0] - shape[0] // 4
    for product, want in (
            (lambda op: op.matvec(x), _reference(spec, x)),
            (lambda op: op.rmatvec(y), _reference(spec, y, transpose=True)),
            (lambda op: op.product_rows(x, first, stop), _reference(spec, x)[first:stop])):
        evict(path)
        if resident_fraction(path) > 0.01:
            pytest.skip("this filesystem keeps the matrix in the page cache (tmpfs?)")
        with strategies.get("zarr-mmap").open(spec, root=tmp_path) as op:
            got = product(op)
        np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance * np.abs(want).max())
    assert pools and all(pools)  # every pass after an eviction read through the reader
