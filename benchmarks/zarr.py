"""Matrix in a zarr store (zarr-python 3): zarr's own reader, tensorstore, and a map of the
chunk files, per chunk shape and codec."""

from harness import names

from . import _suite


class ZarrMatvec(_suite._MatvecSuite):
    """Which reader of the same zarr bytes is fastest, and what does each codec cost?"""

    family = "zarr"
    benchmark_class = "zarr.ZarrMatvec"
    param_names = names.param_names(benchmark_class)
    params = _suite.PROFILE.params(benchmark_class, param_names)

    def setup_cache(self):
        return _suite.prepare(self)

    setup_cache.timeout = _suite.PROFILE.setup_cache_timeout_seconds
