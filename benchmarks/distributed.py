"""dask over a zarr store: the threaded scheduler, and a dask.distributed cluster (a
LocalCluster of worker processes, or the one at $HARNESS_DASK_SCHEDULER).

For dask-distributed, ``track_peak_increment`` / ``track_anon_increment`` /
``track_file_increment`` are the cluster's: every worker's exact peak (and the client's),
summed. ``track_sampled_peak`` is what dask's own MemorySampler saw over the same product, and
``track_read_bytes`` what the workers read from the store (read calls, page cache included).
Both are NaN for dask-threads (no cluster).
"""

from harness import names

from . import _suite


class DistributedMatvec(_suite._MatvecSuite):
    """What does a cluster of worker processes cost against threads of one process?"""

    family = "distributed"
    benchmark_class = "distributed.DistributedMatvec"
    param_names = names.param_names(benchmark_class)
    params = _suite.PROFILE.params(benchmark_class, param_names)

    def setup_cache(self):
        return _suite.prepare(self)

    setup_cache.timeout = _suite.PROFILE.setup_cache_timeout_seconds

    def track_sampled_peak(self, cache, *params):
        cluster = self._warm()["cluster"]
        return cluster["sampled_peak_bytes"] if cluster else float("nan")

    track_sampled_peak.unit = names.TRACK_UNITS[names.TRACK_SAMPLED_PEAK]

    def track_read_bytes(self, cache, *params):
        cluster = self._warm()["cluster"]
        return cluster["worker_read_call_bytes"] if cluster else float("nan")

    track_read_bytes.unit = names.TRACK_UNITS[names.TRACK_READ]
