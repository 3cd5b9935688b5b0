"""Sparse matrix: every scipy.sparse format in RAM, and CSR read from HDF5 by row blocks."""

from harness import names

from . import _suite


class SparseMatvec(_suite._MatvecSuite):
    """Which sparse format multiplies fastest, and where does sparse stop beating dense?"""

    family = "sparse"
    benchmark_class = "sparse.SparseMatvec"
    param_names = names.param_names(benchmark_class)
    params = _suite.PROFILE.params(benchmark_class, param_names)

    def setup_cache(self):
        return _suite.prepare(self)

    setup_cache.timeout = _suite.PROFILE.setup_cache_timeout_seconds
