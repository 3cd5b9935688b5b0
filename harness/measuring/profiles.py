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
``chunks`` one of :data:`CHUNK_LAYOUTS`, ``chunk_cache`` bytes, ``compression`` "none"/"gzip"/...,
``density`` a float.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from pathlib import Path

import psutil

from harness.measuring import datasets

PROFILE_ENV_VAR = "HARNESS_PROFILE"
DEFAULT_PROFILE = "default"

MiB = 1 << 20
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
GiB = 1 << 30

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
#: Default block budget of the blocked strategies (harness.measuring.strategies' memory_budget).
BLOCK_BUDGET_BYTES = 64 * MiB

#: Share of the available RAM a benchmark may plan to use: the rest is for the OS, the page cache
#: of the file under test and the other benchmark processes.
RAM_FRACTION = 0.6
#: Sustained read rate assumed when estimating a pass's duration (bytes/s): the page cache
#: on this class of machine; real figures are measured, this only decides what to skip.
ASSUMED_READ_BYTES_PER_SECOND = 1.5e9
#: Rate of reading the same bytes again, from the page cache through HDF5 (bytes/s).
ASSUMED_REREAD_BYTES_PER_SECOND = 8e9
#: Decompression rates assumed for the same estimate (bytes of output per second).
ASSUMED_DECOMPRESS_BYTES_PER_SECOND = {"gzip": 150e6, "lzf": 400e6}
#: Fixed cost of one h5py read call (seconds): the notebook's row loop is made of these.
ASSUMED_SECONDS_PER_READ_CALL = 60e-6
#: lil and dok hold one Python object per nonzero: building them costs about this per nonzero.
ASSUMED_SECONDS_PER_PYTHON_NONZERO = 1.5e-6


class Skip(NotImplementedError):
    """A parameter combination this profile or this machine does not run; the message says why.

    asv records a combination whose ``setup`` raises ``NotImplementedError`` as skipped (NaN),
    not as failed (null)."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One parameter combination made concrete: what ``harness.measuring.measure`` needs."""

    family: str
    strategy: str
    spec: datasets.DatasetSpec
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
    #: Bytes of the roofline probes (memory and disk); None: harness.measuring.machine's defaults.
    roofline_probe_bytes: int | None = None

    def roofline_kwargs(self) -> dict:
        """Keyword arguments for ``harness.measuring.machine.roofline`` in this profile."""
        if self.roofline_probe_bytes is None:
            return {}
        return {"memory_bytes": self.roofline_probe_bytes, "disk_bytes": self.roofline_probe_bytes}

    def params(self, benchmark_class: str, param_names: list[str]) -> list[list]:
        """asv ``params`` of a class: one list of values per name in ``param_names``."""
        try:
            grid = self.grids[benchmark_class]
        except KeyError:
            raise KeyError(
                f"profile {self.name!r} has no grid for {benchmark_class!r}; "
                f"known: {sorted(self.grids)}"
            ) from None
        missing = [n for n in param_names if n not in grid]
        if missing:
            raise KeyError(f"profile {self.name!r}, {benchmark_class}: no values for {missing}")
        return [list(grid[n]) for n in param_names]

    def combinations(self, benchmark_class: str) -> list[dict]:
        """Every parameter combination of a class (what asv will run), as dicts."""
        grid = self.grids[benchmark_class]
        names = list(grid)
        combos: list[dict] = [{}]
        for n in names:
            combos = [dict(c, **{n: v}) for c in combos for v in grid[n]]
        return combos


def parse_shape(shape: str) -> tuple[int, int]:
    """'1000x100000' -> (1000, 100000)."""
    try:
        rows, cols = (int(n) for n in str(shape).lower().split("x"))
    except ValueError:
        raise ValueError(f"shape must look like '1000x100000' (rows x cols), got {shape!r}") from None
    if rows < 1 or cols < 1:
        raise ValueError(f"shape must have positive sizes, got {shape!r}")
    return rows, cols


def _shape_sort_key(shape: str) -> tuple[int, int]:
    rows, cols = parse_shape(shape)
    return rows * cols, rows


