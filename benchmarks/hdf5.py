"""Matrix in an HDF5 dataset (h5py): strategies x chunk layouts, chunk cache, compression."""

from harness import names

from . import _suite


class Hdf5Matvec(_suite._MatvecSuite):
    """Which read strategy suits which chunk layout (HDF5 2.0's default chunk cache)?"""

    family = "hdf5"
    benchmark_class = "hdf5.Hdf5Matvec"
    param_names = names.param_names(benchmark_class)
    params = _suite.PROFILE.params(benchmark_class, param_names)

    def setup_cache(self):
        return _suite.prepare(self)

    setup_cache.timeout = _suite.PROFILE.setup_cache_timeout_seconds


class Hdf5ChunkCache(_suite._MatvecSuite):
    """How much does the chunk-cache size matter (1 MiB was HDF5 1.x's default)?"""

    family = "hdf5"
    benchmark_class = "hdf5.Hdf5ChunkCache"
    param_names = names.param_names(benchmark_class)
    params = _suite.PROFILE.params(benchmark_class, param_names)

    def setup_cache(self):
        return _suite.prepare(self)

    setup_cache.timeout = _suite.PROFILE.setup_cache_timeout_seconds


class Hdf5Compression(_suite._MatvecSuite):
    """What does decompression cost per read strategy, on which kind of values?"""

    family = "hdf5"
    benchmark_class = "hdf5.Hdf5Compression"
    param_names = names.param_names(benchmark_class)
    params = _suite.PROFILE.params(benchmark_class, param_names)

    def setup_cache(self):
        return _suite.prepare(self)

    setup_cache.timeout = _suite.PROFILE.setup_cache_timeout_seconds

    # Next to time and memory: what a pass reads from storage, and how much the codec saved
    # (track_gbps is then the decode throughput, decoded bytes per second).
    def track_stored_bytes(self, cache, *params):
        return self._warm()["stored_bytes"]

    track_stored_bytes.unit = names.TRACK_UNITS[names.TRACK_STORED]

    def track_compression_ratio(self, cache, *params):
        return self._warm()["compression_ratio"]

    track_compression_ratio.unit = names.TRACK_UNITS[names.TRACK_COMPRESSION_RATIO]
