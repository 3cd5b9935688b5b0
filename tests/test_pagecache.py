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


@pytest.mark.parametrize("uncache", [False, True])
def test_a_blocked_pass_past_ram_leaves_the_page_cache_empty_behind_it(scratch_file, uncache):
    """memmap-blocked on a matrix that cannot be cached drops each block from the page cache
    once multiplied; one that can keeps them (the next pass finds them)."""
    from harness.measuring.strategies.memmap import blocked_product, mapped
    from harness.measuring.strategies.products import Product

    rows, cols = 64, 64 * 1024  # 16 MiB of float32, in blocks of 3 rows (none divides 64)
    path = scratch_file(rows * cols * 4)
    evict(path)
    with mapped(path, 0, (rows, cols), "float32") as mapping:
        a = np.fromfile(path, dtype=np.float32).reshape(rows, cols)  # reference, then evicted
        evict(path)
        x = np.linspace(-1, 1, cols, dtype=np.float32)
        product = Product((rows, cols), x, transpose=False)
        blocked_product(mapping, product, 3, release=True, uncache=uncache)
        np.testing.assert_allclose(product.out, a.astype(np.float64) @ x, rtol=1e-4, atol=1e-3)
    if uncache:
        assert resident_fraction(path) < 0.05
    else:
        assert resident_fraction(path) > 0.95
