"""asv results (api version 2) -> one tidy pandas DataFrame.

``load(*paths)`` reads results directories, machine directories or single result files written
by any asv project (ours or a third party's) and returns one row per benchmark x parameter
combination x result file. Files are untrusted data: they are parsed as JSON only (asv's own
``load_json``), every field is type-checked, nothing is evaluated or unpickled. A file that cannot
be read is reported by name (a ``ResultsFileWarning``, or a ``ResultsFileError`` with
``strict=True``) and the other files still load: ``forwarded_warnings`` hands those messages
to any callable. ``load_nonempty`` refuses paths without any results; ``select_matching`` keeps
the benchmarks that regular expressions select, as ``asv run --bench`` does.

Columns (units: ``value`` is in ``unit``; ``date`` is the commit date, UTC):
``benchmark`` (asv's full name), ``entry_name`` (asv's ``name(param reprs)`` label, as in
``asv compare`` and ``regressions.json``), ``type`` (time, peakmem, mem, track, or a type of
the meter plugin asv_bench_harness: peakincrement, anonincrement, fileincrement, storageread,
readcalls, coldtime), ``unit``,
``params`` (dict name -> value string, repr quotes removed), one ``param_<name>`` column per
parameter name (numeric when every value is a number), ``value``, ``status`` (ok, failed,
skipped), ``ci_99_low``, ``ci_99_high``, ``q_25``, ``q_75``, ``number``, ``repeat``,
``samples`` (a float64 numpy array or None), ``version`` (benchmark code version), ``stale`` (True when the
project's benchmarks.json no longer lists this benchmark at this version: asv publish ignores
such rows), ``commit``, ``date``, ``machine``, ``env_name``, ``python``, ``requirements``,
``raw_params`` (the raw parameter reprs, for matching asv's labels), ``file``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from asv.results import _format_param_value
from asv_bench_harness.figures import FIGURES as METER_FIGURES

from harness.reporting.untrusted import LONGEST_INTEGER, UntrustedFileError, read_json

RESULTS_API_VERSION = 2

# asv names a result file "<commit[:8]>-<env name>.json" (asv.results.get_filename).
RESULT_FILE_NAME = re.compile(r"^[0-9a-fA-F]{6,40}-.+\.json$")
NOT_RESULT_FILES = {"machine.json", "benchmarks.json"}

# benchmarks.json "type" -> our short type; also the method-name prefixes asv_runner uses.
# The meter plugin's types (asv_bench_harness: peakincrement, anonincrement, ...) keep their
# names; their units (bytes, seconds) make compare and gate judge them as asv's own.
TYPE_BY_ASV_TYPE = {"time": "time", "peakmemory": "peakmem", "memory": "mem", "track": "track",
                    **{figure.type: figure.type for figure in METER_FIGURES}}
TYPE_BY_PREFIX = (("timeraw_", "time"), ("time_", "time"), ("peakmem_", "peakmem"),
                  ("mem_", "mem"), ("track_", "track"),
                  *((figure.prefix, figure.type) for figure in METER_FIGURES))
DEFAULT_UNIT = {"time": "seconds", "peakmem": "bytes", "mem": "bytes", "track": "unit",
                **{figure.type: figure.unit for figure in METER_FIGURES}}

STATS_COLUMNS = {  # asv result column -> our column
    "stats_ci_99_a": "ci_99_low",
    "stats_ci_99_b": "ci_99_high",
    "stats_q_25": "q_25",
    "stats_q_75": "q_75",
    "stats_number": "number",
    "stats_repeat": "repeat",
}

COLUMNS = [
    "benchmark", "entry_name", "type", "unit", "params", "value", "status",
    "ci_99_low", "ci_99_high", "q_25", "q_75", "number", "repeat", "samples", "version",
    "stale", "commit", "date", "machine", "env_name", "python", "requirements",
    "raw_params", "file",
]
FLOAT_COLUMNS = ["value", "ci_99_low", "ci_99_high", "q_25", "q_75", "number", "repeat"]
NUMBER_PATTERN = re.compile(r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)$")


class ResultsFileError(ValueError):
    """A results file (named in the message) cannot be used; the message says why and how to fix."""


class ResultsFileWarning(UserWarning):
    """A results file was skipped; the message names it and says why."""


def load(*paths: str | os.PathLike, strict: bool = False) -> pd.DataFrame:
    """Load asv results from directories and/or files into one tidy DataFrame.

    ``paths``: asv results directories (``results/``), machine directories
    (``results/<machine>/``) or single result files; defaults to ``results``. ``strict``: raise
    ``ResultsFileError`` on the first unusable file instead of warning and skipping it.
    Raises ``FileNotFoundError`` for a path that does not exist.
    """
    files = find_result_files(paths or ("results",))
    columns: dict[str, list] = {name: [] for name in COLUMNS}
    benchmarks_cache: dict[Path, dict] = {}
    for path in files:
        notes: list[str] = []
        try:
            benchmarks = _benchmarks_for(path, benchmarks_cache, strict)
            rows = read_result_file(path, benchmarks, notes)
        except ResultsFileError as exc:
            if strict:
                raise
            warnings.warn(str(exc), ResultsFileWarning, stacklevel=2)
            continue
        for note in notes:
            warnings.warn(note, ResultsFileWarning, stacklevel=2)
        for name in COLUMNS:
            columns[name].extend(rows[name])
    return _to_frame(columns)


class NoResultsError(ValueError):
    """The paths hold no asv results at all; the message names them and what to run."""


def load_nonempty(*paths: str | os.PathLike, strict: bool = False) -> pd.DataFrame:
    """``load``, with no results at all as an error (``NoResultsError``) instead of an empty
    frame."""
    frame = load(*paths, strict=strict)
    if frame.empty:
        shown = ", ".join(map(str, paths or ("results",)))
        raise NoResultsError(f"no asv results found in {shown}; run `make bench` or `asv run` "
                             "first")
    return frame


@contextlib.contextmanager
def forwarded_warnings(report: Callable[[str], None]):
    """Pass the message of each warning raised inside the block (the result files ``load``
    skipped, each named) to ``report`` once the block ends, instead of Python's format."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                report(str(warning.message))


