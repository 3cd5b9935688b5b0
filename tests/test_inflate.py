"""The inflate module: the fastest installed library first, every library decoding the same
bytes, zlib when the packages are missing, and hdf5-direct's products identical either way."""

from __future__ import annotations

import sys
import zlib

import numpy as np
import pytest

from harness.measuring import strategies
from harness.measuring.matrix.generate import vector
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.storage import inflate

#: The modules of the optional inflate packages (None in sys.modules hides one).
PACKAGE_MODULES = ("deflate", "deflate._deflate", "zlib_ng", "zlib_ng.zlib_ng", "isal",
                   "isal.isal_zlib")


@pytest.fixture
def fresh_choice():
    inflate.best.cache_clear()
    yield
    inflate.best.cache_clear()


@pytest.fixture
def packages_missing(monkeypatch, fresh_choice):
    # None in sys.modules makes `import zlib_ng` / `import isal` raise ImportError.
    for module in PACKAGE_MODULES:
        monkeypatch.setitem(sys.modules, module, None)


def _stream(data: bytes, wbits: int) -> np.ndarray:
    encoder = zlib.compressobj(1, zlib.DEFLATED, wbits)
    return np.frombuffer(encoder.compress(data) + encoder.flush(), np.uint8)


def test_libdeflate_is_the_first_choice_and_writes_in_place(fresh_choice):
    pytest.importorskip("deflate")
    assert inflate.best().name == "libdeflate"
    assert inflate.working_bytes(4_000_000) == inflate.INFLATE_STATE_BYTES


def test_zlib_ng_is_next_and_holds_a_decoded_copy(monkeypatch, fresh_choice):
    pytest.importorskip("zlib_ng")
    monkeypatch.setitem(sys.modules, "deflate._deflate", None)
    assert inflate.best().name == "zlib-ng"
    assert inflate.working_bytes(4_000_000) == inflate.INFLATE_STATE_BYTES + 4_000_000


def test_libdeflate_decodes_in_worker_threads_each_with_its_decompressor(fresh_choice):
    pytest.importorskip("deflate")
    from concurrent.futures import ThreadPoolExecutor

    streams = [np.arange(k, k + 20_000, dtype=np.float32).tobytes() for k in range(8)]
    targets = [np.zeros(len(s), np.uint8) for s in streams]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda k: inflate.inflate_into(_stream(streams[k], inflate.GZIP_WBITS),
                                                     targets[k], inflate.GZIP_WBITS),
                      range(len(streams))))
    assert [t.tobytes() for t in targets] == streams


def test_a_stream_libdeflate_refuses_goes_to_zlib(fresh_choice):
    pytest.importorskip("deflate")
    # Two gzip members: zlib's gzip reader decodes the first, as it would without libdeflate.
    first = np.arange(1000, dtype=np.float32).tobytes()
    stream = np.concatenate([_stream(first, inflate.GZIP_WBITS),
                             _stream(b"more", inflate.GZIP_WBITS)])
    target = np.zeros(len(first), np.uint8)
    inflate.inflate_into(stream, target, inflate.GZIP_WBITS)
    assert target.tobytes() == first


def test_without_the_packages_it_falls_back_to_zlib_writing_in_place(packages_missing):
    assert inflate.best().name == "zlib"
    assert inflate.working_bytes(4_000_000) == inflate.INFLATE_STATE_BYTES


@pytest.mark.parametrize("wbits", [inflate.ZLIB_WBITS, inflate.GZIP_WBITS])
def test_every_library_decodes_the_same_bytes(monkeypatch, fresh_choice, wbits):
    data = np.linspace(0, 1, 50_000, dtype=np.float32).tobytes()
    decoded = {}
    for name, module in inflate.PREFERENCE:
        monkeypatch.setattr(inflate, "PREFERENCE", ((name, module),))
        inflate.best.cache_clear()
        if inflate.best().name != name:  # that package is not installed
            continue
        target = np.zeros(len(data), np.uint8)
        inflate.inflate_into(_stream(data, wbits), target, wbits)
        decoded[name] = target.tobytes()
    assert "zlib" in decoded
    assert all(value == data for value in decoded.values()), sorted(decoded)


@pytest.mark.parametrize("wbits", [inflate.ZLIB_WBITS, inflate.GZIP_WBITS])
def test_a_wrong_size_or_damaged_stream_is_an_error(packages_missing, wbits):
    stream = _stream(b"abc" * 1000, wbits)
    with pytest.raises(ValueError, match="3000 bytes decoded, expected 2999|decoded"):
        inflate.inflate_into(stream, np.zeros(2999, np.uint8), wbits)
    with pytest.raises(ValueError, match="deflate"):
        inflate.inflate_into(stream[:-20], np.zeros(3000, np.uint8), wbits)


@pytest.mark.parametrize("codec", ["gzip-1-shuffle", "gzip-4"])
def test_the_fallback_gives_identical_products(tmp_path, monkeypatch, fresh_choice, codec):
    spec = DatasetSpec((37, 1001), "float32", seed=3, storage="hdf5", chunks=(8, 300),
                       compression=codec, values="smooth")
    x = vector(1001, "float32")
    fast = strategies.matvec("hdf5-direct", spec, x, root=tmp_path)
    chosen = inflate.best().name
    for module in PACKAGE_MODULES:
        monkeypatch.setitem(sys.modules, module, None)
    inflate.best.cache_clear()
    assert inflate.best().name == "zlib" and chosen != "zlib"
    np.testing.assert_array_equal(strategies.matvec("hdf5-direct", spec, x, root=tmp_path), fast)
