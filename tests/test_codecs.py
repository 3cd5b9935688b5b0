"""harness.measuring.storage.codecs: each name writes the filters and settings it stands for, and the
chunk decoders undo exactly what HDF5 stored."""

from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest

from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import codecs


def _pipeline(tmp_path, name) -> list[tuple[int, tuple]]:
    with h5py.File(tmp_path / "codec.h5", "w") as f:
        dset = f.create_dataset("A", shape=(4, 8), dtype="float32", chunks=(2, 8),
                                **codecs.hdf5_filter_kwargs(name))
        dcpl = dset.id.get_create_plist()
        return [dcpl.get_filter(i)[:3:2] for i in range(dcpl.get_nfilters())]


@pytest.mark.parametrize("name", codecs.HDF5_NAMES)
def test_each_name_writes_the_filters_it_declares(tmp_path, name):
    assert [fid for fid, _ in _pipeline(tmp_path, name)] == list(codecs.filter_ids(name))


def test_settings_behind_the_names(tmp_path):
    assert codecs.hdf5_filter_kwargs("gzip") == {"compression": "gzip"}  # files unchanged
    assert codecs.hdf5_filter_kwargs("none") == codecs.hdf5_filter_kwargs(None) == {}
    assert _pipeline(tmp_path, "gzip-1") == [(codecs.DEFLATE, (1,))]
    assert _pipeline(tmp_path, "gzip-4-shuffle") == [(codecs.SHUFFLE, (4,)),
                                                     (codecs.DEFLATE, (4,))]
    assert _pipeline(tmp_path, "zstd") == [(codecs.ZSTD, (3,))]
    # blosc's cd_values: (version, version, typesize, chunk bytes, clevel, shuffle, compressor)
    (fid, cd), = _pipeline(tmp_path, "blosc-lz4")
    assert fid == codecs.BLOSC and cd[4:] == (5, 1, 1)  # clevel 5, byte shuffle, lz4
    (fid, cd), = _pipeline(tmp_path, "blosc-zstd")
    assert fid == codecs.BLOSC and cd[4:] == (5, 1, 5)  # clevel 5, byte shuffle, zstd
    with pytest.raises(ValueError, match="unknown codec 'snappy'"):
        codecs.hdf5_filter_kwargs("snappy")
    with pytest.raises(ValueError, match="compression must be one of"):
        DatasetSpec((4, 4), storage="hdf5", compression="snappy")
    assert DatasetSpec((4, 4), storage="hdf5", compression="none").compression is None


def test_which_filters_decode_in_threads():
    assert [n for n in codecs.COMPRESSED_NAMES if not codecs.decodable(n)] == [
        "lzf", "blosc2", "lz4", "bitshuffle"]
    assert codecs.undecodable_filters("blosc2") == ["blosc2"]
    assert codecs.decode_stages("gzip-1-shuffle") == 2 and codecs.decode_stages("blosc") == 1


class _Pipeline:
    """A dataset creation property list's filter pipeline, as h5py reports it."""

    def __init__(self, *filters):
        self.filters = filters

    def get_nfilters(self):
        return len(self.filters)

    def get_filter(self, index):
        fid, cd = self.filters[index]
        return fid, 1, cd, codecs.FILTER_NAMES.get(fid, "x").encode()


def test_decoder_undoes_shuffle_and_deflate_and_honours_the_filter_mask():
    chunk = np.arange(24, dtype=np.float32) * 1.5
    shuffled = chunk.view(np.uint8).reshape(-1, 4).T.copy().reshape(-1)
    decoder = codecs.pipeline_decoder(_Pipeline((codecs.SHUFFLE, (4,)), (codecs.DEFLATE, (1,))), 4)
    assert decoder.scratch_needed
    out, scratch = np.zeros(96, np.uint8), np.zeros(96, np.uint8)
    stored = {0b00: zlib.compress(shuffled.tobytes()), 0b10: shuffled.tobytes(),
              0b01: zlib.compress(chunk.tobytes()), 0b11: chunk.tobytes()}
    for mask, data in stored.items():
        out[:] = 0
        decoder.decode(np.frombuffer(data, np.uint8), mask, out, scratch)
        np.testing.assert_array_equal(out.view(np.float32), chunk, err_msg=f"mask {mask:02b}")


def test_decoder_refuses_what_it_cannot_decode_by_name():
    with pytest.raises(codecs.UnsupportedFilter, match=r"lzf \(filter id 32000\)"):
        codecs.pipeline_decoder(_Pipeline((codecs.SHUFFLE, (4,)), (codecs.LZF, ())), 4)
    with pytest.raises(ValueError, match="deflate"):
        decoder = codecs.pipeline_decoder(_Pipeline((codecs.DEFLATE, (1,)),), 4)
        decoder.decode(np.frombuffer(zlib.compress(b"x" * 10), np.uint8), 0,
                       np.zeros(96, np.uint8), None)


def test_a_fresh_process_reads_plugin_filters_through_hdf5(tmp_path):
    # HDF5 finds blosc & co only once hdf5plugin is imported; a fresh process (asv's, the
    # measuring subprocess) must not depend on another module having imported it first.
    import os
    import subprocess
    import sys
    from pathlib import Path

    from harness.measuring.storage.datasets import materialize

    spec = DatasetSpec((20, 100), storage="hdf5", chunks=(5, 100), compression="blosc-lz4")
    materialize(spec, tmp_path)
    code = ("import sys; from harness.measuring import strategies; from harness.measuring.storage import datasets; "
            "from harness.measuring.matrix.spec import DatasetSpec; "
            "assert 'hdf5plugin' not in sys.modules; "
            f"spec = DatasetSpec.from_dict({spec.to_dict()!r}); "
            f"y = strategies.matvec('hdf5-blocked', spec, datasets.vector(100), root={str(tmp_path)!r}); "
            "print(y.shape[0])")
    root = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": root}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "20"


@pytest.mark.parametrize("element_size", [1, 2, 4, 8, 3])
@pytest.mark.parametrize("nbytes", [0, 7, 4096, 4_000_003])
def test_unshuffle_restores_hdf5s_byte_order_with_and_without_blosc2(monkeypatch, element_size,
                                                                     nbytes):
    values = np.random.default_rng(nbytes).integers(0, 256, nbytes, dtype=np.uint8)
    # HDF5's shuffle, written out here: byte j of element i at j * n + i; leftover bytes last.
    whole = nbytes // element_size * element_size
    shuffled = np.concatenate([values[:whole].reshape(-1, element_size).T.reshape(-1),
                               values[whole:]])
    restored = {}
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(codecs, "_blosc2_unshuffle", lambda: None)
        elif codecs._blosc2_unshuffle() is None:
            continue
        target = np.zeros(nbytes, np.uint8)
        codecs._unshuffle(element_size)(shuffled, target)
        restored[fast] = target
    assert restored[False].tobytes() == values.tobytes()
    assert all(r.tobytes() == values.tobytes() for r in restored.values())
    assert True in restored  # hdf5plugin ships blosc2: the fast path ran
