"""The one child-process protocol: every measurement (and every notebook cell) runs in a fresh
interpreter, ``python -m harness.measuring.runs.child '<json request>'``, which prints one JSON
line back.

A fresh process per measurement: glibc keeps memory an earlier measurement freed and reuses
it, which would hide a later measurement's allocations. Requests:

- ``{"kind": "measure", "strategy", "store", "source", "cache", "repeat", "check", "options"}``:
  one strategy on one store of a source (``runs.sources``), checked against the source's own
  reference; back: ``Measurement.to_record()``.
- ``{"kind": "measure-generated", "strategy", "spec", "root", ...}``: what the asv suite's
  ``runs.measure.measure_in_process`` measures, in a fresh process; back: the same record.
- ``{"kind": "passes", "strategy", "spec", "root", "passes", "product", "options"}``: a
  solve's passes from a cold cache (``runs.passes.measure_passes``); back: its record.
- ``{"kind": "notebook-cell", "cell", "scale", "dir"}``: one memory cell of the notebook
  replay (``runs.notebook.run_cell``); back: its figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from harness.measuring.matrix.spec import DatasetSpec
from harness.measuring.runs import sources
from harness.measuring.runs.measure import (
    Measurement,
    MeasurementError,
    measure_in_process,
    measure_store,
)

MODULE = "harness.measuring.runs.child"
#: Set (to anything) to see a failing child's traceback instead of its one line.
DEBUG_ENV_VAR = "HARNESS_DEBUG"


def run(request: dict, label: str, timeout_seconds: float | None = None) -> dict:
    """Run ``request`` in a fresh interpreter and return the JSON its last line holds;
    ``label`` names the work in errors (:class:`MeasurementError`: a failure, a timeout, no
    record)."""
    command = [sys.executable, "-m", MODULE, json.dumps(request)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_seconds,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise MeasurementError(f"{label} took longer than {timeout_seconds} s; raise the "
                               "timeout or measure a smaller matrix") from exc
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        said = [line for line in lines if line.startswith("error: ")]
        tail = said[-1][len("error: "):] if said else "\n".join(lines[-6:])
        raise MeasurementError(f"{label} failed (exit {done.returncode}): {tail}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise MeasurementError(f"{label} printed no record")
    return json.loads(lines[-1])


def measure(strategy: str, store: sources.Store, source: sources.Source, *, cache: str = "warm",
            repeat: int = 3, check: bool = True, timeout_seconds: float | None = None,
            label: str | None = None, reference_path=None, **options) -> Measurement:
    """``strategy`` on ``store`` of ``source``, measured in a fresh interpreter; checked
    against the ``.npy`` at ``reference_path`` (the reference computed once by the caller), else
    against the source's reference computed in the child."""
    request = {"kind": "measure", "strategy": strategy, "store": store.to_dict(),
               "source": source.describe(), "cache": cache, "repeat": int(repeat),
               "check": bool(check), "options": options,
               "reference_path": os.fspath(reference_path) if reference_path else None}
    label = label or f"{strategy} on {store.label} ({cache})"
    return Measurement.from_record(run(request, label, timeout_seconds))


def measure_in_subprocess(strategy: str, spec, *, cache: str = "warm", repeat: int = 3,
                          root=None, check: bool = True, timeout_seconds: float | None = None,
                          **options) -> Measurement:
    """``runs.measure.measure_in_process`` (a generated matrix) in a fresh interpreter.

    Raises :class:`MeasurementError` (with the child's stderr) when the child fails or runs
    longer than ``timeout_seconds``.
    """
    request = {"kind": "measure-generated", "strategy": strategy, "spec": spec.to_dict(),
               "root": os.fspath(root) if root is not None else None, "cache": cache,
               "repeat": int(repeat), "check": bool(check), "options": options}
    return Measurement.from_record(run(request, f"{strategy} on {spec} ({cache})",
                                       timeout_seconds))


def passes_in_subprocess(strategy: str, spec, *, passes: int, product: str = "lsqr",
                         root=None, timeout_seconds: float | None = None, **options) -> dict:
    """``runs.passes.measure_passes`` in a fresh interpreter: its record."""
    request = {"kind": "passes", "strategy": strategy, "spec": spec.to_dict(),
               "root": os.fspath(root) if root is not None else None, "passes": int(passes),
               "product": product, "options": options}
    return run(request, f"{passes} passes of {strategy} on {spec}", timeout_seconds)


def _passes_here(request: dict) -> dict:
    from harness.measuring.runs.passes import measure_passes

    return measure_passes(request["strategy"], DatasetSpec.from_dict(request["spec"]),
                          passes=request["passes"], product=request["product"],
                          root=request["root"], **request["options"]).to_record()


def _measure_here(request: dict) -> dict:
    path = request.get("reference_path")
    return measure_store(request["strategy"], sources.Store.from_dict(request["store"]),
                         sources.from_dict(request["source"]), cache=request["cache"],
                         repeat=request["repeat"], check=request["check"],
                         reference=(lambda x: np.load(path)) if path else None,
                         **request["options"]).to_record()


def _measure_generated_here(request: dict) -> dict:
    return measure_in_process(request["strategy"], DatasetSpec.from_dict(request["spec"]),
                              cache=request["cache"], repeat=request["repeat"],
                              root=request["root"], check=request["check"],
                              **request["options"]).to_record()


def _notebook_cell_here(request: dict) -> dict:
    from pathlib import Path

    from harness.measuring.runs import notebook  # the notebook imports this module

    return notebook.run_cell(request["cell"], notebook.Sizes(request["scale"]),
                             Path(request["dir"]))


HANDLERS = {"measure": _measure_here, "measure-generated": _measure_generated_here,
            "passes": _passes_here, "notebook-cell": _notebook_cell_here}


def main(argv: list[str]) -> int:
    """Entry point of the child: one JSON request in, one JSON line out. A failure is one line
    on stderr (``error: ...``, which the parent reports), its traceback only with
    ``$HARNESS_DEBUG`` set (``python -m harness --debug`` sets it)."""
    if len(argv) != 1:
        print(f"usage: python -m {MODULE} '<json request>'", file=sys.stderr)
        return 2
    request = json.loads(argv[0])
    try:
        print(json.dumps(HANDLERS[request["kind"]](request)))
    except Exception as exc:
        if os.environ.get(DEBUG_ENV_VAR):
            raise
        print("error: " + " ".join(f"{type(exc).__name__}: {exc}".split()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
