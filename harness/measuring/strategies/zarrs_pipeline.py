"""``zarrs-blocked``: ``zarr-blocked`` with zarr-python's codec pipeline switched to zarrs'.

The same row slabs of whole chunk-rows, read by zarr-python's own API into one reused buffer,
but with ``zarr.config`` ``codec_pipeline.path`` set to ``zarrs.ZarrsCodecPipeline`` (the
``zarrs`` package: the zarrs Rust crate reads and decodes the chunks in its own thread pool,
``threading.max_workers`` threads, and writes them into the slab). It sits beside
``zarr-blocked`` so that a user sees what switching pipelines buys on their store.

zarrs is run strictly (``codec_pipeline.strict``): a store it cannot read (a codec or data type
it lacks) is refused by name when the run is planned, never read silently by zarr-python's own
pipeline under zarrs' name. Memory: the slab, and the chunks zarrs holds encoded while it
decodes them, declared as ``zarr-blocked``'s (``reader_bytes``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings
from pathlib import Path

from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import zarr as zarr_store
from harness.measuring.strategies.base import Options, Strategy, one_block_bytes, register
from harness.measuring.strategies.zarr import (
    ZARR_READS_IN_FLIGHT,
    SlabOperand,
    _pass_seconds,
    _slab_bytes,
    reader_bytes,
    slab_rows,
)

PIPELINE = "zarrs.ZarrsCodecPipeline"


def _config() -> dict:
    return {"codec_pipeline.path": PIPELINE, "codec_pipeline.strict": True,
            "async.concurrency": ZARR_READS_IN_FLIGHT}


def _open_strictly(location):
    """The array opened with zarrs' pipeline in force; ValueError naming why zarrs cannot."""
    zarr = zarr_store.zarr_module()
    if importlib.util.find_spec("zarrs") is None:
        raise ValueError("the zarrs package is not installed (pip install zarrs)")
    from zarrs.pipeline import UnsupportedMetadataError

    with zarr.config.set(_config()), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zarrs' own "unsupported" warning
        try:
            return zarr_store.open_array(location)
        except UnsupportedMetadataError as exc:
            cause = exc.__cause__ or exc
            reason = " ".join(str(cause).split()) or type(cause).__name__
            raise ValueError(f"zarrs cannot read it ({reason})") from None


def location_refusal(spec: DatasetSpec, location) -> str:
    """Why zarrs' pipeline cannot read the store at ``location`` ("" when it can)."""
    try:
        _open_strictly(location)
    except ValueError as exc:
        return f"{exc}; use zarr-blocked"
    return ""


@contextlib.contextmanager
def _open_zarrs_blocked(spec: DatasetSpec, path, opts: Options):
    from zarr.core.buffer import cpu

    try:
        array = _open_strictly(path)
    except ValueError as exc:
        raise ValueError(f"zarrs-blocked cannot read {Path(os.fspath(path)).name}: {exc}") from None
    ncols = spec.shape[1]

    def read(r0, r1, out):
        array.get_basic_selection((slice(r0, r1), slice(0, ncols)),
                                  out=cpu.NDBuffer.from_numpy_array(out))

    with zarr_store.zarr_module().config.set(_config()):
        yield SlabOperand(spec, slab_rows(spec, opts), read)


register(Strategy(
    name="zarrs-blocked", family="zarr", storage=("zarr",), out_of_core=True,
    description="zarr-blocked's row slabs with zarr-python's codec pipeline switched to "
                "zarrs' (Rust: reads and decodes chunks in its own threads)",
    opener=_open_zarrs_blocked,
    budget=lambda spec, opts: _slab_bytes(spec, opts) + reader_bytes(spec),
    resident=one_block_bytes, pass_seconds=_pass_seconds,
    accepts_fn=lambda spec: zarr_store.accepts_compression(spec.compression),
    refusal=zarr_store.codec_refusal(), questions=("compression",),
    imports=("zarrs",), location_refusal=location_refusal,
))
