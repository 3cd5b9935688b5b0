"""harness: benchmark and profile matrix-vector products on very large arrays.

Two halves that meet only through asv's result files:

- ``harness.measuring`` produces figures: ``datasets`` (deterministic matrices on disk) ->
  ``strategies`` (ways to compute ``A @ x``) -> ``measure`` (time and exact peak memory, with
  ``memory``, ``pagecache`` and ``machine``); ``profiles`` turns the asv suite's parameters into
  measurements.
- ``harness.reporting`` reads them: ``results`` (asv result files -> one tidy DataFrame) ->
  ``compare`` and ``gate`` (asv's statistics) -> ``summary``, ``plots``, ``report`` ->
  ``publish``.

Shared by both: ``harness.units`` (human formatting of bytes, seconds, GB/s) and
``harness.names`` (the suite's benchmark and parameter names). ``harness.cli`` only parses
arguments and prints.

Every module of either half is also reachable as ``harness.<module>`` (``from harness import
strategies``): the asv suite imports that way inside ``setup``, and asv versions a benchmark
by the hash of that source, so the names stay put whatever folder a module lives in.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Short name -> the module it stands for.
MODULES = {
    "datasets": "harness.measuring.storage.datasets",
    "storage": "harness.measuring.storage",
    "strategies": "harness.measuring.strategies",
    **{name: f"harness.measuring.meters.{name}" for name in
       ("memory", "pagecache", "machine", "libc")},
    **{name: f"harness.measuring.runs.{name}" for name in
       ("measure", "plan", "profiles")},
    **{name: f"harness.reporting.{name}" for name in
       ("results", "compare", "runs", "history", "environments", "gate", "summary", "plots",
        "report", "publish", "asvconfig")},
}


def __getattr__(name: str):
    # Imported on first use: `import harness` stays cheap (no numpy, pandas or h5py).
    if name in MODULES:
        return importlib.import_module(MODULES[name])
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *MODULES])