def compile_patterns(patterns: Iterable[str]) -> list[re.Pattern]:
    """Regular expressions that select benchmarks (asv run's --bench); ValueError naming the
    first one that is not a regular expression."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ValueError(f"--bench {pattern!r} is not a regular expression: {exc}") from None
    return compiled


def select_matching(frame: pd.DataFrame, patterns: Iterable[str],
                    column: str = "entry_name") -> pd.DataFrame:
    """Rows whose ``column`` (asv's label ``name(param, ...)`` by default, or ``benchmark``)
    matches any of the regular expressions, as ``asv run --bench`` selects (``re.search``); all
    rows when there are none."""
    compiled = compile_patterns(patterns)
    if not compiled:
        return frame
    keep = frame[column].map(lambda label: any(p.search(label) for p in compiled))
    return frame[keep.astype(bool)]


def find_result_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The asv result files under ``paths`` (files are taken as given), sorted, no duplicates.

    In a directory walk a JSON file counts when its directory holds asv's ``machine.json`` or its
    name looks like asv's ``<commit>-<env>.json``; this skips ``benchmarks.json``, ``machine.json``
    and an html directory's graphs; a published site (``index.json`` beside ``graphs/``) is not
    entered at all.
    """
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no such file or directory; give an asv results directory "
                "(the results_dir of asv.conf.json), a machine directory or a result file"
            )
        if path.is_file():
            found[path] = None
            continue
        for root, dirs, names in os.walk(path):
            if "index.json" in names and "graphs" in dirs:
                dirs[:] = []  # an `asv publish` site (results/html): thousands of graph files
                continue
            dirs.sort()
            is_machine_dir = "machine.json" in names
            # A directory named like a result file is listed (and refused by name when read),
            # not walked into.
            odd = [d for d in dirs if d.endswith(".json") and (
                is_machine_dir or RESULT_FILE_NAME.match(d))]
            dirs[:] = [d for d in dirs if d not in odd]
            for name in sorted([*names, *odd]):
                if name in NOT_RESULT_FILES or not name.endswith(".json"):
                    continue
                if is_machine_dir or RESULT_FILE_NAME.match(name):
                    found[Path(root) / name] = None
    return list(found)


def read_result_file(path: Path, benchmarks: dict[str, dict] | None = None,
                     notes: list[str] | None = None) -> dict[str, list]:
    """Rows of one result file as column lists (see the module docstring for the columns).

    ``benchmarks``: the project's benchmarks.json content (names params, gives type and unit).
    ``notes``: receives one message (naming the file) per repair made to a usable file: an
    infinite result read as failed, null or non-finite samples dropped.
    Raises ``ResultsFileError`` naming the file and the problem.
    """
    notes = [] if notes is None else notes
    data = _read_json(path)
    _check_api_version(path, data)
    header = _check_header(path, data)
    benchmarks = benchmarks or {}
    result_columns = header["result_columns"]
    rows: dict[str, list] = {name: [] for name in COLUMNS}
    for name, row in data["results"].items():
        if not isinstance(row, list) or len(row) > len(result_columns):
            raise ResultsFileError(
                f"{path}: benchmark {name!r}: expected a list of at most "
                f"{len(result_columns)} fields aligned with 'result_columns', got "
                f"{_describe(row)}; the file is damaged: re-run asv for this commit"
            )
        fields = dict(zip(result_columns, row))
        _add_benchmark_rows(path, rows, str(name), fields, benchmarks, header, notes)
    return rows