def _hdf5_grid(strategies, shapes, dtypes, chunks, caches, compressions) -> dict:
    return {"shape": shapes, "dtype": dtypes, "strategy": strategies, "chunks": chunks,
            "chunk_cache": caches, "compression": compressions}


_ALL_HDF5 = ("hdf5-rows", "hdf5-read", "hdf5-blocked", "hdf5-chunked", "hdf5-mmap")
_MEMMAP = ("memmap", "memmap-rows", "memmap-blocked")
_SPARSE = ("csr", "csc", "coo", "bsr", "dia", "lil", "dok", "csr-hdf5-blocked")


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


def _profile(name, description, *, dense, hdf5, sparse, densities, hdf5_chunks,
             cache_sweep_chunks, cache_sweep, compressions, **settings) -> Profile:
    grids = {
        "dense.DenseMatvec": {"shape": shapes(dense), "dtype": dtypes(dense),
                              "strategy": ["dense"]},
        "memmap.MemmapMatvec": {"shape": shapes(dense), "dtype": dtypes(dense),
                                "strategy": list(_MEMMAP)},
        # Every strategy on every chunk layout, at HDF5 2.0's default chunk cache.
        "hdf5.Hdf5Matvec": _hdf5_grid(list(_ALL_HDF5), shapes(hdf5), dtypes(hdf5),
                                      list(hdf5_chunks), [HDF5_DEFAULT_CHUNK_CACHE], ["none"]),
        # The notebook's pathology: row reads through a chunk cache too small for a chunk row.
        "hdf5.Hdf5ChunkCache": _hdf5_grid(["hdf5-rows", "hdf5-blocked"], shapes(hdf5),
                                          dtypes(hdf5), list(cache_sweep_chunks),
                                          list(cache_sweep), ["none"]),
        # What decompression costs, read in the two orders that suit chunked data.
        "hdf5.Hdf5Compression": _hdf5_grid(["hdf5-blocked", "hdf5-chunked"], shapes(hdf5),
                                           dtypes(hdf5), ["rows"], [HDF5_DEFAULT_CHUNK_CACHE],
                                           list(compressions)),
        "sparse.SparseMatvec": {"shape": shapes(sparse), "dtype": dtypes(sparse),
                                "strategy": list(_SPARSE), "density": list(densities)},
    }
    problems = {"dense": tuple(dense), "memmap": tuple(dense), "hdf5": tuple(hdf5),
                "sparse": tuple(sparse)}
    return Profile(name=name, description=description, problems=problems, grids=grids,
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
        compressions=["gzip", "lzf"],
        track_repeat=1, cold_repeat=1, time_repeat=(4, 10, 1.0), timeout_seconds=60.0,
        setup_cache_timeout_seconds=300.0, max_pass_seconds=1.0, roofline_probe_bytes=64 * MiB,
    ),
    "default": _profile(
        "default", "the notebook's sizes: about 5 minutes here",
        dense=[("1000x100000", "float32"), ("100x1000000", "float32"),
               ("10000x10000", "float64")],
        hdf5=[("1000x100000", "float32")],
        sparse=[("1000x100000", "float32")],
        densities=[0.001, 0.01, 0.1],
        hdf5_chunks=CHUNK_LAYOUTS,
        cache_sweep_chunks=["auto", "rows"],
        cache_sweep=[HDF5_1X_CHUNK_CACHE, HDF5_DEFAULT_CHUNK_CACHE, 64 * MiB],
        compressions=["lzf"],  # gzip: ~4 s a pass here; in ci (small) and full
        track_repeat=2, cold_repeat=1, time_repeat=(4, 8, 1.5), timeout_seconds=180.0,
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
        compressions=["lzf", "gzip", "blosc", "zstd"],
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

def chunk_shape(layout: str, shape: tuple[int, int], dtype: str):
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


def _compression(value: str) -> str | None:
    return None if value in (None, "none") else value


def spec_for(family: str, strategy: str, params: dict) -> datasets.DatasetSpec:
    """The dataset a (family, strategy, parameters) combination multiplies."""
    shape = parse_shape(params["shape"])
    dtype = params["dtype"]
    if family == "sparse":
        storage = "csr-hdf5" if strategy == "csr-hdf5-blocked" else "npz"
        return datasets.DatasetSpec(shape, dtype, density=float(params["density"]),
                                    storage=storage)
    if family == "hdf5":
        return datasets.DatasetSpec(shape, dtype, storage="hdf5",
                                    chunks=chunk_shape(params["chunks"], shape, dtype),
                                    compression=_compression(params["compression"]))
    # dense loads the flat binary file into RAM; memmap maps it.
    return datasets.DatasetSpec(shape, dtype, storage="ram" if family == "dense" else "raw")


def options_for(family: str, params: dict) -> dict:
    """Strategy options of a combination (chunk cache for HDF5)."""
    if family == "hdf5":
        return {"chunk_cache_bytes": int(params["chunk_cache"])}
    return {}


# ------------------------------------------------------------------------------------------
# What fits this machine
# ------------------------------------------------------------------------------------------

def _index_bytes(spec: datasets.DatasetSpec) -> int:
    return 8 if spec.shape[0] * spec.shape[1] > 2**31 - 1 else 4


def resident_bytes(strategy: str, spec: datasets.DatasetSpec) -> int:
    """Bytes of RAM a strategy holds beyond x and y (estimate used only to decide skips).

    In-RAM strategies hold the whole matrix in their format; out-of-core ones their block
    budget. lil/dok hold Python objects (~ 100 bytes per nonzero); dia one dense row per
    diagonal.
    """
    rows, cols = spec.shape
    matrix = rows * cols * spec.itemsize
    if spec.density is None:
        if strategy in ("dense", "hdf5-read"):
            return matrix
        return min(matrix, BLOCK_BUDGET_BYTES)
    nnz = datasets.nnz(spec)
    idx = _index_bytes(spec)
    if strategy == "csr-hdf5-blocked":
        return min(nnz * (spec.itemsize + idx), BLOCK_BUDGET_BYTES)
    if strategy in ("lil", "dok"):
        return nnz * 100 + rows * 64
    if strategy == "dia":
        # A random matrix has about min(nnz, rows + cols - 1) distinct diagonals.
        return min(nnz, rows + cols - 1) * cols * spec.itemsize
    if strategy == "coo":
        return nnz * (spec.itemsize + 2 * idx)
    return nnz * (spec.itemsize + idx) + (max(rows, cols) + 1) * idx


def estimated_pass_seconds(strategy: str, spec: datasets.DatasetSpec, options: dict) -> float:
    """Rough seconds of one matvec pass, to skip combinations that would take minutes.

    The dominant term for chunked HDF5 is read amplification: the row loop (``hdf5-rows``)
    through a chunk cache smaller than one row of chunks reads every chunk once per row it
    holds (the notebook's pathology on HDF5 1.x).
    """
    rows, cols = spec.shape
    matrix = rows * cols * spec.itemsize
    if spec.density is not None:
        nnz = datasets.nnz(spec)
        if strategy in ("lil", "dok"):
            return nnz * ASSUMED_SECONDS_PER_PYTHON_NONZERO
        return nnz * (spec.itemsize + 8) / ASSUMED_READ_BYTES_PER_SECOND
    seconds = matrix / ASSUMED_READ_BYTES_PER_SECOND
    if strategy in ("memmap-rows", "hdf5-rows"):
        seconds += rows * (ASSUMED_SECONDS_PER_READ_CALL if strategy == "hdf5-rows" else 5e-6)
    if spec.storage != "hdf5" or strategy in ("hdf5-read", "hdf5-mmap", "hdf5-chunked"):
        return seconds + _decompress_seconds(spec, matrix)
    chunks = spec.chunks
    if strategy != "hdf5-rows" or chunks is None:
        # The other readers ask for whole chunk-rows (or chunks) at a time: no amplification.
        return seconds + _decompress_seconds(spec, matrix)
    if chunks == "auto":
        chunks = _h5py_auto_chunks(spec)
    chunk_rows, chunk_cols = min(chunks[0], rows), min(chunks[1], cols)
    chunk_bytes = chunk_rows * chunk_cols * spec.itemsize
    chunk_row_bytes = math.ceil(cols / chunk_cols) * chunk_bytes
    cache = options.get("chunk_cache_bytes", HDF5_DEFAULT_CHUNK_CACHE)
    # One row at a time: every chunk is read (and decompressed) once per row it holds unless
    # the cache keeps a whole row of chunks.
    amplification = chunk_rows if chunk_row_bytes > cache else 1
    # Re-reads come from the page cache (measured here: the 1000 x 100000 float32 row loop on
    # h5py's auto chunks, 16x amplified through a 1 MiB cache, takes 0.5 s a pass).
    rereads = (amplification - 1) * matrix / ASSUMED_REREAD_BYTES_PER_SECOND
    return seconds + rereads + amplification * _decompress_seconds(spec, matrix)


def _decompress_seconds(spec: datasets.DatasetSpec, nbytes: int) -> float:
    if spec.storage != "hdf5" or spec.compression is None:
        return 0.0
    return nbytes / ASSUMED_DECOMPRESS_BYTES_PER_SECOND.get(spec.compression, 300e6)


def _h5py_auto_chunks(spec: datasets.DatasetSpec) -> tuple[int, int]:
    from h5py._hl.filters import guess_chunk  # h5py's own rule for chunks=True

    return tuple(guess_chunk(spec.shape, None, spec.itemsize))


def skip_reason(case: Case, profile: Profile, data_root: str | os.PathLike | None = None,
                available_ram_bytes: int | None = None,
                free_disk_bytes: int | None = None) -> str | None:
    """Why ``case`` must not run on this machine (RAM, disk or time), or None if it fits."""
    spec, strategy = case.spec, case.strategy
    if strategy == "hdf5-mmap" and spec.compression is not None:
        return "hdf5-mmap maps raw bytes: it needs uncompressed data"
    if available_ram_bytes is None:
        available_ram_bytes = psutil.virtual_memory().available
    from harness.measuring import strategies

    needed = max(resident_bytes(strategy, spec),
                 strategies.get(strategy).extra_memory_bytes(spec, **case.options))
    if needed > RAM_FRACTION * available_ram_bytes:
        return (f"needs about {needed / GiB:.1f} GiB of RAM, more than {RAM_FRACTION:.0%} of the "
                f"{available_ram_bytes / GiB:.1f} GiB available; run a smaller profile "
                "or a machine with more RAM")
    root = Path(data_root) if data_root is not None else datasets.default_root()
    if not datasets.dataset_path(spec, root).exists():
        if free_disk_bytes is None:
            free_disk_bytes = _free_disk_bytes(root)
        needed_disk = int(datasets.expected_file_bytes(spec) * 1.1)
        if needed_disk > free_disk_bytes:
            return (f"its file needs {needed_disk / 1e9:.1f} GB of disk, {root} has "
                    f"{free_disk_bytes / 1e9:.1f} GB free; set HARNESS_DATA_DIR to a larger disk")
    seconds = estimated_pass_seconds(strategy, spec, case.options)
    if seconds > profile.max_pass_seconds:
        return (f"one pass would take about {seconds:.0f} s (more than this profile's "
                f"{profile.max_pass_seconds:g} s per pass)")
    return None


def _free_disk_bytes(root: Path) -> int:
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


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
    spec = spec_for(family, strategy, params)
    from harness.measuring import strategies

    refusal = strategies.get(strategy).why_not(spec)
    if refusal:
        raise Skip(refusal)
    result = Case(family=family, strategy=strategy, spec=spec,
                  options=options_for(family, params))
    if check_fit:
        reason = skip_reason(result, profile, data_root)
        if reason:
            raise Skip(f"{strategy} on {params['shape']} {params['dtype']}: {reason}")
    return result


def planned_cases(profile: Profile, data_root=None, check_fit: bool = False) -> dict:
    """Every combination of every class -> its Case or its skip reason: what a profile will do."""
    plan: dict = {}
    for benchmark_class in profile.grids:
        family = benchmark_class.split(".")[0]
        for params in profile.combinations(benchmark_class):
            key = (benchmark_class, tuple(sorted(params.items())))
            try:
                plan[key] = case(family, params, profile, data_root, check_fit=check_fit)
            except Skip as exc:
                plan[key] = str(exc)
    return plan
