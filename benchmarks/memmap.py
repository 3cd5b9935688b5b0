"""Matrix in a flat binary file read through numpy.memmap: whole, row by row, in blocks."""

from harness import names

from . import _suite


class MemmapMatvec(_suite._MatvecSuite):
    """What does reading A through a memory map cost, per access pattern?"""

    family = "memmap"
    benchmark_class = "memmap.MemmapMatvec"
    param_names = names.param_names(benchmark_class)
    params = _suite.PROFILE.params(benchmark_class, param_names)

    def setup_cache(self):
        return _suite.prepare(self)

    setup_cache.timeout = _suite.PROFILE.setup_cache_timeout_seconds