def _read_json(path: Path) -> Any:
    """The parsed file, read as hostile data (``harness.reporting.untrusted``: regular files
    only, without blocking, under a size cap; JSON with asv's NaN and infinities)."""
    try:
        return read_json(path)
    except UntrustedFileError as exc:
        raise ResultsFileError(str(exc)) from None


def _check_api_version(path: Path, data: Any) -> None:
    if not isinstance(data, dict):
        raise ResultsFileError(f"{path}: expected a JSON object (an asv results file), "
                               f"got {_describe(data)}")
    version = data.get("version")
    if version == RESULTS_API_VERSION:
        return
    if isinstance(version, int) and not isinstance(version, bool) and version < RESULTS_API_VERSION:
        raise ResultsFileError(
            f"{path}: asv results of api version {version}; this reader needs version "
            f"{RESULTS_API_VERSION}. Run `asv update` in the asv project that wrote it to convert "
            "its results in place, then load them again."
        )
    if isinstance(version, int) and not isinstance(version, bool):
        raise ResultsFileError(f"{path}: asv results of api version {version}, newer than the "
                               f"version {RESULTS_API_VERSION} this reader knows (asv 0.6)")
    raise ResultsFileError(f"{path}: no integer 'version' field, so not an asv results file "
                           f"(got {_describe(version)})")


# The commit dates pandas can hold (pd.Timestamp.min/max), in milliseconds since 1970.
DATE_RANGE_MS = (pd.Timestamp.min.value / 1e6 + 1, pd.Timestamp.max.value / 1e6 - 1)

HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "commit_hash": (str,),
    "env_name": (str,),
    "params": (dict,),
    "result_columns": (list,),
    "results": (dict,),
}


def _check_header(path: Path, data: dict) -> dict:
    for key, types in HEADER_TYPES.items():
        if key not in data:
            raise ResultsFileError(f"{path}: missing key {key!r}: not a complete asv results "
                                   "file (api version 2); re-run asv for this commit")
        if not isinstance(data[key], types):
            raise ResultsFileError(f"{path}: {key!r} should be a JSON "
                                   f"{'/'.join(t.__name__ for t in types)}, got "
                                   f"{_describe(data[key])}")
    if not all(isinstance(c, str) for c in data["result_columns"]) or \
            "result" not in data["result_columns"]:
        raise ResultsFileError(f"{path}: 'result_columns' should be a list of names including "
                               f"'result', got {_describe(data['result_columns'])}")
    date = data.get("date")
    if date is not None and not (_is_number(date) and DATE_RANGE_MS[0] <= date <= DATE_RANGE_MS[1]):
        raise ResultsFileError(f"{path}: 'date' should be a number of milliseconds since 1970 "
                               f"between {DATE_RANGE_MS[0]:.0f} and {DATE_RANGE_MS[1]:.0f} "
                               f"(years 1677-2262), got {_describe(date)}")
    machine = data["params"].get("machine")
    requirements = data.get("requirements")
    return {
        "result_columns": data["result_columns"],
        "commit": data["commit_hash"],
        "date": date,
        "machine": machine if isinstance(machine, str) else None,
        "env_name": data["env_name"],
        "python": str(data.get("python")) if data.get("python") is not None else None,
        "requirements": requirements if isinstance(requirements, dict) else {},
        "file": str(path),
    }


