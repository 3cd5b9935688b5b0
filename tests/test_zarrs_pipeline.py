"""zarrs-blocked: zarr-python reading through zarrs' codec pipeline (never silently through its
own), equal to a dense reference from the values themselves, refusing by name at planning a
store zarrs cannot read, and keeping to its budget."""

from __future__ import annotations

import numcodecs
import numpy as np
import pytest
import zarr

from harness.measuring import strategies
from harness.measuring.matrix.generate import dense_array, vector
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.runs.measure import measure_in_process
from harness.measuring.storage import datasets
from harness.measuring.storage.base import FileLocation
from harness.measuring.strategies import zarrs_pipeline
from harness.measuring.strategies.base import Options

pytest.importorskip("zarrs")
ZARRS = strategies.get("zarrs-blocked")


def test_it_reads_through_zarrs_pipeline(tmp_path):
    spec = DatasetSpec((45, 97), "float32", storage="zarr", chunks=(4, 10), shards=(8, 20),
                       compression="blosc-lz4")
    array = zarrs_pipeline._open_strictly(datasets.materialize(spec, tmp_path))
    pipeline = array._async_array.codec_pipeline
    assert type(pipeline).__name__ == "ZarrsCodecPipeline" and pipeline.impl is not None


@pytest.mark.parametrize("codec", ["gzip-1", "blosc-zstd", None])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_equals_the_dense_reference(tmp_path, codec, dtype):
    spec = DatasetSpec((45, 97), dtype, storage="zarr", chunks=(7, 33), compression=codec,
                       values="smooth")
    x = vector(97, "float64")
    expected = dense_array(spec).astype(np.float64) @ x.astype(dtype).astype(np.float64)
    y = strategies.matvec("zarrs-blocked", spec, x, root=tmp_path, block_rows=14)
    assert y.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y, expected, rtol=1e-4 if dtype == "float32" else 1e-10,
                               atol=1e-3 if dtype == "float32" else 1e-10)


def test_a_store_zarrs_cannot_read_is_refused_by_name_when_planning(tmp_path):
    path = tmp_path / "delta.zarr"
    array = zarr.create_array(store=str(path), shape=(6, 10), chunks=(3, 5), dtype="float32",
                              zarr_format=2, filters=[numcodecs.Delta(dtype="f4")],
                              compressors=None)
    array[:] = np.arange(60, dtype="float32").reshape(6, 10)
    location = FileLocation(path, dataset="")
    spec = DatasetSpec((6, 10), "float32", storage="zarr", chunks=(3, 5))
    refusal = ZARRS.refusal_at(spec, location)
    assert refusal.startswith("zarrs cannot read it (unsupported codec delta")
    assert refusal.endswith("use zarr-blocked")
    with pytest.raises(ValueError, match="zarrs-blocked cannot read delta.zarr: zarrs cannot"), \
            ZARRS.opener(spec, location, Options()):
        pass


@pytest.mark.slow
def test_anonymous_increment_stays_within_budget_plus_8_mib(tmp_path):
    spec = DatasetSpec((64, 100_000), "float32", storage="zarr", chunks=(8, 100_000),
                       compression="blosc-lz4", values="smooth")
    m = measure_in_process("zarrs-blocked", spec, repeat=2, root=tmp_path)
    assert m.budget_bytes == ZARRS.extra_memory_bytes(spec)
    assert m.anon_increment_bytes <= m.budget_bytes + 8 * 2**20, (m.anon_increment_bytes,
                                                                  m.budget_bytes)
    assert m.max_abs_error < 1e-2
