"""The code under test: some arithmetic and one buffer, both scaled by ``_knobs``.

The test's builder rewrites ``_knobs.py`` in each commit; asv takes this package from the commit
it builds (the benchmarks come from the working tree), so the knobs are what differs.
"""

from tinywork import _knobs

BASE_ITERATIONS = 200_000  # about 10 ms of Python arithmetic
BASE_BYTES = 10_000_000


def work() -> int:
    """Loop ``BASE_ITERATIONS * SLOWDOWN`` times, then fill a buffer of
    ``BASE_BYTES + EXTRA_BYTES`` bytes (filled, so every page is resident)."""
    total = 0
    for i in range(BASE_ITERATIONS * _knobs.SLOWDOWN):
        total += i * i
    buffer = b"\x01" * (BASE_BYTES + _knobs.EXTRA_BYTES)
    return total + len(buffer)
