"""Sparse matrix: every scipy.sparse format in RAM, and CSR read from HDF5 by row blocks."""

from . import _suite

PARAM_NAMES = ["shape", "dtype", "strategy", "density"]


class SparseMatvec(_suite._MatvecSuite):
    """Which sparse format multiplies fastest, and where does sparse stop beating dense?"""

    family = "sparse"
    benchmark_class = "sparse.SparseMatvec"
    param_names = PARAM_NAMES
    params = _suite.PROFILE.params(benchmark_class, PARAM_NAMES)

    def setup_cache(self):
        return _suite.prepare(self)

    setup_cache.timeout = _suite.PROFILE.setup_cache_timeout_seconds
