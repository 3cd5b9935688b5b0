"""Single-core decode rates: a rate for every codec the thread-pool readers decode, measured on
decoding that gives the values back, and none for uncompressed data or other codecs."""

from __future__ import annotations

import numpy as np
import pytest

from harness.measuring.meters import decode_rates
from harness.measuring.storage import codecs

DECODED = [name for name in codecs.COMPRESSED_NAMES if codecs.decodable(name)]


def test_the_codecs_with_a_rate_are_those_the_readers_decode():
    assert DECODED == ["gzip", "gzip-1", "gzip-4", "gzip-1-shuffle", "gzip-4-shuffle",
                       "blosc-lz4", "blosc-zstd", "zstd", "blosc"]


@pytest.mark.parametrize("name", DECODED)
def test_the_sample_decodes_back_to_its_values(name):
    values = np.linspace(0, 1, 4096, dtype=np.float32).reshape(4, 1024)
    shuffle, compressor = decode_rates._settings(name)
    if isinstance(compressor, int):
        import zlib

        data = values.view(np.uint8).reshape(-1, 4).T.copy() if shuffle else values
        stored = zlib.compress(data.tobytes(), compressor)
    else:
        stored = compressor.encode(values)
    out = np.zeros(values.nbytes, np.uint8)
    decode_rates._decoder(shuffle, compressor, 4)(np.frombuffer(stored, np.uint8), out,
                                                  np.zeros_like(out))
    np.testing.assert_array_equal(out.view(np.float32).reshape(4, 1024), values)


@pytest.mark.parametrize("name", ["gzip-1-shuffle", "blosc-lz4"])
def test_a_codec_the_readers_decode_has_a_rate(name):
    rate = decode_rates.decode_rate_gbps(name)
    assert rate is not None and 0 < rate < 1000


@pytest.mark.parametrize("name", [None, "none", "lzf", "lz4", "bitshuffle", "blosc2"])
def test_uncompressed_data_and_other_codecs_have_none(name):
    assert decode_rates.decode_rate_gbps(name) is None
