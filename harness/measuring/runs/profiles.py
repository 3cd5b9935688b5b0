"""Benchmark profiles: which matrices and parameter grids the asv suite runs, and what to skip.

A profile is chosen by the environment variable ``HARNESS_PROFILE`` (``ci``, ``default`` or
``full``; unset means ``default``). asv passes the caller's environment on to the processes that
discover and run benchmarks, so ``HARNESS_PROFILE=ci asv run ...`` reaches every benchmark.

The asv suite (``benchmarks/``) reads its ``params`` from here (:meth:`Profile.params`) and, in
``setup``, turns one parameter combination into a :class:`Case` with :func:`case`; a combination
that is not part of the profile, or does not fit this machine (RAM, disk, time), raises
:class:`Skip` (a ``NotImplementedError``, asv's way of skipping) with the reason.

Parameter values are small strings and ints, because asv stores them as ``repr()`` labels:
``shape`` "1000x100000", ``dtype`` "float32", ``strategy`` a harness strategy name,
``chunks`` one of :data:`CHUNK_LAYOUTS`, ``chunk_cache`` bytes, ``compression`` "none"/"gzip"/...
(``harness.measuring.storage.codecs``), ``values`` the kind of values ("uniform", "smooth", "quantized"),
``density`` a float, ``cluster`` "WORKERSxTHREADS" (a dask cluster's workers and threads per
worker).

The classes and their parameter names come from ``harness.names``, the strategies of a family
from ``harness.measuring.strategies``; what a strategy reads, refuses, holds in RAM and how long
a pass should take are asked of the strategy itself: this module names none.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import psutil

from harness import names
from harness.measuring import fit, strategies
from harness.measuring.matrix import values as value_kinds
from harness.measuring.matrix.spec import DatasetSpec, Problem, parse_shape
from harness.measuring.storage import codecs, datasets
from harness.units import MiB

PROFILE_ENV_VAR = "HARNESS_PROFILE"
DEFAULT_PROFILE = "default"

# Timing samples per commit for asv's significance test (asv compare, continuous, our gate):
# asv 0.6 (asv._stats.is_different) needs p < 0.002 from Mann-Whitney U, and even a complete
# separation of n against n samples only reaches p = 2 / C(2n, n): 0.0022 for 6 a side (never
# significant), 0.0006 for 7. Below that asv falls back to 99% confidence-interval overlap,
# which with 3 samples almost never separates: a 2x slowdown went unflagged by `asv continuous`
# under the 3-sample profiles this replaced. 8 leaves room for one overlapping sample. The
# samples of one round come from one process and move together (a slow process here shifted a
# whole round by 1.4-1.8x), so asv still finds some unchanged benchmarks "significant"; the
# second round, and `python -m harness gate`'s confirmation run, are what answer that.
MIN_TIME_SAMPLES = 8

#: Chunk layouts of the HDF5 benchmarks (the ``chunks`` parameter).
CHUNK_LAYOUTS = ("contiguous", "rows", "square", "columns", "auto")
#: Target bytes of one chunk for the row- and column-shaped layouts: the notebook's matrix
#: (1000 x 100000 float32) gets (10, 100000) row chunks.
SLAB_CHUNK_BYTES = 4 * MiB
#: Target bytes of one square chunk (h5py's guidance: chunks of about 1 MiB or less).
SQUARE_CHUNK_BYTES = 1 * MiB
#: HDF5 2.0's default chunk cache (h5py's rdcc_nbytes) and HDF5 1.x's, which the notebook had.
HDF5_DEFAULT_CHUNK_CACHE = 8 * MiB
HDF5_1X_CHUNK_CACHE = 1 * MiB

class Skip(NotImplementedError):
    """A parameter combination this profile or this machine does not run; the message says why.

    asv records a combination whose ``setup`` raises ``NotImplementedError`` as skipped (NaN),
    not as failed (null)."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One parameter combination made concrete: what ``harness.measuring.runs.measure`` needs."""

    family: str
    strategy: str
    spec: DatasetSpec
    options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Profile:
    """Sizes and parameter grids of one profile.

    ``grids`` maps a benchmark class (``"<family>.<ClassName>"``) to its parameter grid
    (parameter name -> values); asv runs the cartesian product. ``problems`` maps a family to
    the (shape, dtype) pairs it runs: other pairs of the product are skipped as "not in this
    profile", so that one class can hold a 400 MB float32 and an 800 MB float64 matrix without
    running every shape in every dtype.
    """

    name: str
    description: str
    problems: dict
    grids: dict
    #: Timed passes per warm track_ measurement and per cold one (median reported; a cold
    #: pass re-reads the whole file from disk).
    track_repeat: int = 3
    cold_repeat: int = 3
    #: asv's ``repeat`` for time_ benchmarks: (min, max, max seconds) per round.
    time_repeat: tuple = (4, 10, 5.0)
    #: asv's ``rounds`` for time_ benchmarks (each round is another process). min repeat x
    #: rounds must reach MIN_TIME_SAMPLES, or asv compare / continuous cannot tell a change.
    rounds: int = 2
    #: asv timeout per benchmark process, and for setup_cache (seconds).
    timeout_seconds: float = 180.0
    setup_cache_timeout_seconds: float = 1800.0
    #: Estimated seconds of one matvec pass above which a combination is skipped.
    max_pass_seconds: float = 5.0
    #: Bytes of the roofline probes (memory and disk); None: harness.measuring.meters.machine's defaults.
    roofline_probe_bytes: int | None = None
    #: The grids of the product classes (``names.PRODUCT_CLASSES``), apart from the matvec ones.
    product_grids: dict = dataclasses.field(default_factory=dict)

    def grid(self, benchmark_class: str) -> dict:
        """The parameter grid of a matvec or product class."""
        try:
            return {**self.grids, **self.product_grids}[benchmark_class]
        except KeyError:
            raise KeyError(
                f"profile {self.name!r} has no grid for {benchmark_class!r}; "
                f"known: {sorted([*self.grids, *self.product_grids])}"
            ) from None

    def roofline_kwargs(self) -> dict:
        """Keyword arguments for ``harness.measuring.meters.machine.roofline`` in this profile."""
        if self.roofline_probe_bytes is None:
            return {}
        return {"memory_bytes": self.roofline_probe_bytes, "disk_bytes": self.roofline_probe_bytes}

    def params(self, benchmark_class: str, param_names: list[str]) -> list[list]:
        """asv ``params`` of a class: one list of values per name in ``param_names``."""
        grid = self.grid(benchmark_class)
        missing = [n for n in param_names if n not in grid]
        if missing:
            raise KeyError(f"profile {self.name!r}, {benchmark_class}: no values for {missing}")
        return [list(grid[n]) for n in param_names]

    def combinations(self, benchmark_class: str) -> list[dict]:
        """Every parameter combination of a class (what asv will run), as dicts."""
        grid = self.grid(benchmark_class)
        combos: list[dict] = [{}]
        for n in grid:
            combos = [dict(c, **{n: v}) for c in combos for v in grid[n]]
        return combos


