"""The one base class of the asv suite: family modules only declare their parameter grids.

Why each piece is here (asv 0.6.6 behaviour):
- ``setup_cache`` (defined per class in the family modules, so each class gets its own) makes
  the class's files once per run with ``harness.measuring.storage.datasets.materialize`` and returns their root
  and its own working directory (a fresh directory per run), never arrays.
- ``setup`` turns the parameters into a ``harness.measuring.runs.profiles.Case``; a combination the profile
  does not run or this machine cannot hold raises ``NotImplementedError``: asv records a skip.
- ``time_`` and ``peakmem_`` use the operand that ``setup`` opened (warm page cache: asv calls
  the method once to warm up before it times). ``track_`` figures come from
  ``harness.measuring.runs.measure.measure_in_process`` in the benchmark's own fresh process; the four warm
  figures of one combination come from one measurement, kept for the rest of the run in the
  setup_cache directory so that it is not repeated four times.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from harness.measuring.runs import profiles
from harness.measuring.storage import datasets

PROFILE = profiles.get()


def prepare(suite) -> dict:
    """setup_cache body: materialize every dataset the class will use, skip the rest."""
    root = datasets.default_root()
    for params in PROFILE.combinations(suite.benchmark_class):
        try:
            case = profiles.case(suite.family, params, PROFILE, root)
        except profiles.Skip:
            continue
        datasets.materialize(case.spec, root)
    return {"data_root": str(root), "memo_dir": os.path.abspath(os.getcwd())}


class _MatvecSuite:
    """y = A @ x for one family; subclasses set family, benchmark_class, params, param_names."""

    family = ""
    benchmark_class = ""
    # asv timing: one call per sample (a pass reads the whole matrix); at least one warm-up call.
    number = 1
    warmup_time = 1e-3
    repeat = PROFILE.time_repeat
    rounds = PROFILE.rounds
    timeout = PROFILE.timeout_seconds

    def setup(self, cache, *params):
        from harness import strategies

        self.cache = cache
        self.case = profiles.case(self.family, dict(zip(self.param_names, params)), PROFILE,
                                  cache["data_root"])
        self._resources = contextlib.ExitStack()
        strategy = strategies.get(self.case.strategy)
        self.operand = self._resources.enter_context(
            strategy.open(self.case.spec, root=cache["data_root"], **self.case.options))
        self.x = datasets.vector(self.case.spec.shape[1], self.case.spec.dtype)

    def teardown(self, cache, *params):
        resources = getattr(self, "_resources", None)
        if resources is not None:
            resources.close()

    # -- asv's own figures ------------------------------------------------------------------

    def time_matvec(self, cache, *params):
        self.operand.matvec(self.x)

    def peakmem_matvec(self, cache, *params):
        self.operand.matvec(self.x)

    # -- the harness's figures --------------------------------------------------------------

    def track_peak_increment(self, cache, *params):
        return self._warm()["increment_bytes"]

    track_peak_increment.unit = "bytes"

    def track_anon_increment(self, cache, *params):
        return self._warm()["anon_increment_bytes"]

    track_anon_increment.unit = "bytes"

    def track_file_increment(self, cache, *params):
        return self._warm()["file_increment_bytes"]

    track_file_increment.unit = "bytes"

    def track_gbps(self, cache, *params):
        return self._warm()["gbps"]

    track_gbps.unit = "GB/s"

    def track_cold_seconds(self, cache, *params):
        return self._measure("cold")["seconds_median"]

    track_cold_seconds.unit = "seconds"

    def _warm(self) -> dict:
        return self._measure("warm")

    def _measure(self, cache_state: str) -> dict:
        """One measurement of this combination, made once per run and cache state."""
        key = json.dumps([self.benchmark_class, repr(self.case), cache_state], sort_keys=True)
        memo = Path(self.cache["memo_dir"]) / (
            "measurement-" + hashlib.sha256(key.encode()).hexdigest()[:16] + ".json")
        if memo.exists():
            return json.loads(memo.read_text())
        # The operand opened by setup is not needed here: measure opens its own.
        self._resources.close()
        from harness.measuring.runs import measure

        repeat = PROFILE.track_repeat if cache_state == "warm" else PROFILE.cold_repeat
        result = measure.measure_in_process(
            self.case.strategy, self.case.spec, cache=cache_state, repeat=repeat,
            root=self.cache["data_root"], check=False, **self.case.options)
        record = {
            "seconds_median": float(result.seconds_median),
            "increment_bytes": int(result.increment_bytes),
            "anon_increment_bytes": int(result.anon_increment_bytes),
            "file_increment_bytes": int(result.file_increment_bytes),
            "gbps": float(result.gbps),
            "memory_method": result.memory_method,
            "cluster": result.cluster,
            "stored_bytes": result.stored_bytes,
            "compression_ratio": result.compression_ratio,
        }
        tmp = memo.with_name(memo.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, memo)  # a killed process never leaves a half-written memo
        return record
