"""Kinds of values: uniform files unchanged, each kind identical in every storage, the
structure each kind promises (12-bit counts, a smooth field), and what codecs make of them."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from harness.measuring.matrix import generate, values
from harness.measuring.matrix.generate import dense_array
from harness.measuring.matrix.spec import DatasetSpec, Problem
from harness.measuring.runs import profiles
from harness.measuring.storage import datasets
from harness.measuring.storage.datasets import materialize


@pytest.fixture
def small_blocks(monkeypatch):
    # Several generation blocks in a small matrix: values must not depend on where they fall.
    monkeypatch.setattr(generate, "_GENERATION_BLOCK_ELEMENTS", 1000)


def test_uniform_values_are_what_the_harness_always_drew(small_blocks):
    spec = DatasetSpec((5, 300), "float32", seed=7)
    # One generator per block of 3 rows (1000 elements), seeded [seed, block index].
    old = np.concatenate([np.random.default_rng([7, i]).random((3, 300), dtype=np.float32)
                          for i in range(2)])[:5]
    np.testing.assert_array_equal(dense_array(spec), old)


def test_uniform_keeps_its_file_names_and_keys(tmp_path):
    spec = DatasetSpec((4, 6), storage="hdf5", chunks=(2, 6), compression="gzip")
    assert "values" not in spec.to_dict() and "values" not in spec.values_key()
    assert datasets.dataset_path(spec, tmp_path).name.startswith(
        "float32-4x6-dense-s0-hdf5-c2x6-gzip-")
    # The hash of a uniform spec's file is the one it had before values existed.
    assert datasets.dataset_path(spec, tmp_path).name.endswith("-3b4178a42adf.h5")
    smooth = DatasetSpec((4, 6), storage="hdf5", chunks=(2, 6), compression="gzip",
                         values="smooth")
    assert smooth.to_dict()["values"] == "smooth" and smooth.values_key()["values"] == "smooth"
    assert datasets.dataset_path(smooth, tmp_path).name.startswith(
        "float32-4x6-dense-s0-hdf5-c2x6-gzip-smooth-")
    assert DatasetSpec.from_dict(smooth.to_dict()) == smooth
    assert DatasetSpec.from_dict(spec.to_dict()).values == "uniform"


@pytest.mark.parametrize("kind", ["smooth", "quantized"])
def test_each_kind_is_identical_in_every_storage(tmp_path, small_blocks, kind):
    base = DatasetSpec((23, 301), "float32", seed=3, values=kind)
    assert generate.generation_block_rows(base.shape) == 3  # several blocks
    expected = dense_array(base)
    raw = np.fromfile(materialize(base.with_storage("raw"), tmp_path), dtype="float32")
    np.testing.assert_array_equal(raw.reshape(base.shape), expected)
    for chunks, codec in [(None, None), ((5, 64), "gzip-1-shuffle"), ((4, 301), "blosc-lz4")]:
        spec = base.with_storage("hdf5", chunks, codec)
        with h5py.File(materialize(spec, tmp_path)) as f:
            np.testing.assert_array_equal(f["A"][...], expected)
    assert not np.array_equal(expected, dense_array(DatasetSpec((23, 301), seed=3)))


def test_quantized_values_are_12_bit_counts():
    matrix = dense_array(DatasetSpec((40, 5000), "float64", values="quantized"))
    counts = matrix * 4096
    np.testing.assert_array_equal(counts, np.rint(counts))
    assert counts.min() >= 0 and counts.max() <= 4095
    assert len(np.unique(counts)) > 500  # a signal, not a constant


def test_smooth_values_are_a_field_plus_small_noise():
    matrix = dense_array(DatasetSpec((40, 5000), "float64", values="smooth"))
    field = values.smooth_field(0, 40, 5000)
    noise = matrix - field
    assert abs(noise.std() - values.SMOOTH_NOISE) < 0.1 * values.SMOOTH_NOISE
    assert 0.15 < matrix.min() and matrix.max() < 0.85
    assert np.abs(np.diff(field, axis=1)).max() < 1e-2  # neighbours along a row are close


def test_values_apply_to_dense_matrices_and_name_a_known_kind():
    with pytest.raises(ValueError, match="dense matrices only"):
        DatasetSpec((4, 4), density=0.5, storage="npz", values="smooth")
    with pytest.raises(ValueError, match="values must be one of"):
        DatasetSpec((4, 4), values="gaussian")
    problem = Problem((4, 4), values="quantized", chunks=(2, 4), compression="zstd")
    assert {problem.in_storage(s).values for s in ("ram", "raw", "hdf5")} == {"quantized"}
    assert problem.in_storage("hdf5").problem == problem


def test_structured_values_compress_and_uniform_ones_barely(tmp_path):
    ratios = {}
    for kind in values.KINDS:
        for codec in ("gzip-1-shuffle", "blosc-lz4", "zstd"):
            spec = DatasetSpec((40, 20000), storage="hdf5", chunks=(10, 20000),
                               compression=codec, values=kind)
            path = materialize(spec, tmp_path)
            ratios[kind, codec] = spec.dense_bytes / datasets.stored_nbytes(spec, path)
    for codec in ("gzip-1-shuffle", "blosc-lz4", "zstd"):
        assert ratios["uniform", codec] < 1.5 < ratios["quantized", codec]
        assert ratios["uniform", codec] < ratios["smooth", codec] < ratios["quantized", codec]


def test_the_suite_sweeps_codec_by_values():
    full = profiles.get("full").grids["hdf5.Hdf5Compression"]
    assert full["values"] == ["uniform", "smooth", "quantized"]
    assert set(full["compression"]) == {"none", "gzip", "gzip-1", "gzip-4", "gzip-1-shuffle",
                                        "gzip-4-shuffle", "lzf", "blosc-lz4", "blosc-zstd",
                                        "zstd", "blosc", "blosc2", "lz4", "bitshuffle"}
    default = profiles.get("default").grids["hdf5.Hdf5Compression"]
    assert default["values"] == ["smooth"] and default["compression"] == ["blosc-lz4"]
    params = {"shape": "1000x100000", "dtype": "float32", "strategy": "hdf5-direct",
              "chunks": "rows", "chunk_cache": 8 << 20, "compression": "blosc-lz4",
              "values": "smooth"}
    case = profiles.case("hdf5", params, profiles.get("default"), check_fit=False)
    assert case.spec == DatasetSpec((1000, 100000), storage="hdf5", chunks=(10, 100000),
                                    compression="blosc-lz4", values="smooth")
    with pytest.raises(profiles.Skip, match="compression='lzf'"):
        profiles.case("hdf5", {**params, "shape": "200x5000", "compression": "lzf"},
                      profiles.get("ci"), check_fit=False)
