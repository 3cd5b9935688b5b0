"""Matrix in a flat binary file read through numpy.memmap: whole, row by row, in blocks."""

from . import _suite

PARAM_NAMES = ["shape", "dtype", "strategy"]


class MemmapMatvec(_suite._MatvecSuite):
    """What does reading A through a memory map cost, per access pattern?"""

    family = "memmap"
    benchmark_class = "memmap.MemmapMatvec"
    param_names = PARAM_NAMES
    params = _suite.PROFILE.params(benchmark_class, PARAM_NAMES)

    def setup_cache(self):
        return _suite.prepare(self)

    setup_cache.timeout = _suite.PROFILE.setup_cache_timeout_seconds