def _add_benchmark_rows(path: Path, rows: dict[str, list], name: str, fields: dict,
                        benchmarks: dict[str, dict], header: dict, notes: list[str]) -> None:
    def fail(what: str) -> ResultsFileError:
        return ResultsFileError(f"{path}: benchmark {name!r}: {what}; the file is damaged or "
                                "not written by asv: re-run asv for this commit")

    raw_params = fields.get("params") or []
    if not isinstance(raw_params, list) or not all(
            isinstance(p, list) and all(isinstance(v, str) for v in p) for p in raw_params):
        raise fail(f"'params' should be a list of lists of strings, got {_describe(raw_params)}")
    count = _combination_count(raw_params, fields.get("result"), fail)
    values = _finite_results(_number_list(fields.get("result"), count, "result", fail),
                             lambda what: notes.append(f"{path}: benchmark {name!r}: {what}"))
    stats = {column: _number_list(fields.get(key), count, key, fail)
             for key, column in STATS_COLUMNS.items()}
    samples = fields.get("samples")
    if samples is None:
        samples = [None] * count
    elif not isinstance(samples, list) or len(samples) != count or not all(
            s is None or (isinstance(s, list) and _NUMBERS_OR_NULL.issuperset(map(type, s)))
            for s in samples):
        raise fail(f"'samples' should hold {count} lists of numbers or nulls")
    else:
        samples, dropped = _finite_samples(samples)
        # float64 arrays: a tenth of the memory of lists of Python floats, which would make
        # the samples most of a loaded frame's size.
        samples = [None if series is None else np.array(series, dtype=np.float64)
                   for series in samples]
        if dropped:
            notes.append(f"{path}: benchmark {name!r}: {dropped} null or non-finite "
                         "samples dropped (asv records only finite timings)")
    version = fields.get("version")
    if version is not None and not isinstance(version, str):
        raise fail(f"'version' should be a string, got {_describe(version)}")

    listed = benchmarks.get(name)
    names = _param_names(listed, len(raw_params))
    kind = _benchmark_type(name, listed)
    unit = listed.get("unit") if listed and isinstance(listed.get("unit"), str) else None
    unit = unit or DEFAULT_UNIT.get(kind, "unit")
    stale = bool(benchmarks) and (listed is None or (
        version is not None and listed.get("version") not in (None, version)))

    # Column-wise: per-benchmark constants are repeated, per-combination values extended.
    entry_names, params, combinations = _labels(name, tuple(map(tuple, raw_params)),
                                                tuple(names))
    rows["entry_name"].extend(entry_names)
    rows["params"].extend(params)
    rows["raw_params"].extend(combinations)
    rows["value"].extend(values)
    rows["status"].extend(["failed" if v is None else "skipped" if math.isnan(v) else "ok"
                           for v in values])
    for column, column_values in stats.items():
        rows[column].extend(column_values)
    rows["samples"].extend(samples)
    for key, constant in (("benchmark", name), ("type", kind), ("unit", unit),
                          ("version", version), ("stale", stale)):
        rows[key].extend([constant] * count)
    for key in ("commit", "date", "machine", "env_name", "python", "requirements", "file"):
        rows[key].extend([header[key]] * count)


@functools.lru_cache(maxsize=4096)
def _labels(name: str, raw_params: tuple[tuple[str, ...], ...], names: tuple[str, ...]
            ) -> tuple[list[str], list[dict], list[tuple[str, ...]]]:
    """asv's labels, the params dicts and the raw combinations of one benchmark, built once
    and shared by every file that ran it (the same objects in every row: loading hundreds of
    files of the same suite then costs memory for their numbers, not for copies of names).
    Readers must not modify the params dicts."""
    combinations = list(itertools.product(*raw_params))
    return ([f"{name}({', '.join(c)})" if c else name for c in combinations],
            [{n: _param_value(v) for n, v in zip(names, c)} for c in combinations],
            combinations)


@functools.lru_cache(maxsize=65536)
def _param_value(value_repr: str) -> str:
    """asv's display form of a parameter repr ("'float32'" -> 'float32'); cached: few distinct."""
    return _format_param_value(value_repr)


# At most this many parameter combinations per benchmark when its result is null (asv's "all
# missing"): with a result list, its length is the bound.
MAX_COMBINATIONS = 100_000


def _combination_count(raw_params: list[list[str]], result: Any, fail) -> int:
    """The number of parameter combinations, checked against the result's length (or
    ``MAX_COMBINATIONS``) before any combination is built."""
    count = math.prod(len(values) for values in raw_params)
    bound = len(result) if isinstance(result, list) else MAX_COMBINATIONS
    if isinstance(result, list) and count != bound:
        raise fail(f"'result' should be null or a list of {count} numbers/nulls (one per "
                   f"parameter combination), got {_describe(result)}")
    if count > bound:
        raise fail(f"its parameters make {count} combinations, more than the {bound} this "
                   "reader accepts")
    return count


def _finite_results(values: list, note: Callable[[str], None]) -> list:
    """Results with +-Infinity read as failed (None): asv writes NaN for skipped, null for
    failed and finite numbers otherwise, so an infinity is damage; ``note`` is told."""
    infinite = [v for v in values if v is not None and math.isinf(v)]
    if not infinite:
        return values
    note(f"{len(infinite)} result(s) of {infinite[0]} (Infinity) read as failed")
    return [None if v is not None and math.isinf(v) else v for v in values]