def _shape_sort_key(shape: str) -> tuple[int, int]:
    rows, cols = parse_shape(shape)
    return rows * cols, rows


def shapes(pairs) -> list[str]:
    """Distinct shapes of (shape, dtype) pairs, smallest first."""
    return sorted({shape for shape, _ in pairs}, key=_shape_sort_key)


def dtypes(pairs) -> list[str]:
    """Distinct dtypes of (shape, dtype) pairs."""
    return sorted({dtype for _, dtype in pairs})


def _larger_than_ram_shape(rows: int = 100_000, itemsize: int = 8) -> str:
    """A shape whose float64 matrix is 1.25 x this machine's RAM (columns rounded to 1000):
    the full profile's out-of-core case. Skipped at run time if the disk cannot hold it."""
    target = 1.25 * psutil.virtual_memory().total
    cols = max(1000, math.ceil(target / (rows * itemsize) / 1000) * 1000)
    return f"{rows}x{cols}"


def _grid(benchmark_class: str, problems: dict, sweep: dict, question: str | None) -> dict:
    """Parameter name -> values of one class: its family's problems and strategies (those
    compared in ``question`` when the class asks one), then what the class sweeps."""
    family = names.family(benchmark_class)
    values = {"shape": shapes(problems[family]), "dtype": dtypes(problems[family]),
              "strategy": strategies.names(family, question=question), **sweep}
    return {name: list(values[name]) for name in names.param_names(benchmark_class)}


