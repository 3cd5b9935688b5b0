"""harness: benchmark and profile matrix-vector products on very large arrays.

Two halves that meet only through asv's result files:

- ``harness.measuring`` produces figures, in the order data flows: ``matrix`` (what a matrix
  is: specs, values, deterministic generation) -> ``storage`` (one module per format behind one
  interface, the sealed-file cache, users' files) -> ``meters`` (exact peak memory, page cache,
  the machine's roofline, a cluster's memory) -> ``strategies`` (ways to compute ``A @ x``) ->
  ``runs`` (one pipeline for a matrix from any source: plan, child process, comparison,
  recommendation; the asv suite's profiles; the notebook replay). ``fit`` (what fits this
  machine) and ``options`` (the strategies' options) are read by several of them.
- ``harness.reporting`` reads them: ``results`` (asv result files -> one tidy DataFrame) ->
  ``compare`` and ``gate`` (asv's statistics) -> ``summary``, ``plots``, ``report`` ->
  ``publish``.

Shared by both: ``harness.units`` (human formatting of bytes, seconds, GB/s) and
``harness.names`` (the suite's benchmark and parameter names). ``harness.cli`` only parses
arguments and prints. ``harness.operator(source, strategy)`` hands the fastest reader to a
user's code as a ``scipy.sparse.linalg.LinearOperator`` (``harness.measuring.operator``).

The modules the asv suite and everyday use reach by a short name are also
``harness.<name>`` (``MODULES``: ``from harness import strategies``): asv versions a benchmark
by the hash of its source, and the suite's ``setup`` imports that way, so those names stay put
whatever folder a module lives in.
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


def operator(source, strategy: str = "auto", **kwargs):
    """``source`` as a ``scipy.sparse.linalg.LinearOperator`` read by ``strategy`` ("auto":
    the fastest within a memory budget, from figures measured on this machine); see
    ``harness.measuring.operator``."""
    from harness.measuring.operator import operator as make

    return make(source, strategy, **kwargs)


def __getattr__(name: str):
    # Imported on first use: `import harness` stays cheap (no numpy, pandas or h5py).
    if name in MODULES:
        return importlib.import_module(MODULES[name])
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *MODULES])
