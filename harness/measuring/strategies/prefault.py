"""A mapping's next block faulted in by a reader thread while BLAS multiplies this one.

Cold, the mapped routes read what they multiply through page faults; faulted from one reader
thread in file order (``pagecache.populate``, whose docstring has the figures), one block ahead
of the product, the disk stays busy while BLAS runs. ``memmap-blocked`` and ``zarr-mmap`` use
it; ``zarr-mmap`` only on a pass that reads from disk (its docstring says why).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor


def reader() -> ThreadPoolExecutor:
    """A one-thread pool for ``faulted_ahead`` (one stream of faults, in order)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefault-reader")


def faulted_ahead(pool: ThreadPoolExecutor | None, count: int,
                  fault_in: Callable[[int], None],
                  reached: Callable[[int], None] | None = None) -> Iterator[int]:
    """``range(count)``, where index ``i`` comes once ``fault_in(i)`` has run on ``pool``
    and ``fault_in(i + 1)`` has been handed to it; ``reached(i)`` (readahead hints for what
    lies further ahead) is called before waiting for block ``i``. ``pool`` None: a pass from
    the page cache, plain ``range(count)`` with no hand-offs and no hints."""
    if pool is None or count == 0:
        yield from range(count)
        return
    pending = pool.submit(fault_in, 0)
    for index in range(count):
        if reached is not None:
            reached(index)
        pending.result()
        if index + 1 < count:
            pending = pool.submit(fault_in, index + 1)
        yield index