def _product_grids(problems: dict, strategy_names, columns, passes) -> dict:
    """The grids of the product classes: the out-of-core readers ``strategy_names`` on the
    HDF5 family's problems (row chunks: every reader can read them), A @ X and AᵀY for
    ``columns`` k (k = 1: A @ x and Aᵀy), and a solve of ``passes`` products."""
    common = {"shape": shapes(problems["hdf5"]), "dtype": dtypes(problems["hdf5"]),
              "strategy": list(strategy_names), "chunks": ["rows"]}
    return {"products.ProductColumns": {**common, "product": list(PRODUCT_DIRECTIONS),
                                        "columns": list(columns)},
            "products.SolvePasses": {**common, "passes": list(passes)}}


#: The ``product`` parameter of ``products.ProductColumns``: A @ X or AᵀY (k = 1: the vector
#: products), named by the one-column product.
PRODUCT_DIRECTIONS = ("matvec", "rmatvec")


def product_of(direction: str, columns: int) -> str:
    """The strategy product a (``product``, ``columns``) combination times: ``matvec`` and
    ``rmatvec`` for one column, ``matmat`` and ``rmatmat`` for more."""
    if direction not in PRODUCT_DIRECTIONS:
        raise ValueError(f"product must be one of {PRODUCT_DIRECTIONS}, got {direction!r}")
    if int(columns) == 1:
        return direction
    return {"matvec": "matmat", "rmatvec": "rmatmat"}[direction]


def _profile(name, description, *, dense, hdf5, sparse, densities, hdf5_chunks,
             cache_sweep_chunks, cache_sweep, compressions, compression_values, zarr_chunks,
             zarr_codecs, clusters, product_strategies, product_columns, solve_passes,
             **settings) -> Profile:
    problems = {"dense": tuple(dense), "memmap": tuple(dense), "hdf5": tuple(hdf5),
                "sparse": tuple(sparse), "zarr": tuple(hdf5), "distributed": tuple(hdf5)}
    default_cache, uncompressed = [HDF5_DEFAULT_CHUNK_CACHE], ["none"]
    # What each class sweeps besides its family's problems, and the question (if any) that
    # picks the strategies it compares.
    sweeps = {
        # Every strategy on every chunk layout, at HDF5 2.0's default chunk cache.
        "hdf5.Hdf5Matvec": ({"chunks": hdf5_chunks, "chunk_cache": default_cache,
                             "compression": uncompressed}, None),
        # The notebook's pathology: row reads through a chunk cache too small for a chunk row.
        "hdf5.Hdf5ChunkCache": ({"chunks": cache_sweep_chunks, "chunk_cache": cache_sweep,
                                 "compression": uncompressed}, "chunk_cache"),
        # What decompression costs, read in the orders that suit chunked data, on values
        # of each kind (uniform random floats are all but incompressible).
        "hdf5.Hdf5Compression": ({"chunks": ["rows"], "chunk_cache": default_cache,
                                  "compression": compressions, "values": compression_values},
                                 "compression"),
        "sparse.SparseMatvec": ({"density": densities}, None),
        # Two readers of one zarr store (and a map of its chunk files), per chunk shape and codec.
        "zarr.ZarrMatvec": ({"chunks": zarr_chunks, "compression": zarr_codecs}, None),
        # dask over a zarr store: one process's threads against a cluster of worker processes.
        "distributed.DistributedMatvec": ({"chunks": ["rows"], "cluster": clusters}, None),
    }
    grids = {cls: _grid(cls, problems, *sweeps.get(cls, ({}, None)))
             for cls in names.MATVEC_CLASSES}
    return Profile(name=name, description=description, problems=problems, grids=grids,
                   product_grids=_product_grids(problems, product_strategies, product_columns,
                                                solve_passes),
                   **settings)


