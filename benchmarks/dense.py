"""Dense matrix in RAM: the reference every other family is compared with."""

from harness import names

from . import _suite


class DenseMatvec(_suite._MatvecSuite):
    """How fast is A @ x when A is a numpy array in RAM?"""

    family = "dense"
    benchmark_class = "dense.DenseMatvec"
    param_names = names.param_names(benchmark_class)
    params = _suite.PROFILE.params(benchmark_class, param_names)

    def setup_cache(self):
        return _suite.prepare(self)

    setup_cache.timeout = _suite.PROFILE.setup_cache_timeout_seconds
