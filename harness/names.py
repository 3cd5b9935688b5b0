"""The asv suite's naming contract: what the benchmark classes, their parameters and their
figures are called in asv's result files.

The measuring half writes these names (``benchmarks/`` and ``harness.measuring.runs.profiles``),
the reporting half reads them (``summary``, ``plots``, ``report``); both import them from here,
so a rename happens in one place. Renaming a class or a method starts a new history in asv
(results are keyed by name), so names change only on purpose.

A benchmark's full name is ``<family>.<Class>.<method>``: the family is the suite's module
(``hdf5``), the class one question about it (``Hdf5ChunkCache``).
"""

from __future__ import annotations

# ---------------------------------------------------------------------------- classes
#: Benchmark class (``<family>.<Class>``) -> its parameter names, in asv's order.
MATVEC_CLASSES: dict[str, tuple[str, ...]] = {
    "dense.DenseMatvec": ("shape", "dtype", "strategy"),
    "memmap.MemmapMatvec": ("shape", "dtype", "strategy"),
    "hdf5.Hdf5Matvec": ("shape", "dtype", "strategy", "chunks", "chunk_cache", "compression"),
    "hdf5.Hdf5ChunkCache": ("shape", "dtype", "strategy", "chunks", "chunk_cache",
                            "compression"),
    "hdf5.Hdf5Compression": ("shape", "dtype", "strategy", "chunks", "chunk_cache",
                             "compression", "values"),
    "sparse.SparseMatvec": ("shape", "dtype", "strategy", "density"),
    "zarr.ZarrMatvec": ("shape", "dtype", "strategy", "chunks", "compression"),
    "distributed.DistributedMatvec": ("shape", "dtype", "strategy", "chunks", "cluster"),
}
#: The products beyond A @ x (``benchmarks/products.py``): Aᵀy and A @ X for k columns per
#: out-of-core reader, and a solve's passes in a row from a cold cache.
PRODUCT_CLASSES: dict[str, tuple[str, ...]] = {
    "products.ProductColumns": ("shape", "dtype", "strategy", "chunks", "product", "columns"),
    "products.SolvePasses": ("shape", "dtype", "strategy", "chunks", "passes"),
}
#: The family every ratio is taken against: the whole matrix in RAM.
REFERENCE_FAMILY = "dense"
#: The machine's limits, measured in the same run (GB/s).
ROOFLINE_CLASS = "machine.Roofline"
MEMORY_ROOF = f"{ROOFLINE_CLASS}.track_memory_read_gbps"
DISK_ROOF = f"{ROOFLINE_CLASS}.track_disk_read_gbps"

# ---------------------------------------------------------------------------- parameters
#: Parameters that name the matrix as a dense array would hold it.
MATRIX_PARAMS = ("shape", "dtype")
#: A sparse matrix's share of nonzeros (sparse benchmarks only).
DENSITY_PARAM = "density"
#: Parameters that name the problem (the matrix); equal values mean the same matrix.
PROBLEM_PARAMS = (*MATRIX_PARAMS, DENSITY_PARAM)
#: The strategy parameter (a harness strategy name).
STRATEGY_PARAM = "strategy"
#: HDF5 layout: chunk shape, chunk cache (bytes), compression ("none": uncompressed).
CHUNKS_PARAM, CHUNK_CACHE_PARAM, COMPRESSION_PARAM = "chunks", "chunk_cache", "compression"
NO_COMPRESSION = "none"
#: Parameters that describe a way to store or multiply, shown after the strategy name.
WAY_PARAMS = (CHUNKS_PARAM, CHUNK_CACHE_PARAM, COMPRESSION_PARAM, "values", "cluster")
#: Order of parameters in labels: the strategy, then the problem, then the way.
LABEL_ORDER = (STRATEGY_PARAM, *PROBLEM_PARAMS, *WAY_PARAMS)
#: Parameters whose values are byte counts (shown in binary units).
BYTES_PARAMS = (CHUNK_CACHE_PARAM,)

# ---------------------------------------------------------------------------- figures
#: Methods of every matvec class: asv's wall time (seconds) and process peak (bytes).
TIME = "time_matvec"
PEAKMEM = "peakmem_matvec"
#: The harness's own figures, method -> unit as asv records it.
TRACK_PEAK = "track_peak_increment"
TRACK_ANON = "track_anon_increment"
TRACK_FILE = "track_file_increment"
TRACK_GBPS = "track_gbps"
TRACK_COLD_SECONDS = "track_cold_seconds"
#: A dask cluster's figures beside the summed exact ones (the increments above): the peak of
#: dask's own MemorySampler over the same product, and the bytes its workers read.
TRACK_SAMPLED_PEAK = "track_sampled_peak"
TRACK_READ = "track_read_bytes"
#: Of compressed data only (``hdf5.Hdf5Compression``): bytes a pass reads from storage, and
#: decoded / stored bytes. ``track_gbps`` is then the decode throughput (decoded bytes/s).
TRACK_STORED = "track_stored_bytes"
TRACK_COMPRESSION_RATIO = "track_compression_ratio"
#: Of the product classes: the median pass over its columns, and a solve's first and last
#: pass from a cold cache.
TRACK_PER_COLUMN = "track_seconds_per_column"
TRACK_FIRST_PASS, TRACK_LAST_PASS = "track_first_pass_seconds", "track_last_pass_seconds"
TRACK_UNITS = {TRACK_PER_COLUMN: "seconds", TRACK_FIRST_PASS: "seconds",
               TRACK_LAST_PASS: "seconds", TRACK_PEAK: "bytes", TRACK_ANON: "bytes", TRACK_FILE: "bytes",
               TRACK_GBPS: "GB/s", TRACK_COLD_SECONDS: "seconds",
               TRACK_SAMPLED_PEAK: "bytes", TRACK_READ: "bytes", TRACK_STORED: "bytes",
               TRACK_COMPRESSION_RATIO: "ratio"}


def family(benchmark: str) -> str:
    """'hdf5.Hdf5Matvec.time_matvec' -> 'hdf5'."""
    return benchmark.split(".", 1)[0]


def benchmark_class(benchmark: str) -> str:
    """'hdf5.Hdf5Matvec.time_matvec' -> 'hdf5.Hdf5Matvec' (module-level functions keep the
    module)."""
    return benchmark.rsplit(".", 1)[0] if "." in benchmark else benchmark


def method(benchmark: str) -> str:
    """'hdf5.Hdf5Matvec.time_matvec' -> 'time_matvec'."""
    return benchmark.rsplit(".", 1)[-1]


def param_names(benchmark_class_name: str) -> list[str]:
    """asv ``param_names`` of a matvec or product class; a KeyError naming the known classes."""
    known = {**MATVEC_CLASSES, **PRODUCT_CLASSES}
    try:
        return list(known[benchmark_class_name])
    except KeyError:
        raise KeyError(f"no benchmark class {benchmark_class_name!r}; known: "
                       f"{sorted(known)}") from None
