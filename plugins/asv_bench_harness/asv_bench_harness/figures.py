"""The figures this distribution adds to asv: per benchmark type, the method-name prefix asv
discovers it by, the ``type`` and ``unit`` asv records in ``benchmarks.json``, and what it
measures. The one list of them: the types in ``asv_bench_harness.benchmarks`` and the harness's
reporter (``harness.reporting.results``) both read it.

None of the prefixes is one of asv's own (``time_``, ``timeraw_``, ``mem_``, ``peakmem_``,
``track_``), and no one of them starts another, so a name matches one type only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One benchmark type: ``prefix`` of the benchmark's name (``anonincrement_``), asv's
    ``type`` and ``unit`` ("bytes" or "seconds", which asv's site and ``asv compare`` show in
    their units), and ``what`` it measures, in words."""

    prefix: str
    type: str
    unit: str
    what: str


PEAK_INCREMENT = Figure(
    "peakincrement_", "peakincrement", "bytes",
    "peak resident memory the call added (exact: the kernel's high-water mark, reset before it)")
ANON_INCREMENT = Figure(
    "anonincrement_", "anonincrement", "bytes",
    "peak anonymous memory the call added (heap, arrays: what the kernel cannot drop)")
FILE_INCREMENT = Figure(
    "fileincrement_", "fileincrement", "bytes",
    "peak file-backed memory the call added (mapped files: pages the kernel can drop)")
STORAGE_READ = Figure(
    "storageread_", "storageread", "bytes",
    "bytes the call read from storage (page-cache misses, mapped files included)")
READ_CALLS = Figure(
    "readcalls_", "readcalls", "bytes",
    "bytes the call's read calls returned (page-cache hits included, mapped files not)")
COLD_TIME = Figure(
    "coldtime_", "coldtime", "seconds",
    "wall time of the call with the benchmark's cold_files evicted from the page cache")

FIGURES = (PEAK_INCREMENT, ANON_INCREMENT, FILE_INCREMENT, STORAGE_READ, READ_CALLS, COLD_TIME)


def figure_of(benchmark_name: str) -> Figure | None:
    """The figure an asv benchmark name ('module.Class.anonincrement_build') measures, by the
    prefix of its last part; None for other benchmarks."""
    method = benchmark_name.rsplit(".", 1)[-1]
    return next((f for f in FIGURES if method.startswith(f.prefix)), None)