PROFILES: dict[str, Profile] = {
    "ci": _profile(
        "ci", "megabytes: every family and code path in a minute or two (the e2e test)",
        dense=[("200x5000", "float32"), ("300x300", "float64")],
        hdf5=[("200x5000", "float32")],
        sparse=[("200x5000", "float32")],
        densities=[0.01],
        hdf5_chunks=CHUNK_LAYOUTS,
        cache_sweep_chunks=["square"],
        cache_sweep=[HDF5_1X_CHUNK_CACHE, HDF5_DEFAULT_CHUNK_CACHE],
        compressions=["gzip", "lzf", "blosc-lz4"],
        compression_values=["smooth"],
        zarr_chunks=["rows", "square"], zarr_codecs=["none", "zstd", "blosc-lz4"],
        clusters=["2x1"],
        # One reader, one k > 1: the code paths of A @ X, AᵀY and a solve, in seconds.
        product_strategies=["hdf5-direct"], product_columns=[4], solve_passes=[3],
        track_repeat=1, cold_repeat=1, time_repeat=(4, 10, 1.0), timeout_seconds=60.0,
        setup_cache_timeout_seconds=300.0, max_pass_seconds=1.0, roofline_probe_bytes=64 * MiB,
    ),
    "default": _profile(
        "default", "the notebook's sizes: about 5 minutes here",
        dense=[("1000x100000", "float32"), ("100x1000000", "float32"),
               ("10000x10000", "float64")],
        hdf5=[("1000x100000", "float32")],
        sparse=[("1000x100000", "float32")],
        # The ends of the notebook's range (0.001 to 0.1; full adds 0.0001 and 0.01): make
        # bench must stay under six minutes.
        densities=[0.001, 0.1],
        # Column-shaped chunks (the worst layout for reading rows) are left to ci and full:
        # square chunks already show what chunks narrower than a row cost, and make bench
        # must stay within its budget.
        hdf5_chunks=[layout for layout in CHUNK_LAYOUTS if layout != "columns"],
        # The notebook's case only (h5py's auto chunks, through HDF5 1.x's and 2.0's chunk
        # caches), to stay within make bench's budget; full sweeps three layouts and four sizes.
        cache_sweep_chunks=["auto"],
        cache_sweep=[HDF5_1X_CHUNK_CACHE, HDF5_DEFAULT_CHUNK_CACHE],
        # The realistic case only, to stay within make bench's budget: blosc-lz4 on smooth
        # values (0.1-0.5 s a pass). gzip (1.5-4 s a pass through hdf5-blocked here) and lzf
        # (which hdf5-direct refuses: no decoder that releases the GIL) are in ci and full.
        compressions=["blosc-lz4"],
        compression_values=["smooth"],
        # zarr's own reads run at ~2 GB/s here (0.5 GB/s cold): one layout, uncompressed.
        zarr_chunks=["rows"], zarr_codecs=["none"], clusters=["2x1"],
        # The out-of-core readers the recommendation picks here, per k; a solve of ten passes.
        product_strategies=["memmap-blocked", "hdf5-blocked", "hdf5-direct", "zarr-mmap"],
        product_columns=[1, 4, 16, 64], solve_passes=[10],
        track_repeat=2, cold_repeat=1, time_repeat=(4, 8, 1.0), timeout_seconds=180.0,
        max_pass_seconds=3.0,
    ),
    "full": _profile(
        "full", "gigabytes, up to a matrix larger than this machine's RAM when the disk allows",
        dense=[("1000x100000", "float32"), ("100x1000000", "float32"),
               ("10000x10000", "float64"), ("20000x100000", "float32"),
               (_larger_than_ram_shape(), "float64")],
        hdf5=[("1000x100000", "float32"), ("20000x100000", "float32"),
              (_larger_than_ram_shape(), "float64")],
        sparse=[("1000x100000", "float32"), ("100000x100000", "float32")],
        densities=[0.0001, 0.001, 0.01, 0.1],
        hdf5_chunks=CHUNK_LAYOUTS,
        cache_sweep_chunks=["auto", "square", "rows"],
        cache_sweep=[HDF5_1X_CHUNK_CACHE, HDF5_DEFAULT_CHUNK_CACHE, 64 * MiB, 512 * MiB],
        compressions=["none", *codecs.COMPRESSED_NAMES],
        compression_values=list(value_kinds.KINDS),
        zarr_chunks=["rows", "square", "auto"],
        zarr_codecs=["none", "zstd", "blosc-lz4", "blosc-zstd", "gzip-1"],
        clusters=["1x2", "2x1"],
        # Not dask-distributed: a solve's passes are metered in this process only.
        product_strategies=["memmap-blocked", "hdf5-blocked", "hdf5-direct", "zarr-mmap",
                            "zarr-blocked", "dask-threads"],
        product_columns=[1, 4, 16, 64], solve_passes=[10, 50],
        track_repeat=3, cold_repeat=3, time_repeat=(4, 10, 30.0), rounds=2,
        timeout_seconds=1800.0,
        setup_cache_timeout_seconds=4 * 3600.0, max_pass_seconds=120.0,
    ),
}


