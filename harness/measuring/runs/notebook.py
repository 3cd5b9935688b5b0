"""The claims of the 2017 notebook "Handling very large arrays, memory mappings", replayed.

Each claim is measured again at the notebook's sizes (``quick``: columns divided by 100, the
notebook's figures scaled alike where they scale with the size) and gets a :class:`ClaimRow`:
the notebook's figure, ours, the verdict (``reproduced``, ``different`` or ``wrong``) and why.

Memory claims run the notebook's cell in a fresh interpreter, under the harness's meter (the
kernel's high-water mark, split into anonymous and file-backed pages by a 1 ms sampler) and,
on the same execution, under ``memory_profiler.memory_usage`` at 10 Hz, which is what the
notebook's ``%memit`` used: both figures are shown. Timing claims reuse
``child.measure_in_subprocess``; the notebook's absolute times belong to its machine, so the
verdict compares ratios measured in the same run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness import units
from harness.measuring import strategies
from harness.measuring.matrix.generate import csr_array, footprint_bytes
from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.meters import memory, pagecache
from harness.measuring.runs import child
from harness.measuring.runs.measure import measure_in_process
from harness.measuring.storage import datasets
from harness.units import MiB

#: Verdicts.
REPRODUCED, DIFFERENT, WRONG = "reproduced", "different", "wrong"
#: A memory figure is reproduced within this fraction of the notebook's (or 1 MiB: the
#: libraries' own buffers, which do not scale with the matrix).
MEMORY_TOLERANCE = 0.10
#: A ratio of two times is reproduced within this factor of the notebook's.
RATIO_TOLERANCE = 1.5
#: The notebook's HDF5 1.x chunk cache (``rdcc_nbytes``), bytes.
HDF5_1_CHUNK_CACHE_BYTES = 1 * MiB


@dataclasses.dataclass(frozen=True)
class Sizes:
    """The shapes the claims use: ``scale`` divides every column count (1: the notebook's)."""

    scale: int = 1

    @property
    def wide(self) -> tuple[int, int]:
        """The notebook's memmap and ``np.random.random`` shape: 100 x 1 000 000."""
        return (100, 1_000_000 // self.scale)

    @property
    def tall(self) -> tuple[int, int]:
        """The notebook's HDF5, in-RAM and CSR shape: 1000 x 100 000."""
        return (1000, 100_000 // self.scale)


@dataclasses.dataclass(frozen=True)
class ClaimRow:
    """One claim: what the notebook said, what we measured, the verdict and why; ``sampler``:
    the 10 Hz sampler's figure on the same cell ("" where the notebook did not use one)."""

    claim: str
    notebook: str
    ours: str
    sampler: str
    verdict: str
    why: str


# ------------------------------------------------------------------------ memory cells (child)

def _cell_memmap_fill(sizes: Sizes, directory: Path):
    rows, cols = sizes.wide
    m = np.memmap(directory / "memmap.dat", dtype="float32", mode="w+", shape=(rows, cols))

    def cell():
        for i in range(rows):
            m[i, :] = np.random.random(cols)
    return cell, m


def _cell_hdf5_fill(sizes: Sizes, directory: Path):
    import h5py

    rows, cols = sizes.tall
    f = h5py.File(directory / "fill.h5", "w")
    dset = f.create_dataset("A", shape=(rows, cols), dtype="float32")

    def cell():
        for i in range(rows):
            dset[i, :] = np.random.random(cols)
    return cell, f


def _cell_random(sizes: Sizes, directory: Path):
    kept = []

    def cell():
        kept.append(np.random.random(sizes.wide))
    return cell, kept


def _written_memmap(sizes: Sizes, directory: Path) -> Path:
    path = directory / "memmap-read.dat"
    rows, cols = sizes.wide
    if not path.exists() or path.stat().st_size != rows * cols * 4:
        with open(path, "wb") as out:
            for _ in range(rows):
                np.random.random(cols).astype("float32").tofile(out)
    return path


def _cell_memmap_open(sizes: Sizes, directory: Path):
    path = _written_memmap(sizes, directory)
    kept = []

    def cell():
        kept.append(np.memmap(path, dtype="float32", mode="r", shape=sizes.wide))
    return cell, kept


def _cell_memmap_row(sizes: Sizes, directory: Path):
    path = _written_memmap(sizes, directory)
    pagecache.evict(path)
    m = np.memmap(path, dtype="float32", mode="r", shape=sizes.wide)
    kept = []

    def cell():
        kept.append(np.array(m[sizes.wide[0] // 2, :]))  # one row, read into RAM
    return cell, (m, kept)


_CELLS = {"memmap_fill": _cell_memmap_fill, "hdf5_fill": _cell_hdf5_fill,
          "random": _cell_random, "memmap_open": _cell_memmap_open,
          "memmap_row": _cell_memmap_row}


def run_cell(name: str, sizes: Sizes, directory: Path) -> dict:
    """Run cell ``name`` once under both meters (in this process); sizes in bytes."""
    import psutil
    from memory_profiler import memory_usage

    cell, keep = _CELLS[name](sizes, directory)
    # memory_profiler's first call imports and starts its machinery: not the cell's memory.
    memory_usage((lambda: None, (), {}), interval=0.1, max_usage=True)
    baseline = psutil.Process().memory_info().rss
    # %memit: peak RSS sampled at 10 Hz (memory_profiler's own process) minus RSS before.
    peak_mib, peak = memory.measure_peak(
        lambda: memory_usage((cell, (), {}), interval=0.1, max_usage=True))
    del keep
    return {"increment": peak.increment, "anon": peak.anon_increment, "file": peak.file_increment,
            "sampler_increment": max(0.0, float(peak_mib) * MiB - baseline)}


def _run_cell_in_subprocess(name: str, sizes: Sizes, directory: Path) -> dict:
    request = {"kind": "notebook-cell", "cell": name, "scale": sizes.scale,
               "dir": os.fspath(directory)}
    return child.run(request, f"the {name} cell")


# ----------------------------------------------------------------------------------- claims

def _memory_verdict(ours: float, expected: float) -> str:
    slack = max(MEMORY_TOLERANCE * expected, MiB)
    return REPRODUCED if abs(ours - expected) <= slack else DIFFERENT


def _memory_claim(title: str, cell: str, notebook_mib: float, scales: bool, explain):
    """A claim about ``%memit``'s increment of ``cell``: ``notebook_mib`` (scaled with the
    size when ``scales``); ``explain(figures, expected bytes)`` -> (verdict or None, why)."""
    def replay(context: Context) -> ClaimRow:
        figures = _run_cell_in_subprocess(cell, context.sizes, context.directory)
        expected = notebook_mib * MiB / (context.sizes.scale if scales else 1)
        verdict, why = explain(figures, expected)
        verdict = verdict or _memory_verdict(figures["increment"], expected)
        ours = (f"{units.human_bytes(figures['increment'])} (anon "
                f"{units.human_bytes(figures['anon'])}, file {units.human_bytes(figures['file'])})")
        return ClaimRow(title, _notebook_figure(f"{notebook_mib:.2f} MiB", expected, context),
                        ours, units.human_bytes(figures["sampler_increment"]), verdict, why)
    return replay


def _notebook_figure(text: str, scaled: float, context: Context) -> str:
    if context.sizes.scale == 1:
        return text
    return f"{text} (scaled: {units.human_bytes(scaled)})"


def _explain_memmap_fill(figures, expected):
    return None, (f"{units.human_bytes(figures['file'])} of the increment is file-backed: dirty "
                  "pages of the mapped file, which the kernel writes back and drops when memory "
                  f"is short; only {units.human_bytes(figures['anon'])} is anonymous (heap)")


def _explain_hdf5_fill(figures, expected):
    return None, ("h5py writes each row through write(2): the data goes to the page cache, "
                  "outside the process; what stays is HDF5's buffers and chunk cache")


def _explain_random(figures, expected):
    return None, ("the array holds 100 x 1e6 float64 = 762.9 MiB at the notebook's size, all "
                  "anonymous; a 10 Hz sampler reads RSS between its own ticks")


def _explain_open(figures, expected):
    return None, "mapping a file reserves addresses only; no page is read until it is touched"


def _explain_row(figures, expected):
    return None, (f"the copy is anonymous ({units.human_bytes(figures['anon'])}); the mapped "
                  f"pages read for it are file-backed ({units.human_bytes(figures['file'])}, "
                  "readahead included)")


@dataclasses.dataclass
class Context:
    """What the claims share: sizes, a scratch directory, the data directory, repeats, and
    timings measured once for several claims."""

    sizes: Sizes
    directory: Path
    root: Path
    repeat: int
    timings: dict = dataclasses.field(default_factory=dict)

    def seconds(self, strategy: str, spec, **options) -> float:
        """Median seconds of ``strategy`` on ``spec`` (warm; measured once, in a fresh process
        at the notebook's sizes, in this one at quick sizes, where a process costs more than
        the product)."""
        key = (strategy, json.dumps(spec.to_dict(), sort_keys=True), json.dumps(options))
        if key not in self.timings:
            measure = measure_in_process if self.sizes.scale > 1 else child.measure_in_subprocess
            self.timings[key] = measure(strategy, spec, cache="warm", repeat=self.repeat,
                                        root=self.root, check=False, **options).seconds_median
        return self.timings[key]


def _ratio_row(claim: str, notebook_ms: tuple[float, float], ours: tuple[float, float],
               digits: int, why: str) -> ClaimRow:
    """A claim "A takes a ms against b ms", judged on the ratio a / b measured in one run."""
    notebook_ratio, ratio = notebook_ms[0] / notebook_ms[1], ours[0] / ours[1]
    return ClaimRow(
        claim, f"{notebook_ms[0]} ms vs {notebook_ms[1]} ms ({notebook_ratio:.{digits}f}x)",
        f"{units.human_seconds(ours[0])} vs {units.human_seconds(ours[1])} ({ratio:.{digits}f}x)",
        "", REPRODUCED if _within(ratio, notebook_ratio) else DIFFERENT, why)


def _hdf5_row_loop(context: Context) -> ClaimRow:
    shape = context.sizes.tall
    rows_loop = context.seconds("hdf5-rows", DatasetSpec(shape, "float32", storage="hdf5"),
                                chunk_cache_bytes=HDF5_1_CHUNK_CACHE_BYTES)
    in_ram64 = context.seconds("dense", DatasetSpec(shape, "float64", storage="raw"))
    in_ram32 = context.seconds("dense", DatasetSpec(shape, "float32", storage="raw"))
    return _ratio_row(
        "HDF5 row loop vs in-RAM product", (474, 56.3), (rows_loop, in_ram64), 1,
        f"the file is float32, the notebook's in-RAM matrix and b float64 (twice the bytes); "
        f"float32 in RAM takes {units.human_seconds(in_ram32)} "
        f"({rows_loop / in_ram32:.1f}x); the loop costs one HDF5 read call per row")


def _csr_vs_dense(context: Context) -> ClaimRow:
    shape = context.sizes.tall
    csr = context.seconds("csr", DatasetSpec(shape, "float64", density=0.1, storage="npz"))
    dense = context.seconds("dense", DatasetSpec(shape, "float64", storage="raw"))
    return _ratio_row(
        "CSR vs dense, density 0.1", (23.6, 57.2), (csr, dense), 2,
        "CSR reads 10% of the entries with an index each (12 of 8 bytes): about 0.15 of the "
        "dense bytes, plus gathers of x; both float64, one core for CSR")


def recursive_getsizeof(obj, seen: set | None = None) -> int:
    """The recursive ``sys.getsizeof`` of the notebook's time: the object, its ``__dict__``
    and containers, never the memory a numpy array's buffer owns elsewhere."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj) if not isinstance(obj, np.ndarray) else object.__sizeof__(obj)
    if isinstance(obj, dict):
        size += sum(recursive_getsizeof(k, seen) + recursive_getsizeof(v, seen)
                    for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set)):
        size += sum(recursive_getsizeof(item, seen) for item in obj)
    elif hasattr(obj, "__dict__"):
        size += recursive_getsizeof(vars(obj), seen)
    return size


def _csr_size(context: Context) -> ClaimRow:
    spec = DatasetSpec(context.sizes.tall, "float64", density=0.1, storage="npz")
    matrix = csr_array(spec)
    shallow, real = recursive_getsizeof(matrix), footprint_bytes(matrix)
    verdict = WRONG if 4940 < 0.01 * real * context.sizes.scale else REPRODUCED
    return ClaimRow(
        "size of the CSR matrix", "4940 bytes (recursive getsizeof)",
        f"{units.human_bytes(real)} (getsizeof: {shallow} bytes)", "", verdict,
        f"data + indices + indptr of {matrix.nnz} nonzeros; sys.getsizeof counts the array "
        "objects, not the buffers they point to")


def _chunk_sweep(context: Context) -> ClaimRow:
    rows, cols = context.sizes.tall
    cache = HDF5_1_CHUNK_CACHE_BYTES // context.sizes.scale
    limit = 1_000_000 // context.sizes.scale  # "1 MB", scaled
    shapes = [(1, cols // 4), (1, cols), (4, cols), (16, cols), (64, cols)]
    results, skipped = {}, []
    for chunk in shapes:
        spec = DatasetSpec((rows, cols), "float32", storage="hdf5", chunks=chunk)
        nbytes = chunk[0] * chunk[1] * 4
        for name in ("hdf5-rows", "hdf5-blocked"):
            options = {"chunk_cache_bytes": cache} if name == "hdf5-rows" else {}
            estimate = strategies.get(name).estimated_pass_seconds(spec, **options)
            if estimate * (context.repeat + 3) > 60:
                skipped.append(f"{name} on {units.human_bytes(nbytes)} chunks (~{estimate:.0f} s)")
                continue
            results[(name, nbytes)] = context.seconds(name, spec, **options)
    best = {name: min((s, n) for (m, n), s in results.items() if m == name)
            for name in ("hdf5-rows", "hdf5-blocked")}
    ours = "; ".join(f"{name} fastest on {units.human_bytes(n)} chunks "
                     f"({units.human_seconds(s)})" for name, (s, n) in best.items())
    rows_small = best["hdf5-rows"][1] <= limit
    blocked_small = best["hdf5-blocked"][1] <= limit
    verdict = REPRODUCED if rows_small and blocked_small else DIFFERENT
    sweep = ", ".join(f"{m} {units.human_bytes(n)}: {units.human_seconds(s)}"
                      for (m, n), s in sorted(results.items()))
    why = (f"with a {units.human_bytes(cache)} chunk cache (HDF5 1.x) the row loop re-reads every "
           "chunk larger than the cache once per row; a reader of whole chunk-rows is not bound "
           f"by it. Sweep: {sweep}" + (f"; skipped: {', '.join(skipped)}" if skipped else ""))
    return ClaimRow("chunks should be smaller than 1 MB", "< 1 MB", ours, "", verdict, why)


def _within(ratio: float, expected: float) -> bool:
    return expected / RATIO_TOLERANCE <= ratio <= expected * RATIO_TOLERANCE


#: (key, replay) in the notebook's order.
CLAIMS: tuple[tuple[str, Callable[[Context], ClaimRow]], ...] = (
    ("memmap-fill", _memory_claim("fill a memmap row by row", "memmap_fill", 389, True,
                                  _explain_memmap_fill)),
    ("hdf5-fill", _memory_claim("fill an HDF5 dataset row by row", "hdf5_fill", 1.12, False,
                                _explain_hdf5_fill)),
    ("random", _memory_claim("np.random.random((100, 1000000))", "random", 740, True,
                             _explain_random)),
    ("memmap-open", _memory_claim("open a memmap", "memmap_open", 0.0, False, _explain_open)),
    ("memmap-row", _memory_claim("read one row of a memmap", "memmap_row", 4.78, True,
                                 _explain_row)),
    ("hdf5-rows", _hdf5_row_loop),
    ("csr-vs-dense", _csr_vs_dense),
    ("csr-size", _csr_size),
    ("chunk-size", _chunk_sweep),
)


def replay(quick: bool = False, root=None, repeat: int | None = None,
           progress: Callable[[str], None] | None = None) -> list[ClaimRow]:
    """Every claim of ``CLAIMS``, in order; a claim that fails to run is a row with verdict
    ``different`` and the error as its why (never a missing row)."""
    import tempfile

    sizes = Sizes(100 if quick else 1)
    root = Path(root) if root is not None else datasets.default_root()
    rows = []
    with tempfile.TemporaryDirectory(prefix="notebook-", dir=root if root.exists() else None) as d:
        context = Context(sizes, Path(d), root, repeat or (1 if quick else 5))
        for key, claim in CLAIMS:
            if progress is not None:
                progress(f"replaying {key}...")
            started = time.perf_counter()
            try:
                rows.append(claim(context))
            except Exception as exc:  # noqa: BLE001 - one failed claim must not hide the others
                rows.append(ClaimRow(key, "-", "-", "", DIFFERENT,
                                     f"could not be measured: {type(exc).__name__}: {exc}"))
            if progress is not None:
                progress(f"  {key}: {time.perf_counter() - started:.1f} s")
    return rows


def format_rows(rows: list[ClaimRow]) -> str:
    """The rows as a Markdown table."""
    header = ["claim", "notebook", "ours (harness meter)", "10 Hz sampler", "verdict", "why"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.claim, row.notebook, row.ours, row.sampler or "-", row.verdict, row.why]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


