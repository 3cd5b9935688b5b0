"""Dense matrix in RAM: the reference every other family is compared with."""

from . import _suite

PARAM_NAMES = ["shape", "dtype", "strategy"]


class DenseMatvec(_suite._MatvecSuite):
    """How fast is A @ x when A is a numpy array in RAM?"""

    family = "dense"
    benchmark_class = "dense.DenseMatvec"
    param_names = PARAM_NAMES
    params = _suite.PROFILE.params(benchmark_class, PARAM_NAMES)

    def setup_cache(self):
        return _suite.prepare(self)

    setup_cache.timeout = _suite.PROFILE.setup_cache_timeout_seconds