def active_name() -> str:
    """The profile named by $HARNESS_PROFILE (default: ``default``)."""
    return os.environ.get(PROFILE_ENV_VAR, "").strip() or DEFAULT_PROFILE


def get(name: str | None = None) -> Profile:
    """The profile ``name``, or the active one. Unknown names get an error listing the valid ones."""
    name = active_name() if name is None else name
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown benchmark profile {name!r} (from ${PROFILE_ENV_VAR}); "
            f"choose one of {sorted(PROFILES)}, e.g. {PROFILE_ENV_VAR}=ci"
        ) from None


# ------------------------------------------------------------------------------------------
# Parameter values -> dataset specs and options
# ------------------------------------------------------------------------------------------

def chunks_for_layout(layout: str, shape: tuple[int, int], dtype: str):
    """HDF5 chunks for a layout name: None (contiguous), "auto" (h5py's guess) or (rows, cols).

    rows: full-width slabs of about 4 MiB; columns: full-height slabs of about 4 MiB;
    square: about 1 MiB. Clipped to the matrix.
    """
    rows, cols = shape
    itemsize = 8 if dtype == "float64" else 4
    if layout == "contiguous":
        return None
    if layout == "auto":
        return "auto"
    if layout == "rows":
        return (max(1, min(rows, SLAB_CHUNK_BYTES // (cols * itemsize))), cols)
    if layout == "columns":
        return (rows, max(1, min(cols, SLAB_CHUNK_BYTES // (rows * itemsize))))
    if layout == "square":
        side = max(1, math.isqrt(SQUARE_CHUNK_BYTES // itemsize))
        return (min(rows, side), min(cols, side))
    raise ValueError(f"chunks must be one of {CHUNK_LAYOUTS}, got {layout!r}")


def problem_for(params: dict) -> Problem:
    """The matrix a parameter combination multiplies, with its HDF5 layout if it has one."""
    shape = parse_shape(params["shape"])
    dtype = params["dtype"]
    density = params.get("density")
    chunks = params.get("chunks")
    compression = params.get("compression")
    return Problem(
        shape, dtype, density=None if density is None else float(density),
        chunks=None if chunks is None else chunks_for_layout(chunks, shape, dtype),
        compression=None if compression in (None, "none") else compression,
        values=params.get("values", value_kinds.DEFAULT_KIND))


def options_for(params: dict) -> dict:
    """Strategy options of a combination (the HDF5 chunk cache, a dask cluster's workers and
    threads, where they are parameters)."""
    options = {}
    if "chunk_cache" in params:
        options["chunk_cache_bytes"] = int(params["chunk_cache"])
    if "cluster" in params:
        workers, threads = parse_shape(params["cluster"])  # "2x1": the same form
        options.update(workers=workers, threads_per_worker=threads)
    return options


# ------------------------------------------------------------------------------------------
# What fits this machine
# ------------------------------------------------------------------------------------------

def skip_reason(case: Case, profile: Profile, data_root: str | os.PathLike | None = None,
                available_ram_bytes: int | None = None,
                free_disk_bytes: int | None = None) -> str | None:
    """Why ``case`` must not run on this machine (RAM, disk or time), or None if it fits."""
    spec, strategy = case.spec, strategies.get(case.strategy)
    refusal = strategy.why_not(spec)
    if refusal:
        return refusal
    needed = strategy.needed_ram_bytes(spec, **case.options)
    refusal = fit.ram_refusal(needed, available_ram_bytes)
    if refusal:
        return f"{refusal}; run a smaller profile or a machine with more RAM"
    root = Path(data_root) if data_root is not None else datasets.default_root()
    if not datasets.dataset_path(spec, root).exists():
        if free_disk_bytes is None:
            free_disk_bytes = fit.free_disk_bytes(root)
        needed_disk = fit.with_disk_margin(datasets.expected_file_bytes(spec))
        if needed_disk > free_disk_bytes:
            return (f"its file needs {needed_disk / 1e9:.1f} GB of disk, {root} has "
                    f"{free_disk_bytes / 1e9:.1f} GB free; set HARNESS_DATA_DIR to a larger disk")
    seconds = strategy.estimated_pass_seconds(spec, **case.options)
    if seconds > profile.max_pass_seconds:
        return (f"one pass would take about {seconds:.0f} s (more than this profile's "
                f"{profile.max_pass_seconds:g} s per pass)")
    return None


def case(family: str, params: dict, profile: Profile | None = None,
         data_root: str | os.PathLike | None = None, check_fit: bool = True) -> Case:
    """Turn one asv parameter combination into a :class:`Case`, or raise :class:`Skip`.

    ``params`` maps parameter names to values as asv passes them. Skipped: (shape, dtype)
    pairs not listed for the family in the profile, combinations the strategy does not accept,
    and (with ``check_fit``) combinations that do not fit this machine.
    """
    profile = profile or get()
    problem = (params["shape"], params["dtype"])
    if problem not in profile.problems[family]:
        raise Skip(f"{params['shape']} {params['dtype']} is not a {family} problem of the "
                   f"{profile.name!r} profile")
    strategy = params["strategy"]
    try:
        spec = strategies.get(strategy).dataset_for(problem_for(params))
    except strategies.CannotRead as exc:
        raise Skip(str(exc)) from None
    result = Case(family=family, strategy=strategy, spec=spec, options=options_for(params))
    if check_fit:
        reason = skip_reason(result, profile, data_root)
        if reason:
            raise Skip(f"{strategy} on {params['shape']} {params['dtype']}: {reason}")
    return result


def product_case(params: dict, profile: Profile | None = None,
                 data_root: str | os.PathLike | None = None, check_fit: bool = True) -> Case:
    """A product class's combination as the :class:`Case` of its strategy's family (the
    product parameters aside), or raise :class:`Skip`."""
    matrix = {k: v for k, v in params.items() if k not in ("product", "columns", "passes")}
    return case(strategies.get(params["strategy"]).family, matrix, profile, data_root,
                check_fit=check_fit)


def planned_cases(profile: Profile, data_root=None, check_fit: bool = False) -> dict:
    """Every combination of every class -> its Case or its skip reason: what a profile will do."""
    plan: dict = {}
    for benchmark_class in profile.grids:
        family = names.family(benchmark_class)
        for params in profile.combinations(benchmark_class):
            key = (benchmark_class, tuple(sorted(params.items())))
            try:
                plan[key] = case(family, params, profile, data_root, check_fit=check_fit)
            except Skip as exc:
                plan[key] = str(exc)
    return plan
