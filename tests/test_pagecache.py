"""Page-cache control: eviction empties the cache for a file; a read fills it again."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MB

from harness.measuring.meters.pagecache import (
    CacheEvictionError,
    evict,
    read_sequentially,
    resident_bytes,
    resident_fraction,
)


def test_evict_then_read_moves_residency_from_zero_to_one(scratch_file) -> None:
    path = scratch_file(200 * MB)
    evict(path)
    assert resident_fraction(path) < 0.01
    assert read_sequentially(path, bytearray(3 * MB)) == 200 * MB  # a size no block divides
    assert resident_fraction(path) > 0.99


def test_partial_read_gives_a_partial_fraction(scratch_file) -> None:
    path = scratch_file(64 * MB)
    evict(path)
    with open(path, "rb") as f:
        f.read(16 * MB)
    # Readahead may bring in a little more than was read.
    assert 0.24 <= resident_fraction(path) <= 0.40
    assert resident_bytes(path) >= 16 * MB


def test_live_memmap_keeps_its_pages_and_require_below_says_so(scratch_file) -> None:
    path = scratch_file(32 * MB)
    mapped = np.memmap(path, dtype=np.uint8, mode="r")
    int(mapped.sum(dtype=np.uint64))
    with pytest.raises(CacheEvictionError, match="memory map"):
        evict(path, require_below=0.01)
    del mapped
    evict(path, require_below=0.01)
    assert resident_fraction(path) < 0.01


def test_directory_is_evicted_file_by_file(tmp_path, scratch_file) -> None:
    first, second = scratch_file(8 * MB), scratch_file(8 * MB)
    assert first.parent == second.parent == tmp_path
    # Freshly written, both files are cached: a directory that named no file would read 0.0
    # before and after, and the eviction below would prove nothing.
    assert resident_fraction(tmp_path) > 0.99
    assert resident_bytes(tmp_path) >= 16 * MB
    evict(tmp_path)
    assert resident_fraction(tmp_path) < 0.01


def test_empty_file_reads_zero(tmp_path) -> None:
    empty = tmp_path / "empty.bin"
    empty.touch()
    evict(empty)
    assert resident_fraction(empty) == 0.0


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    missing = tmp_path / "not-materialized.h5"
    with pytest.raises(FileNotFoundError, match="not-materialized.h5.*no such file"):
        evict(missing)
    with pytest.raises(FileNotFoundError, match="no such file"):
        resident_fraction(missing)