def _finite_samples(samples: list) -> tuple[list, int]:
    """Each combination's samples without nulls and non-finite numbers; (samples, how many
    were dropped)."""
    dropped = 0
    kept = []
    for series in samples:
        if series is not None and not all(v is not None and math.isfinite(v) for v in series):
            clean = [v for v in series if v is not None and math.isfinite(v)]
            dropped += len(series) - len(clean)
            series = clean
        kept.append(series)
    return kept, dropped


def _number_list(raw: Any, count: int, key: str, fail) -> list:
    """asv stores a per-combination list, or None for 'all missing'."""
    if raw is None:
        return [None] * count
    if not isinstance(raw, list) or len(raw) != count or not _NUMBERS_OR_NULL.issuperset(
            map(type, raw)):
        raise fail(f"{key!r} should be null or a list of {count} numbers/nulls (one per "
                   f"parameter combination), got {_describe(raw)}")
    return raw


def _param_names(listed: dict | None, count: int) -> list[str]:
    names = listed.get("param_names") if listed else None
    if isinstance(names, list) and len(names) == count and all(isinstance(n, str) for n in names):
        return names
    # Benchmark gone from benchmarks.json (or changed shape): name parameters by position,
    # as asv_runner does for benchmarks without param_names.
    return [f"param{k + 1}" for k in range(count)]


def _benchmark_type(name: str, listed: dict | None) -> str | None:
    if listed and isinstance(listed.get("type"), str) and listed["type"] in TYPE_BY_ASV_TYPE:
        return TYPE_BY_ASV_TYPE[listed["type"]]
    method = name.rsplit(".", 1)[-1]
    for prefix, kind in TYPE_BY_PREFIX:
        if method.startswith(prefix):
            return kind
    return None


def _benchmarks_for(path: Path, cache: dict[Path, dict], strict: bool) -> dict[str, dict]:
    """benchmarks.json of the results directory holding ``path`` (results/<machine>/file)."""
    for directory in (path.parent.parent, path.parent):
        candidate = directory / "benchmarks.json"
        if candidate in cache:
            return cache[candidate]
        if candidate.is_file():
            cache[candidate] = _read_benchmarks_json(candidate, strict)
            return cache[candidate]
    return {}


def _read_benchmarks_json(path: Path, strict: bool) -> dict[str, dict]:
    try:
        data = _read_json(path)
        if not isinstance(data, dict):
            raise ResultsFileError(f"{path}: expected a JSON object, got {_describe(data)}")
    except ResultsFileError as exc:
        if strict:
            raise
        warnings.warn(f"{exc}; parameters will be named by position", ResultsFileWarning,
                      stacklevel=4)
        return {}
    return {k: v for k, v in data.items() if k != "version" and isinstance(v, dict)}


def _to_frame(columns: dict[str, list]) -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(values, dtype=object)
                          for name, values in columns.items()})
    for name in FLOAT_COLUMNS:
        frame[name] = pd.to_numeric(frame[name].astype("float64"), errors="coerce")
    frame["stale"] = frame["stale"].astype(bool)
    frame["date"] = pd.to_datetime(pd.Series(columns["date"], dtype="float64"), unit="ms",
                                   utc=True)
    param_names = sorted({name for params in columns["params"] for name in params})
    for name in param_names:
        frame[f"param_{name}"] = _typed_param_column([p.get(name) for p in columns["params"]])
    ordered = (COLUMNS[:5] + [f"param_{n}" for n in param_names] + COLUMNS[5:])
    return frame[ordered]


def _typed_param_column(values: list[str | None]) -> pd.Series:
    """Numbers when every present value is a number literal (e.g. chunk_cache bytes), else text."""
    present = [v for v in values if v is not None]
    if present and all(NUMBER_PATTERN.match(v) for v in present):
        if all(re.fullmatch(r"[+-]?\d+", v) and len(v.lstrip("+-")) <= LONGEST_INTEGER
               for v in present):  # a longer one overflows Int64: floats, as untrusted reads
            return pd.Series([None if v is None else int(v) for v in values], dtype="Int64")
        return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
    return pd.Series(values, dtype=object)


_NUMBER_TYPES = frozenset({int, float})
_NUMBERS_OR_NULL = frozenset({int, float, type(None)})


def _is_number(x: Any) -> bool:
    """A JSON number (bool is not: type(True) is bool)."""
    return type(x) in _NUMBER_TYPES


def _describe(x: Any) -> str:
    text = repr(x)
    return f"{type(x).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"
