"""Beyond one A @ x: Aᵀy and A @ X for k columns per out-of-core reader, and a solve's passes
in a row from a cold cache (grids: ``harness.measuring.runs.profiles``)."""

import contextlib
import hashlib
import json
import os
from pathlib import Path

from harness import names

from . import _suite

PROFILE = _suite.PROFILE


def _prepare(suite) -> dict:
    """setup_cache body: materialize every dataset the class will use, skip the rest."""
    from harness.measuring.runs import profiles
    from harness.measuring.storage import datasets

    root = datasets.default_root()
    for params in PROFILE.combinations(suite.benchmark_class):
        try:
            case = profiles.product_case(params, PROFILE, root)
        except profiles.Skip:
            continue
        datasets.materialize(case.spec, root)
    return {"data_root": str(root), "memo_dir": os.path.abspath(os.getcwd())}


def _memo(cache: dict, key: list, measure) -> dict:
    """``measure()``'s record, made once per run (shared by the track_ methods of a
    combination through the setup_cache directory)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    memo = Path(cache["memo_dir"]) / f"measurement-{digest}.json"
    if memo.exists():
        return json.loads(memo.read_text())
    record = measure()
    tmp = memo.with_name(memo.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, memo)  # a killed process never leaves a half-written memo
    return record


class ProductColumns:
    """Where does reading stop being the cost: Aᵀy and A @ X for k columns, per reader?"""

    benchmark_class = "products.ProductColumns"
    param_names = names.param_names(benchmark_class)
    params = PROFILE.params(benchmark_class, param_names)
    number = 1
    warmup_time = 1e-3
    repeat = PROFILE.time_repeat
    rounds = PROFILE.rounds
    timeout = PROFILE.timeout_seconds

    def setup_cache(self):
        return _prepare(self)

    setup_cache.timeout = PROFILE.setup_cache_timeout_seconds

    def setup(self, cache, *params):
        from harness.measuring.runs import profiles
        from harness.measuring.strategies import get
        from harness.measuring.strategies.products import product_input

        self.cache, combination = cache, dict(zip(self.param_names, params))
        self.case = profiles.product_case(combination, PROFILE, cache["data_root"])
        self.columns = int(combination["columns"])
        self.product = profiles.product_of(combination["product"], self.columns)
        self._resources = contextlib.ExitStack()
        self.operand = self._resources.enter_context(get(self.case.strategy).open(
            self.case.spec, root=cache["data_root"], **self.case.options))
        self.v = product_input(self.case.spec.shape, self.case.spec.dtype, self.product,
                               self.columns)

    def teardown(self, cache, *params):
        self._resources.close()

    def time_product(self, cache, *params):
        getattr(self.operand, self.product)(self.v)

    def track_seconds_per_column(self, cache, *params):
        return self._measure("warm")["seconds_per_column"]

    track_seconds_per_column.unit = names.TRACK_UNITS[names.TRACK_PER_COLUMN]

    def track_gbps(self, cache, *params):
        return self._measure("warm")["gbps"]

    track_gbps.unit = names.TRACK_UNITS[names.TRACK_GBPS]

    def track_cold_seconds(self, cache, *params):
        return self._measure("cold")["seconds"]

    track_cold_seconds.unit = names.TRACK_UNITS[names.TRACK_COLD_SECONDS]

    def _measure(self, state: str) -> dict:
        from harness.measuring.runs import measure

        def run():
            self._resources.close()  # measure opens its own operand
            repeat = PROFILE.track_repeat if state == "warm" else PROFILE.cold_repeat
            return measure.measure_in_process(
                self.case.strategy, self.case.spec, cache=state, repeat=repeat,
                root=self.cache["data_root"], check=False, product=self.product,
                columns=self.columns, **self.case.options).to_record()

        return _memo(self.cache, [self.benchmark_class, repr(self.case), self.product,
                                  self.columns, state], run)


class SolvePasses:
    """A solve from a cold cache: does the matrix warm up after one pass, or stay at disk
    speed? (lsqr's alternation of A @ x and Aᵀy, ``passes`` products in a row.)"""

    benchmark_class = "products.SolvePasses"
    param_names = names.param_names(benchmark_class)
    params = PROFILE.params(benchmark_class, param_names)
    timeout = PROFILE.timeout_seconds

    def setup_cache(self):
        return _prepare(self)

    setup_cache.timeout = PROFILE.setup_cache_timeout_seconds

    def setup(self, cache, *params):
        from harness.measuring.runs import profiles

        self.cache, self.combination = cache, dict(zip(self.param_names, params))
        self.case = profiles.product_case(self.combination, PROFILE, cache["data_root"])

    def track_first_pass_seconds(self, cache, *params):
        return self._measure()["pass_seconds"][0]

    track_first_pass_seconds.unit = names.TRACK_UNITS[names.TRACK_FIRST_PASS]

    def track_last_pass_seconds(self, cache, *params):
        return self._measure()["pass_seconds"][-1]

    track_last_pass_seconds.unit = names.TRACK_UNITS[names.TRACK_LAST_PASS]

    def track_anon_increment(self, cache, *params):
        return self._measure()["anon_increment_bytes"]

    track_anon_increment.unit = names.TRACK_UNITS[names.TRACK_ANON]

    def track_file_increment(self, cache, *params):
        return self._measure()["file_increment_bytes"]

    track_file_increment.unit = names.TRACK_UNITS[names.TRACK_FILE]

    def _measure(self) -> dict:
        from harness.measuring.runs.passes import measure_passes

        passes = int(self.combination["passes"])
        return _memo(self.cache, [self.benchmark_class, repr(self.case), passes], lambda: (
            measure_passes(self.case.strategy, self.case.spec, passes=passes,
                           root=self.cache["data_root"], **self.case.options).to_record()))
